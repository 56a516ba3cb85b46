"""A research's searches: each a ``/v1/search`` request of its own (``relay.utility.search.children``), priced
(``[[prices]] request``) and logged under the research, its cost added to the research's row."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from relay.http.messages import Request
from relay.http.shutdown import Shutdown

from ..search.children import call_json

if TYPE_CHECKING:
    from relay.app import Relay

SEARCH_PATH = "/v1/search"


@attrs.frozen
class Found:
    """One result of a research's search."""

    title: str
    url: str
    snippet: str


async def search(
    relay: Relay, parent: Request, secret: str, shutdown: Shutdown, model: str, query: str, count: int
) -> list[Found]:
    """The first ``count`` results of ``query`` on the search ``model``, searched with the key ``secret`` (the
    research's); RelayError as the search was answered when it failed (a provider down: 502, …)."""
    payload = {"model": model, "query": query, "max_results": count}
    items = (await call_json(relay, parent, secret, shutdown, SEARCH_PATH, payload)).get("results")
    return [
        Found(str(item.get("title") or ""), str(item["url"]), str(item.get("snippet") or ""))
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and isinstance(item.get("url"), str)
    ]
