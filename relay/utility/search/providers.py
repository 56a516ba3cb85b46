"""The search providers' APIs (Tavily, Exa, Brave, SearXNG): one request each, and their answers as ``Hit``\\s.

Sans-IO: what to send (method, path under the channel's base URL, body) and what the answer means. The channel
sends it with its own credentials (``relay.upstream.channels``: Tavily a bearer token, Exa ``x-api-key``, Brave
``x-subscription-token``, SearXNG none unless given).

- ``tavily``: ``POST /search`` with ``query``, ``max_results`` and (when the model is ``basic`` or ``advanced``)
  ``search_depth``; answers ``results[]`` of ``title``, ``url``, ``content``, ``score``.
- ``exa``: ``POST /search`` with ``query``, ``numResults``, ``contents.highlights`` and (when the model is
  ``auto``, ``neural``, ``keyword`` or ``fast``) ``type``; answers ``results[]`` of ``title``, ``url``,
  ``highlights``/``text``/``summary``, ``score`` (absent for keyword searches).
- ``brave``: ``GET /res/v1/web/search?q=…&count=…``; answers ``web.results[]`` of ``title``, ``url``,
  ``description`` (with ``<strong>`` marks, taken out), no score.
- ``searxng``: ``GET /search?q=…&format=json`` (the instance must allow the JSON format); answers ``results[]``
  of ``title``, ``url``, ``content``, ``score``; it takes no result count, so Relay keeps the first ones.

A provider that gives no score gets one from the rank: 1.0 for the first of n results, then 1 - i/n.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import attrs
import orjson

from relay.dialects.common import bad_upstream, load_object

#: Characters of a snippet, at most (a page's whole text is not a snippet).
MAX_SNIPPET = 1000
#: Tags in a snippet (Brave marks the query's words with ``<strong>``).
_TAGS = re.compile(r"<[^>]{0,200}>")
_TAVILY_DEPTHS = ("basic", "advanced")
_EXA_TYPES = ("auto", "neural", "keyword", "fast")


@attrs.frozen
class Hit:
    """One search result, whatever the provider."""

    title: str
    url: str
    snippet: str
    score: float

    def as_json(self) -> dict[str, Any]:
        return {"title": self.title, "url": self.url, "snippet": self.snippet, "score": self.score}


@attrs.frozen
class Outgoing:
    """A provider request: its method, its path (and query) under the base URL, and its body."""

    method: str
    path: str
    body: bytes = b""


def encode(family: str, query: str, count: int, model: str) -> Outgoing:
    """The request of ``family``'s API for ``query``, asking ``count`` results; ``model`` is the name the channel
    knows the model by (a Tavily depth or an Exa search type when it is one)."""
    if family == "tavily":
        body: dict[str, Any] = {"query": query, "max_results": count}
        if model in _TAVILY_DEPTHS:
            body["search_depth"] = model
        return Outgoing("POST", "/search", orjson.dumps(body))
    if family == "exa":
        body = {"query": query, "numResults": count, "contents": {"highlights": True}}
        if model in _EXA_TYPES:
            body["type"] = model
        return Outgoing("POST", "/search", orjson.dumps(body))
    if family == "brave":
        return Outgoing("GET", "/res/v1/web/search?" + urlencode({"q": query, "count": min(count, 20)}))
    if family == "searxng":
        return Outgoing("GET", "/search?" + urlencode({"q": query, "format": "json"}))
    raise ValueError(f"not a search provider: {family!r}")


def decode(family: str, data: bytes, count: int) -> list[Hit]:
    """The first ``count`` results of ``family``'s answer; a 502 when it is not that API's shape."""
    payload = load_object(data, upstream=True)
    if family == "brave":
        web = payload.get("web")
        items = web.get("results", []) if isinstance(web, dict) else []  # no web results: no "web" at all
    else:
        items = payload.get("results")
    if not isinstance(items, list):
        raise bad_upstream(f"the {family} answer has no 'results' array")
    read = _READERS[family]
    found = [hit for item in items if isinstance(item, dict) and (hit := read(item)) is not None][:count]
    return [
        attrs.evolve(hit, score=1.0 - index / len(found)) if hit.score < 0 else hit for index, hit in enumerate(found)
    ]


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _snippet(value: Any) -> str:
    text = html.unescape(_TAGS.sub("", _text(value)))
    return " ".join(text.split())[:MAX_SNIPPET]


def _score(value: Any) -> float:
    """The provider's score, or -1 (none: ``decode`` gives one from the rank)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else -1.0


def _hit(item: dict[str, Any], snippet: Any, score: Any) -> Hit | None:
    url = _text(item.get("url"))
    if not url:
        return None
    return Hit(title=_text(item.get("title")) or url, url=url, snippet=_snippet(snippet), score=_score(score))


def _tavily(item: dict[str, Any]) -> Hit | None:
    return _hit(item, item.get("content"), item.get("score"))


def _exa(item: dict[str, Any]) -> Hit | None:
    highlights = item.get("highlights")
    if isinstance(highlights, list) and any(isinstance(h, str) for h in highlights):
        snippet: Any = " … ".join(h for h in highlights if isinstance(h, str))
    else:
        snippet = item.get("summary") or item.get("text")
    return _hit(item, snippet, item.get("score"))


def _brave(item: dict[str, Any]) -> Hit | None:
    return _hit(item, item.get("description"), None)


def _searxng(item: dict[str, Any]) -> Hit | None:
    return _hit(item, item.get("content"), item.get("score"))


_READERS: dict[str, Callable[[dict[str, Any]], Hit | None]] = {
    "tavily": _tavily,
    "exa": _exa,
    "brave": _brave,
    "searxng": _searxng,
}
