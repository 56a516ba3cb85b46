"""OpenAI Responses (``POST /v1/responses``): requests, responses, errors and input tokens, to and from the IR.

Sans-IO: bytes in, IR out, and back. This module is the dialect's codec (``relay.dialects.codecs``); its code
is in four modules, each listing the choices it makes on users' behalf (docs/conversions/openai_responses.md
has the table):

- ``openai.responses.items``: a request's ``input`` items (messages and their content parts, function calls,
  their outputs, reasoning items) to and from IR turns.
- ``openai.responses.request``: whole requests and input-token count bodies (``decode_request``,
  ``encode_request``, ``decode_count_request``, ``encode_count_request``), and ``convertible`` /
  ``require_convertible``, which name what only OpenAI Responses can serve.
- ``openai.responses.response``: Response bodies and output items, ids, usage (``UsageReader``),
  ``rename_model``, input-token count answers and errors (the OpenAI shape
  ``{"error": {"message", "type", "param", "code"}}``).
- ``openai.responses.stream``: ``StreamDecoder`` and ``StreamEncoder``.
"""

from __future__ import annotations

from relay.dialects.openai.responses.items import DIALECT, encode_input, reasoning_item
from relay.dialects.openai.responses.request import (
    ENCRYPTED_REASONING,
    MIN_OUTPUT_TOKENS,
    convertible,
    decode_count_request,
    decode_request,
    encode_choice,
    encode_count_request,
    encode_format,
    encode_reasoning,
    encode_request,
    encode_tool,
    require_convertible,
    require_kept,
)
from relay.dialects.openai.responses.response import (
    UsageReader,
    call_ids,
    call_item,
    decode_count_response,
    decode_error,
    decode_output_item,
    decode_response,
    encode_count_response,
    encode_error,
    encode_response,
    encode_stream_error,
    error_event,
    failure,
    message_item,
    output_items,
    reasoning_id,
    rename_model,
    response_echo,
    response_id,
    response_object,
    status_for_code,
    status_of,
    usage_from_wire,
    usage_to_wire,
)
from relay.dialects.openai.responses.stream import StreamDecoder, StreamEncoder

__all__ = [
    "StreamDecoder",
    "StreamEncoder",
    "UsageReader",
    "convertible",
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
    "require_convertible",
    "require_kept",
]
#: Public too: the pieces the stream codec and the tests build on (this module defined them all before the split).
__all__ += [
    "DIALECT",
    "ENCRYPTED_REASONING",
    "MIN_OUTPUT_TOKENS",
    "call_ids",
    "call_item",
    "decode_output_item",
    "encode_choice",
    "encode_format",
    "encode_input",
    "encode_reasoning",
    "encode_tool",
    "error_event",
    "failure",
    "message_item",
    "output_items",
    "reasoning_id",
    "reasoning_item",
    "response_echo",
    "response_id",
    "response_object",
    "status_for_code",
    "status_of",
    "usage_from_wire",
    "usage_to_wire",
]
