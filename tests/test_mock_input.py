"""The mock upstream refuses JSON nested deeper than it reads (``relay.mock.call.MAX_DEPTH``, docs/mock.md) with
a 400 in the route's dialect, instead of failing when it writes its answer (orjson writes at most 254 levels)."""

from __future__ import annotations

import orjson
import pytest

from relay.mock.router import Mock

#: ``relay.mock.call.MAX_DEPTH``, as docs/mock.md documents it.
MAX_DEPTH = 200


def deep(depth: int) -> str:
    return '{"a":' * (depth - 1) + "[]" + "}" * (depth - 1)


ROUTES = [
    ("/v1/chat/completions", '{"model": "mock-1", "messages": [{"role": "user", "content": "hi"}], "metadata": X}'),
    ("/v1/responses", '{"model": "mock-1", "input": "hi", "metadata": X}'),
    ("/v1/responses/input_tokens", '{"model": "mock-1", "input": "hi", "metadata": X}'),
    ("/v1/messages", '{"model": "mock-1", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}], "m": X}'),
    ("/v1/messages/count_tokens", '{"model": "mock-1", "messages": [{"role": "user", "content": "hi"}], "m": X}'),
    ("/v1beta/models/mock-1:generateContent", '{"contents": [{"parts": [{"text": "hi"}]}], "labels": X}'),
    ("/v1beta/models/mock-1:countTokens", '{"contents": [{"parts": [{"text": "hi"}]}], "labels": X}'),
]
HEADERS = [(b"anthropic-version", b"2023-06-01")]


@pytest.mark.parametrize(("path", "template"), ROUTES, ids=[r[0] for r in ROUTES])
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 254, 300, 1000])
def test_the_mock_refuses_json_nested_too_deeply_in_its_dialect(path: str, template: str, depth: int) -> None:
    answer = Mock().route("POST", path, "", HEADERS, template.replace("X", deep(depth)).encode())
    assert answer.status == 400
    assert isinstance(answer.body, bytes)
    error = orjson.loads(answer.body)["error"]
    assert "nested too deeply" in error["message"]
    if "models/" in path:
        assert error["status"] == "INVALID_ARGUMENT"
    elif "messages" in path:
        assert error["type"] == "invalid_request_error"


#: Routes whose strict checks let a free-form object through (``metadata``, ``labels``).
FREE_FORM = [r for r in ROUTES if r[0] in ("/v1/chat/completions", "/v1/responses", ROUTES[5][0])]


@pytest.mark.parametrize(("path", "template"), FREE_FORM, ids=[r[0] for r in FREE_FORM])
def test_the_mock_answers_json_as_deep_as_relay_sends(path: str, template: str) -> None:
    answer = Mock().route("POST", path, "", HEADERS, template.replace("X", deep(MAX_DEPTH - 3)).encode())
    assert answer.status == 200, answer.body
