"""GET /healthz: answers 200 and the worker's pid while the process serves; no key needed."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from relay.http.messages import Request, Response, StreamResponse

if TYPE_CHECKING:
    from relay.app import Relay


async def healthz(relay: Relay, request: Request, out: StreamResponse) -> Response:
    return Response.json(200, {"status": "ok", "pid": os.getpid()})
