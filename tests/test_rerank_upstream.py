"""Reading the three upstream rerank answers (``relay.dialects.rerank.upstream``): a 502 for one that is not the
API's shape, and the requests Relay writes for each API."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from relay.dialects.rerank import upstream as rerank_upstream
from relay.dialects.rerank.codec import RerankRequest, answer
from relay.errors import RelayError

REQ = RerankRequest(model="m", query="q", documents=("a", "b"), top_n=None, return_documents=True)


def ranked_answer(api: rerank_upstream.RerankApi, body: Any) -> bytes:
    ranked = rerank_upstream.decode(api, orjson.dumps(body))
    return answer(REQ, ranked, "id-1", 1)


@pytest.mark.parametrize(
    ("api", "body"),
    [
        ("jina", {"data": [{"index": 0, "relevance_score": 1}]}),
        ("voyage", {"results": [{"index": 0, "relevance_score": 1}]}),
        ("cohere", {"results": [{"index": "0", "relevance_score": 1}]}),
        ("cohere", {"results": [{"index": 0, "relevance_score": True}]}),
        ("cohere", {"results": [{"index": 0}]}),
        ("jina", {"results": [{"index": 2, "relevance_score": 0.5}]}),
        ("jina", {"results": [{"index": 0, "relevance_score": 0.5}, {"index": 0, "relevance_score": 0.1}]}),
        ("jina", [1, 2]),
    ],
)
def test_a_malformed_upstream_answer_is_a_502(api: rerank_upstream.RerankApi, body: Any) -> None:
    with pytest.raises(RelayError) as caught:
        ranked_answer(api, body)
    assert (caught.value.status, caught.value.code) == (502, "upstream_malformed")


def test_tokens_are_read_where_reported() -> None:
    body = {"results": [{"index": 1, "relevance_score": 0.5}], "usage": {"total_tokens": 9}, "id": "x"}
    assert rerank_upstream.decode("jina", orjson.dumps(body)).total_tokens == 9
    assert rerank_upstream.decode("cohere", orjson.dumps(body)).total_tokens is None
    assert rerank_upstream.decode("jina", orjson.dumps({"results": []})).total_tokens is None


def test_each_apis_request() -> None:
    req = RerankRequest(model="client", query="q", documents=("a", "b", "c"), top_n=5, return_documents=True)
    assert orjson.loads(rerank_upstream.encode("jina", req, "up")) == {
        "model": "up",
        "query": "q",
        "documents": ["a", "b", "c"],
        "top_n": 5,
        "return_documents": False,
    }
    assert orjson.loads(rerank_upstream.encode("cohere", req, "up")) == {
        "model": "up",
        "query": "q",
        "documents": ["a", "b", "c"],
        "top_n": 5,
    }
    voyage = orjson.loads(rerank_upstream.encode("voyage", req, "up"))
    assert (voyage["top_k"], voyage["return_documents"]) == (3, False)
    assert rerank_upstream.path("cohere") == "/v2/rerank" and rerank_upstream.path("voyage") == "/rerank"


def test_the_estimate_reads_each_document_with_the_query() -> None:
    req = RerankRequest(model="m", query="four", documents=("abcd", "é"), top_n=None, return_documents=False)
    assert rerank_upstream.estimate_tokens(req) == 2 + 2  # (4 + 4) / 4, then (4 + 2 bytes) / 4 rounded up
