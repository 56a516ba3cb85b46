"""GET /healthz: answers 200 ``{"status": "ok"}`` while the process serves; no key needed. Probes are not
written to the request log.

A caller on the same machine (a loopback address, and no ``Forwarded`` / ``X-Forwarded-For`` header, which
a reverse proxy in front of Relay adds) also gets the process's pid and the state of its request log
(records written, pending, dropped because the store could not take them). Anyone else gets the status
only: the pid and the log's counters tell an outsider about the deployment and its load.
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING

from relay.http.messages import Request, Response, StreamResponse

if TYPE_CHECKING:
    from relay.app import Relay

#: Headers a reverse proxy adds: the caller it speaks for is not on this machine.
_PROXIED = (b"forwarded", b"x-forwarded-for")


async def healthz(relay: Relay, request: Request, out: StreamResponse) -> Response:
    request.record.logged = False  # type: ignore[attr-defined]  # probes would flood the request log
    if not local_caller(request):
        return Response.json(200, {"status": "ok"})
    recorder = relay.gateway.recorder
    log = {
        "written": recorder.written,
        "pending": recorder.pending,
        "dropped": recorder.dropped,
        "store": "failing" if recorder.failing else "ok",
    }
    return Response.json(200, {"status": "ok", "pid": os.getpid(), "log": log})


def local_caller(request: Request) -> bool:
    """Whether the request comes from this machine, directly: a loopback address and no proxy's header."""
    if any(request.header(name) is not None for name in _PROXIED):
        return False
    host = request.client.rpartition(":")[0].strip("[]")  # "HOST:PORT", an IPv6 host unbracketed
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
