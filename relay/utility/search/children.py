"""A request Relay makes for a client's request and answers itself (``Relay.handle``): a research's searches, a
search's rerank. As ``relay.utility.calls`` makes the model calls: the same key (``secret``, the one the client
presented), routing, failover, quota hold, prices and a row of its own in the request log, linked to the request it
was made for (``parent_id``); its units and cost are added to that request's tally, whose row shows the sum.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from relay.errors import RelayError, kind_for_status
from relay.http.messages import Headers, Request
from relay.http.shutdown import Shutdown
from relay.utility.calls import account_child

if TYPE_CHECKING:
    from relay.app import Relay


async def call_json(
    relay: Relay, parent: Request, secret: str, shutdown: Shutdown, path: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """``POST path`` with ``payload``, answered whole: its JSON object; RelayError as it was answered when it failed
    (its status, message and code, OpenAI's shape)."""
    headers = [(b"authorization", b"Bearer " + secret.encode("latin-1")), (b"content-type", b"application/json")]
    child = Request("POST", path, "", headers, orjson.dumps(payload), parent.client)
    try:
        response = await relay.handle(child, _Whole(shutdown), parent_id=parent.id)
    finally:
        account_child(parent, child)
    if response is None:
        raise RelayError(502, "upstream", f"{path} answered with a stream", code="bad_upstream_answer")
    answer = _payload(response.body)
    if response.status >= 400:
        error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        message = str(error.get("message") or f"{path} failed with status {response.status}")
        code = error.get("code")
        raise RelayError(response.status, kind_for_status(response.status), message, code=str(code) if code else None)
    return answer


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return payload if isinstance(payload, dict) else {}


class _Whole:
    """Where a child's answer goes instead of a socket: it is answered whole (a ``Response``), never streamed."""

    def __init__(self, shutdown: Shutdown) -> None:
        self._shutdown = shutdown
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    @property
    def gone(self) -> bool:
        return False

    @property
    def shutdown(self) -> Shutdown:
        return self._shutdown

    async def start(self, status: int, headers: Headers) -> None:
        self._started = True

    async def send(self, data: bytes) -> None:
        return None

    def send_nowait(self, data: bytes) -> bool:
        return True
