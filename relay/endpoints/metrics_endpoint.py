"""GET /metrics: the Prometheus text exposition of relay/metrics.py, no key needed (docs/metrics.md).

Answered only to a caller on this machine (a loopback address and no proxy's header, as ``/healthz``
decides) unless ``[server] metrics_public = true``: the counts tell an outsider about the deployment, its
models, channels and load. Scrapes are not written to the request log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from relay import metrics
from relay.endpoints.health import local_caller
from relay.errors import RelayError
from relay.http.messages import Request, Response, StreamResponse
from relay.route import Route

if TYPE_CHECKING:
    from relay.app import Relay


def may_scrape(request: Request, public: bool) -> bool:
    """Whether ``request`` may read the metrics: any caller when they are public, else one on this machine."""
    return public or local_caller(request)


async def scrape(relay: Relay, request: Request, out: StreamResponse) -> Response:
    request.record.logged = False  # type: ignore[attr-defined]  # scrapes would flood the request log
    if not may_scrape(request, relay.config.server.metrics_public):
        raise RelayError(
            403,
            "permission",
            "/metrics is answered to callers on the Relay's own machine only; set [server] metrics_public = true "
            "to answer it to any caller",
            code="metrics_not_public",
        )
    relay.sample_metrics()
    body, content_type = metrics.exposition()
    return Response(200, body, ((b"content-type", content_type.encode()),))


ROUTES: tuple[Route, ...] = (Route("GET", "/metrics", scrape),)
