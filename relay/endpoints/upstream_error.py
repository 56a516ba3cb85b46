"""An upstream's error answer, told to the client in Relay's own words and to the operator in the upstream's.

The client gets an error in its own dialect with Relay's message, never the upstream's text (it may
echo the channel's key, name a provider, or be an HTML page), not even when client and channel speak
the same dialect. The class of the failure is kept, so that SDKs retry what they should:

========================  =============================  =========================================
upstream status           client status                  client message / code
========================  =============================  =========================================
400, 404, 409, 413, 422   the same                       ``the upstream rejected the request: …``
                                                         (the upstream's own message, redacted, when
                                                         its body is its dialect's JSON error; else
                                                         the status's reason); its code and param kept
401, 403                  502                            ``upstream authentication failed`` /
                                                         ``upstream_auth_failed`` (never the client's
                                                         own 401: its Relay key is fine)
429                       429                            ``upstream_rate_limited``
408, 504                  504                            ``upstream_timeout``
503                       503                            ``upstream_unavailable``
529 (overloaded)          529 to Anthropic clients,      ``overloaded`` (Anthropic: ``overloaded_error``)
                          503 to the others
other 4xx, other 5xx      502                            ``upstream_error``
========================  =============================  =========================================

``retry-after``, ``retry-after-ms`` and ``x-should-retry`` are kept (Gemini's ``RetryInfo`` becomes a
``retry-after``). The upstream's text, its status and the channel go to ``RelayError.detail`` (redacted
by ``relay.redact``), for the request log and Relay's own log only.
"""

from __future__ import annotations

import re
from types import ModuleType

import orjson

from relay.dialects import ir
from relay.dialects.codecs import dialect_of
from relay.errors import RelayError, kind_for_status
from relay.gateway.tally import Tally
from relay.http.messages import Response
from relay.redact import redact
from relay.upstream.exchange import Exchange
from relay.upstream.response import UpstreamResponse


async def error_answer(
    record: Tally, upstream: UpstreamResponse, exchange: Exchange, source: ModuleType, client: ModuleType
) -> Response:
    """``upstream_error``, and what it means for the request's record: how the exchange ended, the status it
    counts as (what failover goes by) and the operator's account of it."""
    answer = await upstream_error(upstream, exchange, source, client)
    record.end = "upstream_error"
    record.upstream_status = exchange.upstream_status
    record.error_detail = exchange.error.detail if exchange.error is not None else None
    return answer


#: Upstream headers an error keeps: the SDKs read them to decide when (and whether) to retry.
KEPT_ON_ERROR = (b"retry-after", b"retry-after-ms", b"x-should-retry")
#: Upstream statuses the client's request caused: relayed with their status, and the upstream's reason.
CLIENT_CAUSED: dict[int, str] = {
    400: "invalid request",
    404: "not found",
    409: "conflict",
    413: "request too large",
    422: "unprocessable request",
}
#: Longest upstream message a client is told (client-caused errors only).
CLIENT_TEXT_LIMIT = 1000
#: Longest account of an upstream error kept for the operator.
DETAIL_LIMIT = 2000
#: An upstream's ``code`` or ``param`` is kept for the client only when it is an identifier.
_IDENTIFIER = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,64}")


async def upstream_error(
    upstream: UpstreamResponse, exchange: Exchange, source: ModuleType, client: ModuleType
) -> Response:
    """The upstream's error answer, in the client's dialect and Relay's words (the module docstring's table),
    whether or not the client speaks the upstream's dialect: the upstream's body never passes.

    Sets ``exchange.error`` (the RelayError told, with the operator's ``detail``) and
    ``exchange.upstream_status`` (the upstream's status as Relay reads it: Gemini's 400 ``API_KEY_INVALID``
    is a 401), for the failover loop and the request log.
    """
    body = await exchange.read_body(upstream)
    kept = tuple((name.lower(), value) for name, value in upstream.headers if name.lower() in KEPT_ON_ERROR)
    decoded = source.decode_error(upstream.status, body)
    shaped = in_shape(dialect_of(source), body)
    error = relay_error(decoded, shaped, client, answered=upstream.status, secrets=(exchange.api_key,))
    said = decoded.message if shaped else body.decode("utf-8", "replace")
    code = f" ({decoded.code})" if shaped and decoded.code else ""
    error.detail = redact(
        f"channel '{exchange.channel}': upstream answered {upstream.status}{code}: {said}",
        DETAIL_LIMIT,
        secrets=(exchange.api_key,),
    )
    retry = tuple(h for h in decoded.headers if h[0] not in {name for name, _ in kept})
    error.headers = (*error.headers, *retry, *kept)
    exchange.error = error
    exchange.upstream_status = decoded.status
    status, headers, data = client.encode_error(error)
    return Response(status, data, headers)


def relay_error(
    decoded: RelayError, shaped: bool, client: ModuleType, *, answered: int, secrets: tuple[str, ...] = ()
) -> RelayError:
    """What the client is told of the upstream error ``decoded`` (``shaped``: its body had its dialect's shape;
    ``answered``: the status the upstream sent, named in the message)."""
    status = decoded.status
    if status in CLIENT_CAUSED:
        reason = CLIENT_CAUSED[status]
        if shaped:
            reason = redact(decoded.message, CLIENT_TEXT_LIMIT, secrets=secrets) or reason
        error = RelayError(status, kind_for_status(status), f"the upstream rejected the request: {reason}")
        error.code = _identifier(decoded.code) or "upstream_rejected"
        error.param = _identifier(decoded.param)
        return error
    if status in (401, 403):
        return RelayError(
            502,
            "upstream",
            f"upstream authentication failed: the upstream refused Relay's credentials ({answered}); "
            "this is not about your API key",
            code="upstream_auth_failed",
        )
    if status == 429:
        return RelayError(
            429, "rate_limit", "the upstream is rate limiting requests; retry later", code="upstream_rate_limited"
        )
    if status in (408, 504):
        return RelayError(504, "timeout", f"the upstream timed out ({answered})", code="upstream_timeout")
    if status == 503:
        return RelayError(503, "upstream", "the upstream is unavailable (503)", code="upstream_unavailable")
    if status == 529:
        anthropic = dialect_of(client) == "anthropic"
        return RelayError(529 if anthropic else 503, "upstream", "the upstream is overloaded (529)", code="overloaded")
    return RelayError(502, "upstream", f"the upstream failed ({answered})", code="upstream_error")


def _identifier(value: str | None) -> str | None:
    return value if value is not None and _IDENTIFIER.fullmatch(value) else None


def in_shape(dialect: ir.Dialect, body: bytes) -> bool:
    """Whether an error body has the error shape of ``dialect``."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(payload, dict) or not isinstance(payload.get("error"), dict):
        return False
    error = payload["error"]
    if not isinstance(error.get("message"), str):
        return False
    if dialect == "anthropic":
        return payload.get("type") == "error" and isinstance(error.get("type"), str)
    if dialect == "gemini":
        return isinstance(error.get("code"), int)
    return True
