"""OpenAI Chat Completions (``POST /v1/chat/completions``): the codec, one name per interface.

Sans-IO: bytes in, IR out, and back. This module only re-exports, so every name of the codec interface
(``relay.dialects``) and every passthrough helper is importable from here; the code lives in
``openai.chat.request`` (the passthrough's request reading: ``read_request``, ``RequestInfo``,
``refuse_ambiguous``, ``encode_passthrough``; ``decode_request``, ``encode_request``),
``openai.chat.messages`` (a request's ``messages`` ↔ IR turns), ``openai.chat.response`` (responses, usage,
finish reasons, errors and the answer-side passthrough helpers: ``rename_model``, ``UsageReader``) and
``openai.chat.stream`` (``StreamDecoder``, ``StreamEncoder``). Each module's docstring lists the choices
made in its code; docs/conversions/openai_chat.md has them in full.
"""

from __future__ import annotations

from relay.dialects.common import error_text as error_text
from relay.dialects.openai.chat.request import (
    RequestInfo,
    decode_request,
    encode_passthrough,
    encode_request,
    read_request,
    refuse_ambiguous,
    require_kept,
)
from relay.dialects.openai.chat.response import (
    UsageReader,
    decode_error,
    decode_response,
    encode_error,
    encode_response,
    encode_stream_error,
    error_payload,
    include_usage,
    rename_model,
)
from relay.dialects.openai.chat.stream import StreamDecoder, StreamEncoder

__all__ = [
    "RequestInfo",
    "StreamDecoder",
    "StreamEncoder",
    "UsageReader",
    "decode_error",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_passthrough",
    "encode_request",
    "encode_response",
    "encode_stream_error",
    "error_payload",
    "error_text",
    "include_usage",
    "read_request",
    "refuse_ambiguous",
    "rename_model",
    "require_kept",
]
