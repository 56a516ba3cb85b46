"""GET /healthz: answers 200 while the process serves, with its pid and the state of its request log
(records written, pending, dropped because the store could not take them); no key needed. Probes are
not written to the request log."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from relay.http.messages import Request, Response, StreamResponse

if TYPE_CHECKING:
    from relay.app import Relay


async def healthz(relay: Relay, request: Request, out: StreamResponse) -> Response:
    request.record.logged = False  # type: ignore[attr-defined]  # probes would flood the request log
    recorder = relay.gateway.recorder
    log = {
        "written": recorder.written,
        "pending": recorder.pending,
        "dropped": recorder.dropped,
        "store": "failing" if recorder.failing else "ok",
    }
    return Response.json(200, {"status": "ok", "pid": os.getpid(), "log": log})
