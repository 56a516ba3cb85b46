"""The mock search engine: Tavily's, Exa's, Brave's and SearXNG's search APIs, and the pages its results link to.

The same query always gets the same results: ``RESULTS`` pages about the query, each at
``http://<the mock's host>/pages/<slug>-<n>.html`` (served here too, as HTML articles naming the query), so a
research pipeline can fetch what it found. The shapes are the providers' own, so Relay's provider clients
(``relay.utility.search.providers``) are exercised as they are against the real APIs:

- ``POST /search``: Tavily's (``query``, ``max_results``), or Exa's when the body has ``numResults``;
- ``GET /res/v1/web/search?q=…&count=…``: Brave's;
- ``GET /search?q=…&format=json``: SearXNG's (another ``format`` is a 403, as on an instance allowing HTML only).

``mock:status=NNN`` in the query answers with that HTTP error status instead (in the provider's error shape).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from relay.mock.call import Call, Dialect, MockState, RouteEntry
from relay.mock.model import Answer, json_answer

#: Results a query finds, at most.
RESULTS = 5
_STATUS = re.compile(r"mock:status=(\d{3})")
_WORD = re.compile(r"[a-z0-9]+")
HTML_HEADERS = ((b"content-type", b"text/html; charset=utf-8"),)


def slug(query: str) -> str:
    """The query's words joined by dashes (at most 8 of them), or a digest of it when it has none."""
    words = _WORD.findall(query.lower())[:8]
    return "-".join(words) or hashlib.sha256(query.encode()).hexdigest()[:12]


def results(query: str, base: str, count: int) -> list[dict[str, Any]]:
    """The mock's results for ``query``: ``count`` of ``RESULTS`` at most, best first, pages under ``base``."""
    topic = query.strip() or "nothing"
    found = []
    for n in range(1, min(count, RESULTS) + 1):
        found.append(
            {
                "title": f"{topic} — source {n}",
                "url": f"{base}/pages/{slug(query)}-{n}.html",
                "content": f"Source {n} on {topic}: {_fact(slug(query), n)}",
                "score": round(1.0 - (n - 1) * 0.15, 2),
            }
        )
    return found


def _fact(key: str, n: int) -> str:
    """A sentence only source ``n`` of the query whose slug is ``key`` holds (its snippet and its page)."""
    digest = hashlib.sha256(f"{key}\n{n}".encode()).hexdigest()
    return f"finding {digest[:8]} about {key.replace('-', ' ')}."


def _base(call: Call) -> str:
    return "http://" + (call.headers.get(b"host") or "mock.invalid")


def _refused(call: Call, query: str, shape: str) -> Answer | None:
    """The error a ``mock:status=NNN`` query asks for, in ``shape``'s error body."""
    match = _STATUS.search(query)
    if match is None:
        return None
    status = int(match.group(1))
    message = f"mock search: status {status} as asked"
    if shape == "tavily":
        return json_answer(status, {"detail": {"error": message}})
    if shape == "exa":
        return json_answer(status, {"requestId": "mock", "error": message})
    if shape == "brave":
        return json_answer(status, {"type": "ErrorResponse", "error": {"status": status, "detail": message}})
    return Answer(status, f"<html><body>{message}</body></html>".encode(), HTML_HEADERS)


def _post(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    try:
        payload = orjson.loads(call.body)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return json_answer(400, {"detail": {"error": "mock search: a JSON body with a 'query' string is required"}})
    query: str = payload["query"]
    exa = "numResults" in payload
    refused = _refused(call, query, "exa" if exa else "tavily")
    if refused is not None:
        return refused
    count = payload.get("numResults" if exa else "max_results", RESULTS)
    found = results(query, _base(call), count if isinstance(count, int) and count > 0 else RESULTS)
    if exa:
        items = [
            {"id": r["url"], "title": r["title"], "url": r["url"], "score": r["score"], "highlights": [r["content"]]}
            for r in found
        ]
        return json_answer(200, {"requestId": f"mock-{slug(query)}", "results": items})
    return json_answer(200, {"query": query, "answer": None, "images": [], "results": found, "response_time": 0.01})


def _brave(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    query = call.query.get("q", "")
    refused = _refused(call, query, "brave")
    if refused is not None:
        return refused
    count = call.query.get("count", "")
    found = results(query, _base(call), int(count) if count.isdigit() and int(count) > 0 else RESULTS)
    items = [{"title": r["title"], "url": r["url"], "description": f"<strong>{r['content']}</strong>"} for r in found]
    web = {"type": "search", "results": items}
    return json_answer(200, {"type": "search", "query": {"original": query}, "web": web})


def _searxng(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    query = call.query.get("q", "")
    if call.query.get("format") != "json":
        return Answer(403, b"<html><body>403 Forbidden</body></html>", HTML_HEADERS)
    refused = _refused(call, query, "searxng")
    if refused is not None:
        return refused
    found = [{**r, "engine": "mock", "category": "general"} for r in results(query, _base(call), RESULTS)]
    return json_answer(200, {"query": query, "number_of_results": len(found), "results": found})


def _page(mock: MockState, call: Call, match: re.Match[str], dialect: Dialect) -> Answer:
    """A result's page: an article naming its topic (the slug's words) and a fact found nowhere else."""
    topic = match["slug"].replace("-", " ")
    n = int(match["n"])
    body = (
        f"<!doctype html><html><head><title>{topic} — source {n}</title></head><body>"
        f"<nav><a href='/'>Home</a></nav><article><h1>{topic} — source {n}</h1>"
        f"<p>This page is source {n} on {topic}. It reports {_fact(match['slug'], n)}</p>"
        f"<p>Source {n} adds that {topic} is studied in depth here, with detail the snippet leaves out.</p>"
        "</article><footer>mock search engine</footer></body></html>"
    )
    return Answer(200, body.encode(), HTML_HEADERS)


#: The mock's search routes (``relay.mock.router`` takes them in); Brave's before SearXNG's (both end ``/search``).
ROUTES: tuple[RouteEntry, ...] = (
    ("GET", re.compile(r"/res/v1/web/search$"), "openai", _brave),
    ("POST", re.compile(r"/search$"), "openai", _post),
    ("GET", re.compile(r"/search$"), "openai", _searxng),
    ("GET", re.compile(r"/pages/(?P<slug>[a-z0-9-]+)-(?P<n>\d+)\.html$"), "openai", _page),
)
