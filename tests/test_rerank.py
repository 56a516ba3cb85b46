"""``/v1/rerank`` through ``relay serve`` to ``relay mock-upstream`` on each upstream rerank API (``rerank_api``
jina, cohere, voyage), in both request shapes (Cohere's and Jina's ``documents``/``top_n``, wingman's
``texts``/``limit``), with httpx on real sockets; billing read back from the request log in the SQLite store."""

from __future__ import annotations

import http.server
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import KEY, process
from tests.rerank_servers import INPUT_PRICE, RERANK_APIS, channel, log_row, relay_with_mock

QUERY = "Where does the cat sit?"
DOCUMENTS = ["Dogs bark at night.", "The cat sits on the mat.", "Where does the cat sit? On the mat.", "A cat."]
#: (index, score) by the mock's word overlap: the share of the query's five words each document holds.
EXPECTED = [(2, 1.0), (1, 0.4), (3, 0.2), (0, 0.0)]
AUTH = {"authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with relay_with_mock(tmp_path_factory.mktemp("rerank")) as served:
        yield served


@pytest.fixture(scope="module")
def client(relay: tuple[str, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=relay[0], headers=AUTH, timeout=30) as client:
        yield client


def scores(answer: dict[str, Any]) -> list[tuple[int, float]]:
    return [(r["index"], r["relevance_score"]) for r in answer["results"]]


def pair_tokens(query: str, documents: list[str], size: Any) -> int:
    """A token per four units (``size`` of a text) of each (query, document) pair, rounded up."""
    return sum(math.ceil((size(query) + size(d)) / 4) for d in documents)


@pytest.mark.parametrize("api", sorted(RERANK_APIS))
def test_documents_shape_is_ranked_on_each_api(client: httpx.Client, api: str) -> None:
    reply = client.post("/v1/rerank", json={"model": RERANK_APIS[api], "query": QUERY, "documents": DOCUMENTS})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert set(answer) == {"id", "model", "results", "usage"}
    assert answer["model"] == RERANK_APIS[api]
    assert isinstance(answer["id"], str) and answer["id"]
    assert scores(answer) == EXPECTED
    assert [r["document"] for r in answer["results"]] == [{"text": DOCUMENTS[i]} for i, _ in EXPECTED]
    assert answer["usage"] == {"total_tokens": pair_tokens(QUERY, DOCUMENTS, len)}  # ASCII: chars are bytes


@pytest.mark.parametrize("api", sorted(RERANK_APIS))
def test_wingman_shape_texts_and_limit(client: httpx.Client, api: str) -> None:
    body = {"model": RERANK_APIS[api], "query": QUERY, "texts": DOCUMENTS, "limit": 2}
    reply = client.post("/rerank", json=body)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert scores(answer) == EXPECTED[:2]
    assert [r["document"]["text"] for r in answer["results"]] == [DOCUMENTS[2], DOCUMENTS[1]]


@pytest.mark.parametrize("api", sorted(RERANK_APIS))
def test_top_n_and_return_documents_false(client: httpx.Client, api: str) -> None:
    body = {"model": RERANK_APIS[api], "query": QUERY, "documents": DOCUMENTS, "top_n": 3, "return_documents": False}
    answer = client.post("/v1/rerank", json=body).json()
    assert scores(answer) == EXPECTED[:3]
    assert all(set(r) == {"index", "relevance_score"} for r in answer["results"])


def test_an_in_process_mock_channel_ranks_too(client: httpx.Client) -> None:
    reply = client.post("/v1/rerank", json={"model": "inproc-rerank", "query": QUERY, "documents": DOCUMENTS})
    assert reply.status_code == 200, reply.text
    assert scores(reply.json()) == EXPECTED


def test_top_n_beyond_the_documents_gives_them_all(client: httpx.Client) -> None:
    body = {"model": "voyage-rerank", "query": QUERY, "documents": DOCUMENTS, "top_n": 50}
    assert scores(client.post("/v1/rerank", json=body).json()) == EXPECTED


def test_document_objects_with_text(client: httpx.Client) -> None:
    documents = [{"text": d} for d in DOCUMENTS]
    reply = client.post("/v1/rerank", json={"model": "cohere-rerank", "query": QUERY, "documents": documents})
    assert reply.status_code == 200, reply.text
    assert scores(reply.json()) == EXPECTED


def test_ties_keep_document_order(client: httpx.Client) -> None:
    body = {"model": "jina-rerank", "query": "zebra", "documents": ["b", "a", "c"]}
    assert scores(client.post("/v1/rerank", json=body).json()) == [(0, 0.0), (1, 0.0), (2, 0.0)]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"query": QUERY, "documents": DOCUMENTS}, "model"),
        ({"model": 7, "query": QUERY, "documents": DOCUMENTS}, "model"),
        ({"model": "jina-rerank", "documents": DOCUMENTS}, "query"),
        ({"model": "jina-rerank", "query": "  ", "documents": DOCUMENTS}, "query"),
        ({"model": "jina-rerank", "query": ["a"], "documents": DOCUMENTS}, "query"),
        ({"model": "jina-rerank", "query": QUERY}, "documents"),
        ({"model": "jina-rerank", "query": QUERY, "documents": []}, "documents"),
        ({"model": "jina-rerank", "query": QUERY, "documents": "a text"}, "documents"),
        ({"model": "jina-rerank", "query": QUERY, "documents": ["a", 5]}, "documents[1]"),
        ({"model": "jina-rerank", "query": QUERY, "documents": ["a", {"image": "x.png"}]}, "documents[1]"),
        ({"model": "jina-rerank", "query": QUERY, "texts": [{"text": "a"}]}, "texts[0]"),
        ({"model": "jina-rerank", "query": QUERY, "documents": ["a"], "texts": ["a"]}, "texts"),
        ({"model": "jina-rerank", "query": QUERY, "documents": ["a"], "top_n": 0}, "top_n"),
        ({"model": "jina-rerank", "query": QUERY, "documents": ["a"], "top_n": "2"}, "top_n"),
        ({"model": "jina-rerank", "query": QUERY, "documents": ["a"], "top_n": True}, "top_n"),
        ({"model": "jina-rerank", "query": QUERY, "texts": ["a"], "limit": -1}, "limit"),
        ({"model": "jina-rerank", "query": QUERY, "texts": ["a"], "limit": 1, "top_n": 1}, "limit"),
        ({"model": "jina-rerank", "query": QUERY, "documents": ["a"], "return_documents": "yes"}, "return_documents"),
    ],
)
def test_bad_input_is_a_400_naming_the_param(client: httpx.Client, body: dict[str, Any], param: str) -> None:
    reply = client.post("/v1/rerank", json=body)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]"])
