"""Relay's refusals in the Anthropic dialect read as Anthropic's own, class by class, by Claude Code's own tests.

Claude Code decides how to recover from an API error by its status, its ``type`` and its words: it drops its
mid-conversation system messages on a refused ``role: "system"``, its tool changes or per-turn settings when they
are refused, compacts on "prompt is too long", falls back to another model on a missing or forbidden model, stops
on billing. The classifiers below are copied from Claude Code 2.1.332 (``@anthropic-ai/claude-code``: the bundled
JavaScript of ``bin/claude.exe``, functions ``jLi``, ``Pje``, ``Oje``, ``Vwt``, ``Ugt``, ``WDe``, ``Y$``, ``H``,
``the``, ``nyo``), translated to Python as they are; each test sends or renders one of Relay's refusals and checks
that the classifier of its class fires, on the message Claude Code sees: the SDK's ``APIError.message``,
``f"{status} {JSON.stringify(body)}"``. docs/conversions/anthropic.md has the table.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from relay.config import loads
from relay.dialects.anthropic import codec as anthropic
from relay.dialects.gemini import codec as gemini
from relay.dialects.openai.chat import codec as openai_chat
from relay.endpoints.upstream_error import relay_error
from relay.errors import RelayError
from relay.gateway.overload import OVERLOADED
from relay.upstream.channels import pool_exhausted
from tests.conftest import KEY, serve_relay

# ---- Claude Code 2.1.332's classifiers (bin/claude.exe), as they are -----------------------------------------

MID_CONV_BETA = "mid-conversation-system-2026-04-07"  # qDt
_TN = re.compile(
    r"(?:messages\.(\d{1,6}): )?(?:role .{0,2}system.{0,2} must (?:precede an|follow a)|"
    r"use the top-level .{0,2}system.{0,2} parameter for the initial system prompt)",
    re.I,
)
_XN = re.compile(r"text-only role .{0,2}system.{0,2} messages require", re.I)
_CN = re.compile(
    r"(?:unknown variant .{0,2}system\b.{0,2}, expected|Input should be) [\\'\"`]{1,2}(?:user|assistant)\b.{0,2} "
    r"or [\\'\"`]{1,2}(?:user|assistant)\b",
    re.I,
)
_DT = re.compile(r"system messages?\b|role .{0,2}system", re.I)


def mid_conv_system(e: str) -> bool:
    """``jLi``: a 400 that refuses a mid-conversation ``role: "system"`` message (Claude Code drops them)."""
    if MID_CONV_BETA in e and re.search(r"anthropic[-_]beta", e):
        return True
    if _TN.search(e) or _XN.search(e):
        return True
    if ("Unexpected role" in e and "input message role" in e) or _CN.search(e):
        return True
    if "cache_control" in e and _DT.search(e):
        return True
    return "not supported" in e and re.search(r"role .{0,2}system", e, re.I) is not None


def tool_change_refused(status: int, e: str) -> str | None:
    """``Pje`` (after the beta-header checks): why mid-conversation tool changes were refused."""
    if status != 400 or not re.search(r"\btool_addition\b", e) or "cache_control" in e:
        return None
    if "not supported on this model" in e or "requires a model that supports" in e:
        return "model_unsupported"
    return "other"


def per_turn_refused(status: int, e: str) -> str | None:
    """``Vwt`` / ``Oje``: the per-turn timing statement, or the per-turn effort, was refused."""
    if status != 400:
        return None
    if "output_config.timing" in e:
        return "timing"
    return "effort" if "output_config" in e else None


def model_not_found(status: int, e: str) -> bool:  # Ugt
    return status == 404 and '"type":"not_found_error"' in e and "model:" in e


def model_forbidden(status: int, e: str) -> bool:  # WDe
    return status == 403 and '"type":"permission_error"' in e and "model:" in e


def overloaded(status: int, e: str) -> bool:  # Y$
    return status == 529 or '"type":"overloaded_error"' in e


def rate_limited(status: int, e: str) -> bool:  # H
    return status == 429 or '"type":"rate_limit_error"' in e


def out_of_credit(e: str) -> bool:  # the
    return "credit balance is too low" in e.lower()


def prompt_too_long(e: str) -> bool:  # nyo
    return "prompt is too long" in e.lower() or "input is too long for requested model" in e.lower()


def sdk_message(status: int, body: bytes) -> str:
    """What the anthropic TypeScript SDK makes of an error answer: ``APIError.makeMessage``."""
    return f"{status} {json.dumps(json.loads(body), separators=(',', ':'), ensure_ascii=False)}"


def rendered(error: RelayError) -> tuple[int, str]:
    status, _, body = anthropic.encode_error(error, request_id="req_1")
    return status, sdk_message(status, body)


# ---- through Relay ------------------------------------------------------------------------------------------

CONFIG = f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "sqlite://:memory:"

[[channels]]
name = "gemini"
type = "mock"
models = ["gemini-1", "gemini-secret"]
[channels.mock]
dialect = "gemini"

[[keys]]
name = "test"
key = "{KEY}"
models = ["gemini-1", "ghost-*"]
"""
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
HI = {"role": "user", "content": "hi"}


@pytest.fixture
async def relay() -> AsyncIterator[httpx.AsyncClient]:
    async with serve_relay(loads(CONFIG)) as served, httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        yield client


async def post(relay: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str] = HEADERS) -> tuple[int, str]:
    answer = await relay.post("/v1/messages", json={"model": "gemini-1", "max_tokens": 64, **body}, headers=headers)
    return answer.status_code, sdk_message(answer.status_code, answer.content)


