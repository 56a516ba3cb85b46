"""What Anthropic and Gemini answer after a web search they ran (whole and streamed): shared by the tests of
hosted tools (tests/dialects/test_responses_tools.py, tests/test_hosted_tools.py)."""

from __future__ import annotations

from typing import Any

import orjson

ANTHROPIC_SEARCH = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "relay trio"}},
        {
            "type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_1",
            "content": [
                {"type": "web_search_result", "url": "https://a.example/1", "title": "A", "encrypted_content": "e"},
                {"type": "web_search_result", "url": "https://b.example/2", "title": "B", "encrypted_content": "e"},
            ],
        },
        {"type": "text", "text": "Here is what I found: "},
        {
            "type": "text",
            "text": "Trio is a library.",
            "citations": [
                {
                    "type": "web_search_result_location",
                    "url": "https://a.example/1",
                    "title": "A",
                    "encrypted_index": "x",
                    "cited_text": "Trio…",
                }
            ],
        },
    ],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 5, "server_tool_use": {"web_search_requests": 1}},
}


def anthropic_sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


ANTHROPIC_SEARCH_STREAM = anthropic_sse(
    {"type": "message_start", "message": {**ANTHROPIC_SEARCH, "content": [], "stop_reason": None}},
    {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
    },
    {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"query": '}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '"relay"}'}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": ANTHROPIC_SEARCH["content"][1]},
    {"type": "content_block_stop", "index": 1},
    {"type": "content_block_start", "index": 2, "content_block": {"type": "text", "text": "", "citations": []}},
    {
        "type": "content_block_delta",
        "index": 2,
        "delta": {"type": "citations_delta", "citation": ANTHROPIC_SEARCH["content"][3]["citations"][0]},
    },
    {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "Trio is "}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "a library."}},
    {"type": "content_block_stop", "index": 2},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}},
    {"type": "message_stop"},
)


GROUNDED = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"text": "Trio is a library."}]},
            "finishReason": "STOP",
            "groundingMetadata": {
                "webSearchQueries": ["python trio"],
                "groundingChunks": [{"web": {"uri": "https://vertexaisearch.example/r1", "title": "trio.dev"}}],
                "groundingSupports": [{"segment": {"startIndex": 0, "endIndex": 18}, "groundingChunkIndices": [0]}],
            },
        }
    ],
    "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 5, "totalTokenCount": 10},
    "modelVersion": "gemini-2.5-flash",
    "responseId": "abc",
}