def test_a_body_that_is_no_json_object_is_a_400(client: httpx.Client, content: bytes) -> None:
    reply = client.post("/v1/rerank", content=content, headers={"content-type": "application/json"})
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"


def test_a_model_on_an_anthropic_channel_is_a_400(client: httpx.Client) -> None:
    reply = client.post("/v1/rerank", json={"model": "claude-rerank", "query": QUERY, "documents": DOCUMENTS})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "model" and error["code"] == "unsupported_model"
    assert "anthropic channel" in error["message"] and "claude-rerank" in error["message"]


def test_an_unknown_model_and_a_missing_key(client: httpx.Client, relay: tuple[str, Path]) -> None:
    reply = client.post("/v1/rerank", json={"model": "ghost-rerank", "query": QUERY, "documents": DOCUMENTS})
    assert reply.status_code == 404
    assert set(reply.json()["error"]) == {"message", "type", "param", "code"}
    anonymous = httpx.post(f"{relay[0]}/v1/rerank", json={"model": "jina-rerank", "query": QUERY, "documents": ["a"]})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_error"


def test_a_channel_that_is_down_fails_over(client: httpx.Client, relay: tuple[str, Path]) -> None:
    """``spare-rerank``: the ``down`` channel first (nothing listens), then ``jina``."""
    reply = client.post("/v1/rerank", json={"model": "spare-rerank", "query": QUERY, "documents": DOCUMENTS})
    assert reply.status_code == 200, reply.text
    assert scores(reply.json()) == EXPECTED
    row = log_row(relay[1], reply.headers["x-request-id"])
    assert row["channel"] == "jina"
    assert [(a["channel"], a["outcome"]) for a in json.loads(row["attempts"])] == [
        ("down", "upstream_connect_error"),
        ("jina", "ok"),
    ]