@pytest.mark.parametrize(
    "message",
    [
        {"role": "tool", "content": "x"},  # a role no API has
        {"role": "system", "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]},
    ],
)
async def test_a_system_message_relay_cannot_convert_reads_as_a_refused_mid_conversation_system(relay, message):
    status, said = await post(relay, {"messages": [HI, message]})
    assert status == 400 and mid_conv_system(said), said


async def test_tool_changes_relay_cannot_convert_read_as_unsupported_on_this_model(relay):
    change = {"role": "system", "content": [{"type": "tool_addition", "tool": {"name": "ls"}}]}
    status, said = await post(relay, {"messages": [HI, change]})
    assert tool_change_refused(status, said) == "model_unsupported", said
    assert not mid_conv_system(said)  # else Claude Code would drop its system messages instead


async def test_a_per_turn_setting_relay_cannot_convert_reads_as_refused_per_turn(relay):
    statement = {"role": "system", "content": [], "output_config": {"timing": {"now": "12:00"}}}
    status, said = await post(relay, {"messages": [HI, statement]})
    assert per_turn_refused(status, said) == "timing", said
    assert not mid_conv_system(said)


async def test_the_other_refusals_are_not_taken_for_a_refused_system_message(relay):
    status, said = await post(relay, {"messages": [HI], "thinking": {"type": "on"}})
    assert status == 400 and not mid_conv_system(said)
    status, said = await post(relay, {"messages": [{"role": "system", "content": "Be brief."}, HI]})
    assert status == 200, said  # a leading system message is the system prompt


async def test_an_unknown_key_is_anthropics_invalid_x_api_key(relay):
    status, said = await post(relay, {"messages": [HI]}, {**HEADERS, "x-api-key": "sk-nobody"})
    assert status == 401
    assert '{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}' in said


async def test_a_missing_or_forbidden_model_names_the_model_as_anthropic_does(relay):
    missing = await relay.post(
        "/v1/messages", json={"model": "ghost-1", "max_tokens": 8, "messages": [HI]}, headers=HEADERS
    )
    assert model_not_found(missing.status_code, sdk_message(missing.status_code, missing.content)), missing.text
    forbidden = await relay.post(
        "/v1/messages", json={"model": "gemini-secret", "max_tokens": 8, "messages": [HI]}, headers=HEADERS
    )
    assert model_forbidden(forbidden.status_code, sdk_message(forbidden.status_code, forbidden.content)), forbidden.text


async def test_a_field_the_channel_has_no_equivalent_for_is_an_extra_input(relay):
    status, said = await post(relay, {"messages": [HI], "response_format": {"type": "json_object"}})
    assert status == 400 and "response_format: Extra inputs are not permitted" in said, said
    assert "'response_format'" in said  # Relay's own account follows


# ---- rendered: the errors the gateway and the upstreams give -------------------------------------------------


def test_relay_at_its_capacity_reads_as_overloaded():
    for error in (
        RelayError(503, "overloaded", "Relay is serving as many requests as it can; retry in 1 s", code=OVERLOADED),
        pool_exhausted("channel 'x'"),
    ):
        status, said = rendered(error)
        assert status == 503 and overloaded(status, said), said  # the SDK retries a 503 as it would a 529


def test_an_upstream_overloaded_answer_reads_as_overloaded():
    decoded = anthropic.decode_error(
        529, b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    )
    status, said = rendered(relay_error(decoded, True, anthropic, answered=529))
    assert status == 529 and overloaded(status, said)


def test_rate_limits_read_as_rate_limits():
    for error in (
        RelayError(429, "rate_limit", "rate limit reached: this key may use 1 requests per minute; retry in 9 s"),
        relay_error(openai_chat.decode_error(429, b'{"error":{"message":"slow down"}}'), True, anthropic, answered=429),
    ):
        status, said = rendered(error)
        assert rate_limited(status, said) and '"type":"rate_limit_error"' in said


def test_a_quota_that_cannot_cover_the_request_reads_as_out_of_credit():
    quota = RelayError(402, "quota", "this key's quota cannot cover the request", code="insufficient_quota")
    status, said = rendered(quota)
    assert status == 402 and out_of_credit(said) and '"type":"billing_error"' in said


@pytest.mark.parametrize(
    ("upstream", "body"),
    [
        (
            openai_chat,
            b'{"error":{"message":"This model\'s maximum context length is 8192 tokens. However, your messages '
            b'resulted in 9000 tokens.","type":"invalid_request_error","param":"messages",'
            b'"code":"context_length_exceeded"}}',
        ),
        (
            openai_chat,
            b'{"error":{"message":"Input tokens exceed the configured limit of 272000 tokens. Your messages '
            b'resulted in 300000 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}',
        ),
        (
            gemini,
            b'{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens '
            b'allowed (1048576).","status":"INVALID_ARGUMENT"}}',
        ),
        (
            anthropic,
            b'{"type":"error","error":{"type":"invalid_request_error",'
            b'"message":"prompt is too long: 210000 tokens > 200000 maximum"}}',
        ),
    ],
)
def test_an_upstream_context_overflow_reads_as_prompt_too_long(upstream, body):
    decoded = upstream.decode_error(400, body)
    status, said = rendered(relay_error(decoded, True, anthropic, answered=400))
    assert status == 400 and prompt_too_long(said), said
    assert said.lower().count("prompt is too long") == 1  # said once, not twice


def test_an_ordinary_refusal_is_not_taken_for_another_class():
    status, said = rendered(RelayError(400, "invalid_request", "'stop_sequences[0]' must be a string", param="x"))
    assert not any((mid_conv_system(said), prompt_too_long(said), per_turn_refused(status, said), out_of_credit(said)))
