"""The research pipeline: plan → searches → fetch and extract pages → summarise each → write a cited report.

1. **Plan**: a model call with structured output (``prompts.research_plan_format``) gives at most ``searches``
   queries; an empty or unreadable plan falls back to the question itself as the one query.
2. **Search**: each query on the search model (``searches.search``: a ``/v1/search`` request of its own, priced and
   logged under the research), ``results`` each; the results are merged in rank order, one per URL, the first
   ``sources`` kept and numbered from 1.
3. **Fetch and extract**: each source's page through the one fetcher (``relay.utility.fetch``: its size cap,
   timeout, redirect limit and refusal of private addresses) and converted to text (``relay.utility.documents``),
   cut to ``MAX_SOURCE_CHARS``. A page that cannot be fetched or read is worked on from its search snippet (its
   ``research.source`` event says why).
4. **Summarise**: one model call per source (``prompts.research_source``), at most ``task.PARALLEL_CALLS`` at once.
5. **Write**: one model call (``prompts.research_write``) over the numbered summaries, streamed when the client
   streams; the report cites sources as ``[n]``.

Each step reports progress through ``emit(event, data)`` (``relay.utility.endpoints_research`` writes them as
server-sent events); a model call or a search that fails ends the research with its error.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from relay.errors import RelayError
from relay.http.messages import Request
from relay.http.shutdown import Shutdown

from .. import calls, documents, prompts, task
from ..fetch import fetch_url
from . import searches
from .searches import Found

if TYPE_CHECKING:
    from relay.app import Relay

#: Characters of a source's text a summary call reads, at most.
MAX_SOURCE_CHARS = 12_000
_CITATION = re.compile(r"\[(\d{1,3})\]")

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


@attrs.frozen
class Ask:
    """A research request: the question, the models, and how wide to search."""

    question: str
    model: str
    search_model: str
    searches: int
    results: int
    sources: int


@attrs.define
class Source:
    number: int
    title: str
    url: str
    snippet: str
    fetched: bool = False
    summary: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.number,
            "title": self.title,
            "url": self.url,
            "snippet": self.snippet,
            "fetched": self.fetched,
            "summary": self.summary,
        }


@attrs.frozen
class Report:
    queries: list[str]
    sources: list[Source]
    text: str

    @property
    def cited(self) -> list[int]:
        """The source numbers the report cites (those that exist), in order."""
        numbers = {int(n) for n in _CITATION.findall(self.text)}
        return sorted(n for n in numbers if 1 <= n <= len(self.sources))


class Research:
    """One research run for the request ``parent`` (the key ``secret`` searches with, ``shutdown`` watched)."""

    def __init__(self, relay: Relay, parent: Request, secret: str, shutdown: Shutdown, ask: Ask, emit: Emit) -> None:
        self.relay = relay
        self.parent = parent
        self.secret = secret
        self.shutdown = shutdown
        self.ask = ask
        self.emit = emit

    async def run(self, *, stream: bool) -> Report:
        queries = await self.plan()
        await self.emit("research.plan", {"queries": queries})
        sources = await self.search(queries)
        if not sources:
            raise RelayError(502, "upstream", "the searches found no sources", code="no_sources")
        texts = await task.in_order([lambda s=s: self.read(s) for s in sources])
        await task.in_order([lambda s=s, t=t: self.summarize(s, t) for s, t in zip(sources, texts, strict=True)])
        text = await self.write(sources, stream=stream)
        return Report(queries, sources, text)

    async def plan(self) -> list[str]:
        ask = self.ask
        made = await calls.complete(
            self.relay,
            self.parent,
            ask.model,
            prompts.research_plan(ask.question, ask.searches),
            response_format=prompts.research_plan_format(ask.searches),
        )
        queries: list[str] = []
        try:
            planned = orjson.loads(made.text).get("queries")
        except (orjson.JSONDecodeError, AttributeError):
            planned = None
        for query in planned if isinstance(planned, list) else []:
            if isinstance(query, str) and query.strip() and query.strip() not in queries:
                queries.append(" ".join(query.split())[:200])
        return queries[: ask.searches] or [" ".join(ask.question.split())[:200]]

    async def search(self, queries: list[str]) -> list[Source]:
        ask = self.ask

        async def one(query: str) -> list[Found]:
            found = await searches.search(
                self.relay, self.parent, self.secret, self.shutdown, ask.search_model, query, ask.results
            )
            await self.emit("research.search", {"query": query, "results": [attrs.asdict(f) for f in found]})
            return found

        found = await task.in_order([lambda q=q: one(q) for q in queries])
        sources: list[Source] = []
        seen: set[str] = set()
        for rank in range(ask.results):  # the best of each search first, then the second of each, …
            for results in found:
                if rank < len(results) and results[rank].url not in seen and len(sources) < ask.sources:
                    hit = results[rank]
                    seen.add(hit.url)
                    sources.append(Source(len(sources) + 1, hit.title or hit.url, hit.url, hit.snippet))
        return sources

    async def read(self, source: Source) -> str:
        """The source's text: its page's, or its snippet when the page cannot be had."""
        event: dict[str, Any] = {"index": source.number, "url": source.url, "title": source.title}
        try:
            fetched = await fetch_url(self.relay, source.url, accept=documents.MEDIA_TYPES)
            document = await documents.to_text(fetched.body, fetched.content_type, fetched.filename)
            text = document.text.strip()
        except RelayError as error:
            await self.emit("research.source", {**event, "fetched": False, "error": error.message})
            return source.snippet
        source.fetched = bool(text)
        await self.emit("research.source", {**event, "fetched": source.fetched, "characters": len(text)})
        return text[:MAX_SOURCE_CHARS] if text else source.snippet

    async def summarize(self, source: Source, text: str) -> None:
        messages = prompts.research_source(self.ask.question, source.title, source.url, text or "(no text)")
        made = await calls.complete(self.relay, self.parent, self.ask.model, messages)
        source.summary = made.text.strip()
        await self.emit("research.summary", {"index": source.number, "url": source.url, "summary": source.summary})

    async def write(self, sources: list[Source], *, stream: bool) -> str:
        numbered = [(s.number, s.title, s.url, s.summary) for s in sources]
        messages = prompts.research_write(self.ask.question, numbered)
        if not stream:
            return (await calls.complete(self.relay, self.parent, self.ask.model, messages)).text
        parts: list[str] = []
        async with calls.stream_complete(self.relay, self.parent, self.ask.model, messages) as deltas:
            async for delta in deltas:
                parts.append(delta)
                await self.emit("research.report.delta", {"delta": delta})
        return "".join(parts)