@pytest.mark.parametrize("api", sorted(RERANK_APIS))
def test_usage_is_billed_and_logged(client: httpx.Client, relay: tuple[str, Path], api: str) -> None:
    """Jina and Voyage report tokens (the mock: four characters each); Cohere reports search units, so Relay
    estimates (four UTF-8 bytes each): non-ASCII text tells the two apart."""
    query, documents = "crème brûlée", ["crème", "brûlée à la française", "plain"]
    reply = client.post("/v1/rerank", json={"model": RERANK_APIS[api], "query": query, "documents": documents})
    assert reply.status_code == 200, reply.text
    if api == "cohere":
        tokens = pair_tokens(query, documents, lambda text: len(text.encode()))
    else:
        tokens = pair_tokens(query, documents, len)
    assert pair_tokens(query, documents, len) != pair_tokens(query, documents, lambda text: len(text.encode()))
    assert reply.json()["usage"] == {"total_tokens": tokens}
    row = log_row(relay[1], reply.headers["x-request-id"])
    assert (row["status"], row["route"], row["channel"]) == (200, "/v1/rerank", api)
    assert (row["input_tokens"], row["output_tokens"]) == (tokens, 0)
    assert row["cost_micros"] == tokens * INPUT_PRICE


# ---- Cohere's path is at the base URL's origin --------------------------------------------------------------


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every POST as Cohere's v2 rerank would, and keeps what it was sent."""

    seen: list[tuple[str, str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.seen.append((self.path, self.headers.get("authorization", ""), body))
        results = [{"index": i, "relevance_score": 1.0 / (i + 1)} for i in range(len(body["documents"]))]
        data = json.dumps({"id": "cohere-1", "results": results, "meta": {"billed_units": {"search_units": 1}}})
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def cohere_upstream() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_cohere_is_called_at_the_origin_with_its_own_request(cohere_upstream: str, tmp_path: Path) -> None:
    config = tmp_path / "relay.toml"
    cohere = channel("co", "openai", f"{cohere_upstream}/compatibility/v1", ["rerank-v3.5"], 'rerank_api = "cohere"')
    config.write_text(
        f'[server]\nlisten = "127.0.0.1:0"\naccess_log = false\n[store]\nurl = "sqlite:///{tmp_path}/r.db"\n'
        f'{cohere}\n[[keys]]\nname = "t"\nkey = "{KEY}"\n'
    )
    Recorder.seen.clear()
    with process("serve", "--config", str(config), "--listen", "127.0.0.1:0") as (_, address):
        body = {"model": "rerank-v3.5", "query": "q", "texts": ["a", "b", "c"], "limit": 2, "return_text": True}
        reply = httpx.post(f"http://{address}/v1/rerank", json=body, headers=AUTH, timeout=30)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["id"] == "cohere-1"
    assert scores(answer) == [(0, 1.0), (1, 0.5)]
    assert Recorder.seen == [
        (
            "/v2/rerank",
            "Bearer sk-upstream-co",
            {"model": "rerank-v3.5", "query": "q", "documents": ["a", "b", "c"], "top_n": 2},
        )
    ]
