"""The embeddings codecs (relay.dialects.openai.embeddings, relay.dialects.gemini.embeddings) and the mock's
embeddings routes, without sockets; and a ``mock`` channel (the in-process transport) answering embeddings through
Relay."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from relay.dialects.gemini import embeddings as embeddings_gemini
from relay.dialects.openai import embeddings as embeddings_openai
from relay.errors import RelayError
from relay.mock.router import Mock
from relay.mock.wire_embeddings import DIMENSIONS, MAX_DIMENSIONS, vector
from tests.conftest import serve_relay
from tests.helpers import AUTH, raw_request


def mock_post(path: str, payload: Any) -> tuple[int, Any]:
    answer = Mock().route("POST", path, "", [(b"content-type", b"application/json")], orjson.dumps(payload))
    assert isinstance(answer.body, bytes)
    return answer.status, orjson.loads(answer.body)


# ---- the mock ------------------------------------------------------------------------------------------------


def test_mock_vectors_are_deterministic_unit_vectors() -> None:
    assert vector("hello") == vector("hello") != vector("hello!")
    for size in (1, 8, DIMENSIONS, 100):
        assert len(vector("hello", size)) == size
        assert abs(sum(v * v for v in vector("hello", size)) - 1.0) < 1e-5
    status, first = mock_post("/v1/embeddings", {"model": "m", "input": ["a", "b"]})
    assert status == 200
    assert mock_post("/v1/embeddings", {"model": "m", "input": ["a", "b"]})[1] == first
    assert first["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


def test_mock_base64_is_the_float_vector() -> None:
    _, floats = mock_post("/v1/embeddings", {"model": "m", "input": "x", "dimensions": 5})
    _, packed = mock_post("/v1/embeddings", {"model": "m", "input": "x", "dimensions": 5, "encoding_format": "base64"})
    assert embeddings_openai.decode_vector(packed["data"][0]["embedding"]) == floats["data"][0]["embedding"]


@pytest.mark.parametrize(
    "payload",
    [
        {"model": "m"},
        {"input": "x"},
        {"model": "m", "input": ""},
        {"model": "m", "input": ["a", 1]},
        {"model": "m", "input": [[1], [-1]]},
        {"model": "m", "input": "x", "dimensions": MAX_DIMENSIONS + 1},
        {"model": "m", "input": "x", "encoding_format": "hex"},
        {"model": "m", "input": "x", "colour": "blue"},
    ],
)
def test_mock_refuses_what_openai_refuses(payload: dict[str, Any]) -> None:
    status, body = mock_post("/v1/embeddings", payload)
    assert status == 400 and set(body["error"]) == {"message", "type", "param", "code"}


def gem(text: str = "hi", model: str | None = "m", **extra: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"content": {"parts": [{"text": text}]}, **extra}
    if model is not None:
        request["model"] = f"models/{model}"
    return request


@pytest.mark.parametrize(
    ("verb", "payload"),
    [
        ("embedContent", {}),
        ("embedContent", {"content": {"parts": [{"inlineData": {"data": "AA=="}}]}}),
        ("embedContent", gem(colour="blue")),
        ("embedContent", gem(taskType="GUESS")),
        ("embedContent", gem(outputDimensionality=0)),
        ("embedContent", gem(model="other")),
        ("batchEmbedContents", {"requests": []}),
        ("batchEmbedContents", {"requests": [gem(model=None)]}),
        ("batchEmbedContents", {"requests": [gem()], "extra": 1}),
    ],
)
def test_mock_refuses_what_gemini_refuses(verb: str, payload: dict[str, Any]) -> None:
    status, body = mock_post(f"/v1beta/models/m:{verb}", payload)
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT", body


def test_mock_gemini_answers_and_takes_snake_case() -> None:
    status, one = mock_post("/v1beta/models/m:embedContent", gem("x", output_dimensionality=3, task_type="CLUSTERING"))
    assert status == 200 and one == {"embedding": {"values": vector("x", 3)}}
    status, batch = mock_post("/v1beta/models/m:batchEmbedContents", {"requests": [gem("a"), gem("b")]})
    assert status == 200 and batch == {"embeddings": [{"values": vector("a")}, {"values": vector("b")}]}
    status, failed = mock_post("/v1beta/models/m:embedContent", gem("mock:status=429"))
    assert status == 429 and failed["error"]["status"] == "RESOURCE_EXHAUSTED"


# ---- the codecs ----------------------------------------------------------------------------------------------


def test_openai_vector_encodings_round_trip() -> None:
    values = vector("round trip", 7)
    packed = embeddings_openai.encode_vector(values, "base64")
    assert isinstance(packed, str)
    assert embeddings_openai.decode_vector(packed) == values
    assert embeddings_openai.decode_vector(embeddings_openai.encode_vector(values, "float")) == values
    assert embeddings_openai.decode_vector("not base64!") is None
    assert embeddings_openai.decode_vector([1.0, "x"]) is None


def test_openai_answer_checked_against_the_request() -> None:
    good = orjson.dumps({"data": [{"index": 1, "embedding": [0.5]}, {"index": 0, "embedding": [0.25]}]})
    _, vectors, tokens = embeddings_openai.read_answer(good, 2)
    assert vectors == [[0.25], [0.5]] and tokens == 0
    for bad in (
        {"data": [{"index": 0, "embedding": [0.5]}]},
        {"data": [{"index": 0, "embedding": [0.5]}, {"index": 0, "embedding": [0.5]}]},
        {"data": [{"index": 0, "embedding": "%%"}, {"index": 1, "embedding": [0.5]}]},
        {"object": "list"},
    ):
        with pytest.raises(RelayError) as caught:
            embeddings_openai.read_answer(orjson.dumps(bad), 2)
        assert caught.value.status == 502


def test_gemini_request_to_openai_and_back() -> None:
    body = orjson.dumps(
        {"requests": [gem("a\u00e9", "g", outputDimensionality=4), gem("b", "g", outputDimensionality=4)]}
    )
    call = embeddings_gemini.read_batch(body, "g")
    assert json.loads(embeddings_gemini.openai_body(call, "up")) == {
        "model": "up",
        "input": ["a\u00e9", "b"],
        "encoding_format": "float",
        "dimensions": 4,
    }
    assert embeddings_gemini.estimate_tokens(["a\u00e9", "b"]) == 2  # 3 bytes and 1 byte: a token each
    renamed = json.loads(embeddings_gemini.passthrough_body(call, body, "upstream-name"))
    assert [r["model"] for r in renamed["requests"]] == ["models/upstream-name"] * 2
    assert embeddings_gemini.passthrough_body(call, body, "g") is body


async def test_a_mock_channel_answers_embeddings() -> None:
    async with serve_relay() as relay:
        body = json.dumps({"model": "mock-1", "input": ["a", "b"], "encoding_format": "float"}).encode()
        answer = await raw_request(relay.url, "POST", "/v1/embeddings", headers=AUTH, body=body)
        assert answer.status == 200, answer.body
        assert [item["embedding"] for item in answer.json()["data"]] == [vector("a"), vector("b")]
        aliased = json.dumps({"model": "fast", "input": "a", "encoding_format": "float"}).encode()
        answer = await raw_request(relay.url, "POST", "/v1/embeddings", headers=AUTH, body=aliased)
        assert answer.status == 200 and answer.json()["model"] == "fast", answer.body
