"""Gemini ``generateContent`` / ``streamGenerateContent`` / ``countTokens``: requests, responses, errors.

Sans-IO: bytes in, IR out, and back. The model and the stream flag live in the URL (``path`` builds it).
This module is the codec ``relay.dialects`` describes; its names live in these modules, each with the
choices it makes on the users' behalf, and are re-exported here:

- ``gemini.request``: requests and countTokens requests both ways, tools, schemas, ``path``/``count_path``;
- ``gemini.contents``: a request's turns and the parts of turns and answers, function-call ids;
- ``gemini.response``: responses, countTokens answers, usage, errors, response ids, passthrough helpers;
- ``gemini.stream``: ``StreamDecoder``, ``StreamEncoder`` and ``ArraySplitter``.

docs/conversions/gemini.md has the tables in full.
"""

from __future__ import annotations

from relay.dialects.gemini.contents import DERIVED_ID_PREFIX as DERIVED_ID_PREFIX
from relay.dialects.gemini.contents import SKIP_SIGNATURE as SKIP_SIGNATURE
from relay.dialects.gemini.contents import call_id as call_id
from relay.dialects.gemini.contents import function_call_part as function_call_part
from relay.dialects.gemini.contents import wire_call_id as wire_call_id
from relay.dialects.gemini.request import (
    count_path,
    decode_count_request,
    decode_request,
    encode_count_request,
    encode_request,
    path,
    require_kept,
)
from relay.dialects.gemini.request import json_schema as json_schema
from relay.dialects.gemini.response import (
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
from relay.dialects.gemini.response import error_payload as error_payload
from relay.dialects.gemini.response import finish_reason as finish_reason
from relay.dialects.gemini.response import finish_to_wire as finish_to_wire
from relay.dialects.gemini.response import response_id as response_id
from relay.dialects.gemini.response import sse_frame as sse_frame
from relay.dialects.gemini.response import stream_error as stream_error
from relay.dialects.gemini.response import usage_from_wire as usage_from_wire
from relay.dialects.gemini.response import usage_to_wire as usage_to_wire
from relay.dialects.gemini.stream import ArraySplitter, StreamDecoder, StreamEncoder

#: The codec's interface (``relay.dialects``); the names imported ``as`` themselves above are kept for
#: users of the helpers this module held before it was split.
__all__ = [
    "ArraySplitter",
    "StreamDecoder",
    "StreamEncoder",
    "UsageReader",
    "count_path",
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
    "path",
    "rename_model",
    "require_kept",
]
