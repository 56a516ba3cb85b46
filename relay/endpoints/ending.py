"""How one upstream exchange ended: the one decision the request log, the breaker and the charge all read.

``completed``: the answer reached its end (a whole body, or a stream's terminal event).
``client_closed``: the client went away before the end.
``upstream_truncated``: the upstream's stream or body ended (or its connection broke) before its end.
``upstream_malformed``: the upstream sent what its dialect does not allow (not JSON, a broken event).
``upstream_error``: the upstream answered an error status, or could not be reached.
``timeout``: the upstream was too slow (first byte, idle gap, total), or the client did not take the answer in time.
``shutdown``: Relay was stopping, and the exchange outlived the shutdown grace.
"""

from __future__ import annotations

from typing import Literal

import trio

from relay.errors import RelayError, ResponseAborted
from relay.gateway.tally import Tally
from relay.redact import redact

End = Literal[
    "completed", "client_closed", "upstream_truncated", "upstream_malformed", "upstream_error", "timeout", "shutdown"
]

#: Ends for which the channel is to blame: the breaker counts them as failures.
CHANNEL_FAULTS: frozenset[str] = frozenset({"upstream_truncated", "upstream_malformed", "upstream_error", "timeout"})


def end_of(error: BaseException | None, *, client_gone: bool, stopping: bool) -> End:
    """How an exchange that raised ``error`` (None: it returned) ended."""
    if error is None:
        return "completed"
    if isinstance(error, trio.Cancelled | BaseExceptionGroup):
        return "shutdown" if stopping and not client_gone else "client_closed"
    if isinstance(error, ResponseAborted):
        return "timeout"
    if isinstance(error, RelayError):
        if error.code == "server_shutting_down":
            return "shutdown"
        if error.code in ("upstream_truncated", "upstream_malformed"):
            return error.code  # type: ignore[return-value]
        if error.kind == "timeout":
            return "timeout"
        return "upstream_error"
    return "upstream_error"


def record_stream_end(record: Tally, finished: bool, error: BaseException | None, failed: RelayError | None) -> None:
    """Record how a stream ended, from the one decision above: ``finished`` says the client got its terminal
    event, ``failed`` is the upstream's own error event (or the truncation or malformation a converter turned
    into one), ``error`` what the relaying raised."""
    error = failed or error
    if finished and failed is None:
        record.end = "completed"
    elif isinstance(error, RelayError):
        record.end = end_of(error, client_gone=False, stopping=False)
        record.error_kind = error.kind
        record.error_detail = redact(error.detail or error.message)
    elif isinstance(error, ResponseAborted):
        record.end = "timeout"
        record.error_kind = "client_slow"
        record.error_detail = str(error)
