"""Anthropic Messages (``POST /v1/messages``, ``/v1/messages/count_tokens``): the codec, one name per interface.

Sans-IO: bytes in, IR out, and back. This module only re-exports; the code lives in
``anthropic.request`` (requests and count_tokens requests: decoding, encoding, the thinking budget, tools),
``anthropic.response`` (responses, content blocks, count_tokens answers, errors, the passthrough helpers) and
``anthropic.stream`` (``StreamDecoder``, ``StreamEncoder`` and the wire mappings they share). Each module's
docstring lists the choices made in its code; docs/conversions/anthropic.md has them in full.
"""

from __future__ import annotations

from relay.dialects.anthropic.request import DEFAULT_MAX_TOKENS as DEFAULT_MAX_TOKENS
from relay.dialects.anthropic.request import JSON_OBJECT_INSTRUCTION as JSON_OBJECT_INSTRUCTION
from relay.dialects.anthropic.request import MIN_THINKING_BUDGET as MIN_THINKING_BUDGET
from relay.dialects.anthropic.request import (
    decode_count_request,
    decode_request,
    encode_count_request,
    encode_request,
    require_kept,
    upstream_headers,
)
from relay.dialects.anthropic.response import (
    UsageReader,
    decode_count_response,
    decode_error,
    decode_response,
    encode_count_response,
    encode_error,
    encode_response,
    encode_stream_error,
    rename_model,
)
from relay.dialects.anthropic.stream import StreamDecoder, StreamEncoder
from relay.dialects.anthropic.stream import error_frame as error_frame
from relay.dialects.anthropic.stream import error_payload as error_payload
from relay.dialects.anthropic.stream import finish_reason as finish_reason
from relay.dialects.anthropic.stream import stop_reason as stop_reason
from relay.dialects.anthropic.stream import tool_id as tool_id
from relay.dialects.anthropic.stream import usage_from_wire as usage_from_wire
from relay.dialects.anthropic.stream import usage_to_wire as usage_to_wire

__all__ = [
    "StreamDecoder",
    "StreamEncoder",
    "UsageReader",
    "decode_count_request",
    "decode_count_response",
    "decode_error",
    "decode_request",
    "decode_response",
    "encode_count_request",
    "encode_count_response",
    "encode_error",
    "encode_request",
    "encode_response",
    "encode_stream_error",
    "rename_model",
    "require_kept",
    "upstream_headers",
]
