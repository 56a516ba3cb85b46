"""The mock upstream's rerank (Jina/vLLM, Voyage, Cohere v2) and moderations, as its router answers them: each
provider's shape, its refusals, and the same answer for the same request."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relay.mock.router import Mock

QUERY = "cat on a mat"
DOCUMENTS = ["a dog", "the cat sat on the mat", "a cat"]


def call(path: str, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    answer = Mock().route("POST", path, "", [(b"content-type", b"application/json")], data)
    assert isinstance(answer.body, bytes)
    return answer.status, orjson.loads(answer.body)


def test_jina_shape_with_documents_and_usage() -> None:
    status, body = call("/v1/rerank", {"model": "m", "query": QUERY, "documents": [*DOCUMENTS, {"text": "mat"}]})
    assert status == 200
    assert body["model"] == "m" and "id" not in body
    assert [(r["index"], r["relevance_score"]) for r in body["results"]] == [(1, 0.75), (2, 0.5), (0, 0.25), (3, 0.25)]
    assert body["results"][0]["document"] == {"text": DOCUMENTS[1]}
    assert body["usage"] == {"total_tokens": sum(-(-(len(QUERY) + len(d)) // 4) for d in [*DOCUMENTS, "mat"])}


def test_voyage_shape_by_top_k() -> None:
    status, body = call("/v1/rerank", {"model": "rerank-2", "query": QUERY, "documents": DOCUMENTS, "top_k": 2})
    assert status == 200
    assert body["object"] == "list" and body["model"] == "rerank-2"
    assert body["data"] == [{"relevance_score": 0.75, "index": 1}, {"relevance_score": 0.5, "index": 2}]
    kept = {"model": "rerank-2", "query": QUERY, "documents": DOCUMENTS, "top_k": 1, "return_documents": True}
    assert call("/v1/rerank", kept)[1]["data"] == [{"relevance_score": 0.75, "index": 1, "document": DOCUMENTS[1]}]


def test_cohere_v2_shape_counts_search_units() -> None:
    documents = [f"cat {i}" for i in range(150)]
    status, body = call("/v2/rerank", {"model": "rerank-v3.5", "query": QUERY, "documents": documents, "top_n": 3})
    assert status == 200
    assert len(body["results"]) == 3 and set(body["results"][0]) == {"index", "relevance_score"}
    assert body["meta"]["billed_units"] == {"search_units": 2}
    assert "usage" not in body


@pytest.mark.parametrize(
    ("path", "body", "shape"),
    [
        ("/v1/rerank", {"query": QUERY, "documents": DOCUMENTS}, "error"),
        ("/v1/rerank", {"model": "m", "query": QUERY, "documents": []}, "error"),
        ("/v1/rerank", {"model": "m", "query": QUERY, "documents": DOCUMENTS, "top_n": 0}, "error"),
        ("/v1/rerank", {"model": "m", "query": QUERY, "documents": [{"text": "a"}], "top_k": 1}, "detail"),
        ("/v1/rerank", {"model": "m", "query": QUERY, "documents": ["a"], "top_k": "1"}, "detail"),
        ("/v2/rerank", {"model": "m", "query": QUERY, "documents": [{"text": "a"}]}, "message"),
        ("/v2/rerank", {"query": QUERY, "documents": ["a"]}, "message"),
        ("/v2/rerank", b"{", "message"),
    ],
)
def test_each_provider_refuses_in_its_own_shape(path: str, body: Any, shape: str) -> None:
    status, answer = call(path, body)
    assert status == 400
    assert shape in answer


def test_moderation_flags_trigger_words_only() -> None:
    status, body = call("/v1/moderations", {"input": ["Kill time", "killing time"]})
    assert status == 200
    assert body["model"] == "omni-moderation-latest" and body["id"].startswith("modr-")
    assert [r["flagged"] for r in body["results"]] == [True, False]  # whole words only
    assert body["results"][0]["categories"]["violence"] is True
    assert all(score < 0.001 for score in body["results"][1]["category_scores"].values())


def test_moderation_of_an_image_alone() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    status, body = call("/v1/moderations", {"input": [image]})
    assert status == 200
    applied = body["results"][0]["category_applied_input_types"]
    assert applied["violence"] == ["image"] and applied["hate"] == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": "gpt-4o", "input": "hi"}, 404),
        ({"input": 3}, 400),
        ({}, 400),
        ({"model": "text-moderation-stable", "input": [{"type": "image_url", "image_url": {"url": "x"}}]}, 400),
    ],
)
def test_moderation_refusals(body: dict[str, Any], status: int) -> None:
    assert call("/v1/moderations", body)[0] == status


def test_the_same_request_gets_the_same_bytes() -> None:
    body = orjson.dumps({"input": ["one", "two kill"]})
    first = Mock().route("POST", "/v1/moderations", "", [], body)
    again = Mock().route("POST", "/v1/moderations", "", [], body)
    assert first.body == again.body
    rerank = orjson.dumps({"model": "m", "query": QUERY, "documents": DOCUMENTS})
    assert (
        Mock().route("POST", "/v2/rerank", "", [], rerank).body
        == Mock().route("POST", "/v2/rerank", "", [], rerank).body
    )


@pytest.mark.parametrize("path", ["/v1/rerank", "/v2/rerank", "/v1/moderations"])
def test_json_nested_too_deeply_is_refused(path: str) -> None:
    deep = '{"a":' * 300 + "[]" + "}" * 300
    body = f'{{"model": "omni-moderation-latest", "query": "q", "documents": ["a"], "input": "x", "x": {deep}}}'
    status, _ = call(path, body.encode())
    assert status == 400
