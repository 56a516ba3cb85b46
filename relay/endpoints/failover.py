"""Failover: a request's attempts on the channels of its plan, in order, until one answers.

Every endpoint that goes upstream runs its attempts through ``Failover``: generation (``relay.endpoints.generate``)
and the other APIs (``relay.endpoints.forward``). An attempt is a function of the channel, the model name the
channel knows it by, and one of the channel's upstream keys; it answers (a ``Response``, or None once it streamed
its answer itself) or raises ``RelayError``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from relay.errors import RelayError
from relay.gateway.breaker import Breaker
from relay.gateway.routing import Candidate
from relay.gateway.tally import Tally
from relay.http.messages import Request, Response, StreamResponse
from relay.redact import redact
from relay.upstream.channels import POOL_EXHAUSTED, Channel

from .ending import CHANNEL_FAULTS, End, end_of

if TYPE_CHECKING:
    from relay.app import Relay

#: One attempt: (the channel, the model name it knows, one of its upstream keys) -> the answer.
Attempt = Callable[[Channel, str, str], Awaitable[Response | None]]


class Failover:
    """Tries the plan's channels in order (and the upstream keys of each) until one answers.

    A connect error, a timeout before the first byte, a 5xx, a 429, and a 401/403 (the upstream
    refused its key) move on to the next key or channel, while nothing has reached the client and
    attempts remain (and, for an upload streamed upstream, while no byte of it that cannot be read again was
    sent: ``Request.body_spent``); any other answer, a success or the client's own error, is final. How each attempt
    ended (``relay.endpoints.ending``) is its breaker's verdict: the channel's fault, a success, or
    neither (the client left, Relay is stopping, no pooled connection was free).
    """

    def __init__(
        self, relay: Relay, request: Request, out: StreamResponse, plan: Sequence[Candidate], attempt: Attempt
    ) -> None:
        self.relay = relay
        self.request = request
        self.out = out
        self.plan = plan
        self.attempt = attempt
        self.record: Tally = request.record  # type: ignore[assignment]
        self.left = self.allowed = relay.config.routing.max_attempts

    async def run(self) -> Response | None:
        router = self.relay.gateway.router
        last: Response | RelayError | None = None
        for candidate in self.plan:
            breaker = router.breaker(candidate.channel.name)
            pool = router.keys(candidate.channel.name)
            while self.left > 0 and breaker.allow():
                api_key = pool.take()
                if api_key is None:
                    breaker.abandon()
                    break
                self.left -= 1
                try:
                    result = await self._attempt(candidate, api_key)
                except BaseException as exc:  # cancelled (the client left, the hard stop) or the client too slow
                    end = self.record.end  # as the attempt recorded it, else as the exception tells
                    if end is None:
                        end = end_of(exc, client_gone=self.out.gone, stopping=self.out.shutdown.begun)
                    self.record.end = end
                    self._judge(breaker, candidate, end, None)
                    raise
                status = self.record.upstream_status or 200
                if isinstance(result, RelayError):
                    status = result.status
                outcome = _retryable(status) if not self.out.started else None
                if outcome is not None and self.request.body_spent:
                    self.left = 0  # a streamed upload went (partly) upstream: it cannot be sent again
                if outcome is None:
                    self._judge(breaker, candidate, self.record.end, result)
                    if isinstance(result, RelayError):
                        raise result
                    return result
                last = result
                self._note(candidate, result.code or outcome if isinstance(result, RelayError) else outcome)
                if outcome == "key_refused":
                    pool.refused(api_key)
                    breaker.abandon()
                    continue
                if outcome == "rate_limited":
                    pool.rest(api_key, _retry_after(result))
                    breaker.abandon()
                    continue
                if isinstance(result, RelayError) and result.code in _NOT_THE_CHANNELS:
                    # No pooled connection was free: the channel did nothing wrong, and the pool is every
                    # channel's, so the next one would wait as long for nothing. The client retries.
                    breaker.abandon()
                    self.left = 0
                else:
                    breaker.failure()
                break
            if self.left <= 0:
                break
        if isinstance(last, RelayError):
            raise last
        if last is not None:
            return last
        raise router.unavailable(self.record.requested_model or "", self.plan)

    def _judge(
        self, breaker: Breaker, candidate: Candidate, end: End | None, result: Response | RelayError | None
    ) -> None:
        """The breaker's verdict and the attempt's outcome in the log, from how the final attempt ended (None:
        the request was refused before it reached the upstream, as one the conversion cannot carry)."""
        if end is None:
            breaker.abandon()
            self._note(candidate, str(result.status) if result is not None else "refused")
        elif end == "completed" or (end == "upstream_error" and not self.out.started):
            breaker.success()  # an answer, even the client's own error, shows the channel works
            status = self.record.upstream_status or (result.status if result is not None else 200)
            self._note(candidate, "ok" if status < 400 else str(status))
        elif end in CHANNEL_FAULTS and self.record.error_kind != "client_slow":  # a slow client: no fault of its
            breaker.failure()
            self._note(candidate, end)
        else:
            breaker.abandon()
            self._note(candidate, end)

    def _note(self, candidate: Candidate, outcome: str) -> None:
        self.record.attempts.append((candidate.channel.name, outcome))

    async def _attempt(self, candidate: Candidate, api_key: str) -> Response | RelayError | None:
        """One attempt (``_try``), as a span of the request's trace when traces are on (``relay.tracing``)."""
        tracer = self.relay.tracer
        if tracer is None:
            return await self._try(candidate, api_key)
        span = tracer.attempt(candidate.channel.name, candidate.upstream_model, self.allowed - self.left)
        try:
            result = await self._try(candidate, api_key)
        except BaseException as exc:
            span.end(self.record, exc)
            raise
        span.end(self.record, result)
        return result

    async def _try(self, candidate: Candidate, api_key: str) -> Response | RelayError | None:
        record = self.record
        record.channel = candidate.channel.name
        record.upstream_model = candidate.upstream_model
        record.multiplier = candidate.channel.price_multiplier
        record.upstream_status = None
        record.end = None
        channel = self.relay.channels[candidate.channel.name]
        try:
            return await self.attempt(channel, candidate.upstream_model, api_key)
        except RelayError as error:
            if self.out.started:
                raise
            if record.upstream_status is not None or error.kind != "invalid_request":
                record.end = end_of(error, client_gone=False, stopping=False)  # the upstream was called
            record.error_detail = redact(error.detail or error.message)
            return error


#: Error codes of attempts that never reached the upstream for want of a pooled connection.
_NOT_THE_CHANNELS = frozenset({POOL_EXHAUSTED, "upstream_pool_timeout"})


def _retryable(status: int) -> str | None:
    """What went wrong, when the next key or channel may do better; None when the answer is final."""
    if status in (401, 403):
        return "key_refused"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return str(status)
    return None


def _retry_after(result: Response | RelayError | None) -> float | None:
    headers = result.headers if isinstance(result, (Response, RelayError)) else ()
    for name, value in headers:
        if name == b"retry-after-ms":
            try:
                return float(value) / 1000
            except ValueError:
                pass
        if name == b"retry-after":
            try:
                return float(value)
            except ValueError:
                return None
    return None
