"""A benchmark target: where to send requests of each dialect, which processes are its cost, how it was set up.

A target accepts requests in one or more client dialects; through each it reaches the neutral mock in one or more
upstream dialects (a relay converts). Each such way is a ``Route``: the model name to send (a template with
``{shape}``), the extra headers (Portkey picks its provider with them) and, for Gemini clients, the path before
``/models/``. Only routes checked with a real request are kept (bench/targets/verify.py): the mock's own count of
the API it was called with says which upstream dialect a route really reached.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from bench.cpu import process_seconds
from bench.neutral import wire

#: The first part of a route's model name: the upstream dialect it reaches (``anthropic.bench-fixed``).
SHORT = {"openai_chat": "chat", "openai_responses": "responses", "anthropic": "anthropic", "gemini": "gemini"}


@dataclass(frozen=True)
class Route:
    """One way through a target: a client dialect's request that reaches the mock in an upstream dialect."""

    #: The model to send, ``{shape}`` standing for the shape (``anthropic.bench-{shape}``).
    model: str
    headers: dict[str, str] = field(default_factory=dict)
    #: Gemini clients: the path before ``/models/`` (``/v1beta`` unless the target serves it elsewhere).
    gemini_prefix: str = "/v1beta"

    def model_for(self, shape: str) -> str:
        return self.model.replace("{shape}", shape)


@dataclass
class Target:
    """A target up and verified. ``model`` and ``dialect`` are its default route's (shape ``fixed``); ``routes``
    holds every verified route as ``routes[client dialect][upstream dialect]``."""

    name: str
    kind: str
    base_url: str
    api_key: str
    model: str
    dialect: str
    dialects: tuple[str, ...]
    pids: list[int]
    configured: dict[str, object]
    routes: dict[str, dict[str, Route]] = field(default_factory=dict)

    def route(self, client: str, upstream: str | None = None) -> Route:
        """The route for ``client`` requests to ``upstream`` (default: the same dialect, else the first there is).
        Raises KeyError when the target has none."""
        ways = self.routes[client]
        if upstream is None:
            return ways.get(client) or next(iter(ways.values()))
        return ways[upstream]

    def pairs(self) -> list[tuple[str, str]]:
        """Every (client dialect, upstream dialect) this target serves, verified."""
        return [(c, u) for c, ways in self.routes.items() for u in ways]

    def model_for(self, shape: str, client: str | None = None, upstream: str | None = None) -> str:
        return self.route(client or self.dialect, upstream).model_for(shape)

    def request(
        self,
        shape: str,
        *,
        stream: bool,
        client: str | None = None,
        upstream: str | None = None,
        message: str = wire.MESSAGE,
        payload: dict[str, Any] | None = None,
    ) -> bytes:
        """The whole bytes of one request of ``client`` (default: the target's dialect) for ``shape``, through
        the route to ``upstream``; ``payload`` (its ``model`` set here) instead of the minimal body when given.
        A ``tools`` shape offers the tool it calls."""
        dialect = client or self.dialect
        route = self.route(dialect, upstream)
        model = route.model_for(shape)
        if payload is None:
            payload = wire.body(dialect, model, stream, message, tools=shape == "tools")
        elif dialect != "gemini":
            payload = {**payload, "model": model}
        return wire.request(
            self.base_url,
            dialect,
            model,
            stream=stream,
            key=self.api_key,
            headers=route.headers,
            payload=payload,
            gemini_prefix=route.gemini_prefix,
        )

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds of the target's processes so far (those that are still alive)."""
        return sum(process_seconds(pid) or 0.0 for pid in self.pids)

    def rss_bytes(self) -> int:
        """The resident memory of the target's processes now."""
        total = 0
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
                    for line in status:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total


def standard_routes(headers: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, Route]]:
    """Every client dialect to every upstream dialect by model name (``<upstream>.bench-{shape}``), the way
    bench/targets configures Relay and LiteLLM; ``headers`` per upstream dialect when the target needs some."""
    return {
        client: {
            upstream: Route(f"{short}.bench-{{shape}}", (headers or {}).get(upstream, {}))
            for upstream, short in SHORT.items()
        }
        for client in SHORT
    }


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (a supervisor's workers), found by parent id in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        parent = int(stat[stat.rfind(b")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [pid], list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        found.append(child)
        todo += children.get(child, ())
    return found
