"""The one error type Relay raises for a request; each dialect renders it in its own shape."""

from __future__ import annotations

from typing import Literal

from relay.http.messages import Aborted, Headers

ErrorKind = Literal[
    "invalid_request",  # the client's request is wrong: 400
    "authentication",  # no key, unknown key: 401
    "quota",  # the key's quota cannot cover the request: 402
    "permission",  # key may not use this: 403
    "not_found",  # no such route or model: 404
    "method_not_allowed",  # 405
    "request_timeout",  # the client was too slow sending: 408
    "request_too_large",  # 413 / 431
    "rate_limit",  # 429
    "upstream",  # the upstream failed or answered an error: its status, or 502
    "timeout",  # the upstream was too slow: 504
    "not_implemented",  # a protocol feature Relay does not implement (a transfer coding, an HTTP version): 501 / 505
    "overloaded",  # Relay is at its capacity (in-flight cap, upstream connection pool): 503, retry-after
    "internal",  # a bug in Relay: 500
]


class RelayError(Exception):
    def __init__(
        self,
        status: int,
        kind: ErrorKind,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Headers = (),
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        #: What the client is told: Relay's own words, never a channel's name nor an upstream's text.
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers
        #: What the operator is told (the request log, Relay's own log): which channel, what the upstream
        #: said (redacted of anything that looks like a credential). None: the message says it all.
        self.detail = detail


_KIND_BY_STATUS: dict[int, ErrorKind] = {
    400: "invalid_request",
    401: "authentication",
    402: "quota",
    403: "permission",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "request_too_large",
    431: "request_too_large",
    429: "rate_limit",
    500: "internal",
    501: "not_implemented",
    505: "not_implemented",
    502: "upstream",
    504: "timeout",
}


def kind_for_status(status: int) -> ErrorKind:
    if status in _KIND_BY_STATUS:
        return _KIND_BY_STATUS[status]
    return "invalid_request" if status < 500 else "upstream"


class ResponseAborted(Aborted):
    """A started response that cannot end properly (a write to the client was cut, the upstream failed
    mid-answer): the connection closes (``relay.http.messages.Aborted``)."""
