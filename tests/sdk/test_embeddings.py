"""Embeddings through ``relay serve`` to ``relay mock-upstream``: the openai and google-genai SDKs, each to an
OpenAI channel, a Gemini channel and an Anthropic one (which has no embeddings), plus bad input on every route and
the request log of a priced key.

The mock's vectors are a function of the text alone (``relay.mock.wire_embeddings.vector``), so a text gets the same
vector through every channel: the tests check the conversions against it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import trio
from google import genai
from google.genai import errors, types

from relay.mock.wire_embeddings import DIMENSIONS, tokens_of, vector
from relay.store.records import LogRecord
from tests.conftest import KEY, process
from tests.gateway_e2e.conftest import logs, post, read, settled
from tests.gateway_e2e.ledger import check_ledger
from tests.helpers import MOCK_ARGS, RawResponse, assert_openai_error, raw_request

#: Micro-credits per input token of every ``*embed*`` model.
PRICE = 1000
QUOTA = 1000  # credits

OA = "oa-embed-1"  # on the openai channel, by its own name
OA_ALIAS = "oa-alias"  # on the openai channel, which knows it as text-embedding-3-small
GOO = "goo-embed-1"  # on the gemini channel
GOO_ALIAS = "goo-alias"  # on the gemini channel, which knows it as text-embedding-004
GOO_MULTI = "gemini-embedding-2"  # the google-genai SDK sends several texts as the parts of one content
CLAUDE = "claude-embed-1"  # on the anthropic channel: no embeddings
FORBIDDEN = "secret-embed-1"  # served, but the key may not use it
UNKNOWN = "ghost-embed-1"  # the key may use it, but no channel serves it

GEMINI_PREFIXES = ("/v1beta", "/v1", "/gemini/v1beta")
OPENAI_PATHS = ("/v1/embeddings", "/embeddings", "/v1beta/openai/embeddings")


def relay_toml(upstream: str, store: str) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
key_refresh = 0.2
log_interval = 0.05

# The tests provoke upstream errors on purpose: keys must not rest nor breakers open here.
[routing]
key_rest = 0.001
breaker_failures = 1000

[[prices]]
model = "*embed*"
input = {PRICE}
output = 2000

[[channels]]
name = "oa"
type = "openai"
base_url = "{upstream}/v1"
api_key = "sk-upstream-oa"
models = ["oa-embed-*", "{FORBIDDEN}"]
[channels.model_map]
{OA_ALIAS} = "text-embedding-3-small"

[[channels]]
name = "goo"
type = "gemini"
base_url = "{upstream}"
api_key = "sk-upstream-goo"
models = ["goo-embed-*", "gemini-embedding-*"]
[channels.model_map]
{GOO_ALIAS} = "text-embedding-004"

[[channels]]
name = "claude"
type = "anthropic"
base_url = "{upstream}"
api_key = "sk-upstream-claude"
models = ["claude-embed-*"]

[[keys]]
name = "emb"
key = "{KEY}"
quota = {QUOTA}
models = ["oa-*", "goo-*", "gemini-embedding-*", "claude-*", "ghost-*"]
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(Relay's base URL, its store URL): ``relay serve`` in front of ``relay mock-upstream``."""
    root = tmp_path_factory.mktemp("embeddings")
    store = f"sqlite:///{root}/relay.db"
    with process(*MOCK_ARGS) as (_, upstream):
        path: Path = root / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}", store))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}", store


@pytest.fixture(scope="module")
def embed_url(served: tuple[str, str]) -> str:
    return served[0]


@pytest.fixture(scope="module")
def oai(embed_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{embed_url}/v1", api_key=KEY, max_retries=0, timeout=10) as client:
        yield client


def gemini_client(embed_url: str, api_version: str = "v1beta") -> genai.Client:
    options = types.HttpOptions(base_url=embed_url, api_version=api_version, timeout=10_000)
    return genai.Client(api_key=KEY, vertexai=False, http_options=options)


@pytest.fixture(scope="module")
def gclient(embed_url: str) -> Iterator[genai.Client]:
    with gemini_client(embed_url) as client:
        yield client


def close(actual: list[float], expected: list[float]) -> bool:
    return len(actual) == len(expected) and all(abs(a - e) < 1e-6 for a, e in zip(actual, expected, strict=True))


# ---- the openai SDK ------------------------------------------------------------------------------------------

OPENAI_MODELS = (OA, OA_ALIAS, GOO, GOO_ALIAS)


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_openai_string_decoded_from_base64_by_default(oai: openai.OpenAI, model: str) -> None:
    """The SDK asks for base64 unless told otherwise, and decodes it: Relay must answer base64 on every channel."""
    raw = oai.embeddings.with_raw_response.create(model=model, input="hello world")
    sent = json.loads(raw.http_request.content)
    assert sent["encoding_format"] == "base64"
    wire = json.loads(raw.http_response.content)
    assert isinstance(wire["data"][0]["embedding"], str)
    answer = raw.parse()
    assert answer.model == model
    assert answer.object == "list"
    assert [d.index for d in answer.data] == [0]
    assert close(answer.data[0].embedding, vector("hello world"))
    assert answer.usage.prompt_tokens == answer.usage.total_tokens == tokens_of("hello world")


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_openai_list_float_and_dimensions(oai: openai.OpenAI, model: str) -> None:
    texts = ["first text", "the second, a little longer", "é ü 漢字"]
    answer = oai.embeddings.create(model=model, input=texts, dimensions=8, encoding_format="float")
    assert [d.index for d in answer.data] == [0, 1, 2]
    for item, text in zip(answer.data, texts, strict=True):
        assert close(item.embedding, vector(text, 8))
        assert abs(sum(v * v for v in item.embedding) - 1.0) < 1e-5
    if model in (OA, OA_ALIAS):  # the upstream counts
        assert answer.usage.prompt_tokens == sum(tokens_of(t) for t in texts)
    else:  # Relay estimates: a token per four UTF-8 bytes of each text
        assert answer.usage.prompt_tokens == sum(-(-len(t.encode()) // 4) for t in texts)


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_openai_explicit_base64_is_little_endian_float32(oai: openai.OpenAI, model: str) -> None:
    import base64
    import struct

    answer = oai.embeddings.create(model=model, input=["a", "b"], encoding_format="base64")
    for item, text in zip(answer.data, ["a", "b"], strict=True):
        assert isinstance(item.embedding, str)  # asked for explicitly: the SDK leaves it as sent
        raw = base64.b64decode(item.embedding)
        assert len(raw) == 4 * DIMENSIONS
        assert close(list(struct.unpack(f"<{DIMENSIONS}f", raw)), vector(text))


def test_openai_token_ids_on_the_openai_channel(oai: openai.OpenAI) -> None:
    one = oai.embeddings.create(model=OA, input=[1, 2, 3], encoding_format="float")
    assert close(one.data[0].embedding, vector("tokens:1,2,3"))
    assert one.usage.prompt_tokens == 3
    many = oai.embeddings.create(model=OA_ALIAS, input=[[5, 6], [7]])
    assert close(many.data[0].embedding, vector("tokens:5,6"))
    assert close(many.data[1].embedding, vector("tokens:7"))
    assert many.usage.prompt_tokens == 3


@pytest.mark.parametrize("tokens", [[1, 2, 3], [[1, 2], [3]]])
def test_openai_token_ids_on_the_gemini_channel_are_refused(oai: openai.OpenAI, tokens: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.embeddings.create(model=GOO, input=tokens)
    assert_openai_error(caught.value.body and {"error": caught.value.body}, param="input", code="unsupported_input")


def test_openai_anthropic_channel_has_no_embeddings(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.embeddings.create(model=CLAUDE, input="hello")
    error = assert_openai_error({"error": caught.value.body}, code="model_not_supported", param="model")
    assert CLAUDE in error["message"] and "embeddings" in error["message"]


def test_openai_unknown_and_forbidden_models(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        oai.embeddings.create(model=UNKNOWN, input="hello")
    assert_openai_error({"error": missing.value.body})
    with pytest.raises(openai.PermissionDeniedError) as forbidden:
        oai.embeddings.create(model=FORBIDDEN, input="hello")
    assert_openai_error({"error": forbidden.value.body})


async def test_openai_paths_and_upstream_errors(embed_url: str) -> None:
    for path in OPENAI_PATHS:
        answer = await post(
            embed_url, path, json.dumps({"model": OA, "input": "x", "encoding_format": "float"}).encode()
        )
        assert answer.status == 200, (path, answer.body)
        assert close(answer.json()["data"][0]["embedding"], vector("x"))
    for model in (OA, GOO):  # the upstream's 500, told in the client's dialect and Relay's words
        body = json.dumps({"model": model, "input": ["fine", "mock:status=500"]}).encode()
        answer = await post(embed_url, "/v1/embeddings", body)
        assert answer.status == 502, answer.body
        error = assert_openai_error(answer.json(), code="upstream_error")
        assert "mock upstream" not in error["message"]


BAD_OPENAI: list[tuple[dict[str, Any], str | None]] = [
    ({"input": "x"}, "model"),
    ({"model": 5, "input": "x"}, "model"),
    ({"model": OA}, "input"),
    ({"model": OA, "input": ""}, "input"),
    ({"model": OA, "input": []}, "input"),
    ({"model": OA, "input": 7.5}, "input"),
    ({"model": OA, "input": {"text": "x"}}, "input"),
    ({"model": OA, "input": ["a", 1]}, "input[1]"),
    ({"model": OA, "input": ["a", ""]}, "input[1]"),
    ({"model": OA, "input": [1, "a"]}, "input[1]"),
    ({"model": OA, "input": [1, -2]}, "input[1]"),
    ({"model": OA, "input": [1, True]}, "input[1]"),
    ({"model": OA, "input": [[1], []]}, "input[1]"),
    ({"model": OA, "input": [[1], "a"]}, "input[1]"),
    ({"model": OA, "input": [[1, "a"]]}, "input[0][1]"),
    ({"model": OA, "input": [None]}, "input[0]"),
    ({"model": OA, "input": ["x"] * 2049}, "input"),
    ({"model": OA, "input": "x", "dimensions": "8"}, "dimensions"),
    ({"model": OA, "input": "x", "dimensions": 0}, "dimensions"),
    ({"model": OA, "input": "x", "dimensions": True}, "dimensions"),
    ({"model": OA, "input": "x", "encoding_format": "hex"}, "encoding_format"),
    ({"model": OA, "input": "x", "user": 5}, "user"),
]


@pytest.mark.parametrize(("body", "param"), BAD_OPENAI)
async def test_openai_bad_input(embed_url: str, body: dict[str, Any], param: str | None) -> None:
    answer = await post(embed_url, "/v1/embeddings", json.dumps(body).encode())
    assert answer.status == 400, answer.body
    assert_openai_error(answer.json(), param=param)


async def test_openai_body_not_json(embed_url: str) -> None:
    for body in (b"{nope", b"[1, 2]"):
        answer = await post(embed_url, "/v1/embeddings", body)
        assert answer.status == 400, answer.body
        assert_openai_error(answer.json())


async def test_openai_unknown_field(embed_url: str) -> None:
    """An OpenAI-family channel judges a field Relay does not know (the mock, as OpenAI, refuses it); on a Gemini
    channel, which has no counterpart, Relay refuses it naming it. ``user`` is served and not sent to Gemini."""
    body = json.dumps({"model": OA, "input": "x", "colour": "blue"}).encode()
    answer = await post(embed_url, "/v1/embeddings", body)
    assert answer.status == 400, answer.body
    error = assert_openai_error(answer.json())
    assert error["message"].startswith("the upstream rejected the request")
    body = json.dumps({"model": GOO, "input": "x", "colour": "blue"}).encode()
    answer = await post(embed_url, "/v1/embeddings", body)
    assert answer.status == 400, answer.body
    assert_openai_error(answer.json(), param="colour", code="unsupported_parameter")
    body = json.dumps({"model": GOO, "input": "x", "user": "end-user-7"}).encode()
    assert (await post(embed_url, "/v1/embeddings", body)).status == 200


# ---- the google-genai SDK -------------------------------------------------------------------------------

GEMINI_MODELS = (GOO, GOO_ALIAS, OA, OA_ALIAS)


@pytest.mark.parametrize("model", GEMINI_MODELS)
def test_gemini_one_content(gclient: genai.Client, model: str) -> None:
    answer = gclient.models.embed_content(model=model, contents="hello world")
    assert answer.embeddings is not None and len(answer.embeddings) == 1
    assert close(answer.embeddings[0].values or [], vector("hello world"))


@pytest.mark.parametrize("model", GEMINI_MODELS)
def test_gemini_several_contents_with_options(gclient: genai.Client, model: str) -> None:
    texts = ["What is your name?", "What is your favourite colour?", "ß"]
    options: dict[str, Any] = {"output_dimensionality": 24}
    if model in (GOO, GOO_ALIAS):  # OpenAI has no task types nor titles: refused there (below)
        options.update(task_type="RETRIEVAL_DOCUMENT", title="Quiz")
    answer = gclient.models.embed_content(model=model, contents=texts, config=types.EmbedContentConfig(**options))
    assert answer.embeddings is not None
    assert [len(e.values or []) for e in answer.embeddings] == [24, 24, 24]
    for embedding, text in zip(answer.embeddings, texts, strict=True):
        assert close(embedding.values or [], vector(text, 24))


@pytest.mark.parametrize("option", [{"task_type": "RETRIEVAL_QUERY"}, {"title": "A title"}])
def test_gemini_options_openai_cannot_express_are_refused(gclient: genai.Client, option: dict[str, str]) -> None:
    with pytest.raises(errors.ClientError) as caught:
        gclient.models.embed_content(model=OA, contents=["x"], config=types.EmbedContentConfig(**option))
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert "requests[0]." in (caught.value.message or "") and "not supported" in (caught.value.message or "")
    unspecified = types.EmbedContentConfig(task_type="TASK_TYPE_UNSPECIFIED")  # asks for nothing: served
    assert gclient.models.embed_content(model=OA, contents=["x"], config=unspecified).embeddings


def test_gemini_multimodal_model_gets_one_content_of_several_parts(gclient: genai.Client) -> None:
    """For a ``gemini…`` model the SDK sends the texts as the parts of one content: one embedding of them all."""
    answer = gclient.models.embed_content(model=GOO_MULTI, contents=["a", "b"])
    assert answer.embeddings is not None and len(answer.embeddings) == 1
    assert close(answer.embeddings[0].values or [], vector("a\nb"))


@pytest.mark.parametrize("api_version", ["v1", "v1beta"])
def test_gemini_sdk_on_each_version(embed_url: str, api_version: str) -> None:
    with gemini_client(embed_url, api_version) as client:
        answer = client.models.embed_content(model=OA, contents=["x", "y"])
    assert answer.embeddings is not None
    assert [close(e.values or [], vector(t)) for e, t in zip(answer.embeddings, ["x", "y"], strict=True)] == [1, 1]


def test_gemini_errors_in_gemini_shape(gclient: genai.Client) -> None:
    for model, code in ((UNKNOWN, 404), (FORBIDDEN, 403), (CLAUDE, 400)):
        with pytest.raises(errors.APIError) as caught:
            gclient.models.embed_content(model=model, contents="hello")
        assert caught.value.code == code, (model, caught.value)
        assert caught.value.status in ("NOT_FOUND", "PERMISSION_DENIED", "INVALID_ARGUMENT")


def assert_gemini_error(answer: RawResponse, status: int, *words: str) -> dict[str, Any]:
    assert answer.status == status, answer.body
    payload = answer.json()
    assert set(payload) == {"error"}, payload
    error = payload["error"]
    assert error["code"] == status and isinstance(error["status"], str) and error["status"]
    assert isinstance(error["message"], str) and error["message"]
    for word in words:
        assert word in error["message"], (word, error["message"])
    return error


def embed_request(text: str = "hi", model: str | None = None, **extra: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"content": {"parts": [{"text": text}]}, **extra}
    if model is not None:
        request["model"] = f"models/{model}"
    return request


@pytest.mark.parametrize("prefix", GEMINI_PREFIXES)
@pytest.mark.parametrize("model", [GOO, OA])
async def test_gemini_routes_raw(embed_url: str, prefix: str, model: str) -> None:
    headers = {"x-goog-api-key": KEY}
    one = await post(
        embed_url, f"{prefix}/models/{model}:embedContent", json.dumps(embed_request("one")).encode(), key=None,
        headers=headers,
    )  # fmt: skip
    assert one.status == 200, one.body
    assert close(one.json()["embedding"]["values"], vector("one"))
    body = {"requests": [embed_request("a", model), embed_request("b", model, output_dimensionality=4)]}
    sizes = [DIMENSIONS, 4]
    if model == OA:  # one OpenAI request has one dimensionality
        body["requests"][0]["outputDimensionality"] = 4
        sizes = [4, 4]
    batch = await post(
        embed_url, f"{prefix}/models/{model}:batchEmbedContents", json.dumps(body).encode(), key=None, headers=headers
    )
    assert batch.status == 200, batch.body
    embeddings = batch.json()["embeddings"]
    assert [close(e["values"], vector(t, n)) for e, t, n in zip(embeddings, "ab", sizes, strict=True)] == [1, 1]


BAD_GEMINI: list[tuple[str, dict[str, Any], str]] = [
    ("embedContent", {}, "content"),
    ("embedContent", {"content": "hi"}, "content"),
    ("embedContent", {"content": {"parts": []}}, "content.parts"),
    ("embedContent", {"content": {"parts": [{"text": 5}]}}, "text"),
    ("embedContent", {"content": {"parts": [{"text": ""}]}}, "empty"),
    ("embedContent", {"content": {"parts": ["hi"]}}, "parts[0]"),
    ("embedContent", embed_request(taskType="GUESSING"), "taskType"),
    ("embedContent", embed_request(title=5), "title"),
    ("embedContent", embed_request(outputDimensionality=0), "outputDimensionality"),
    ("embedContent", embed_request(output_dimensionality="8"), "outputDimensionality"),
    ("embedContent", embed_request(model="other-model"), "model"),
    ("batchEmbedContents", {}, "requests"),
    ("batchEmbedContents", {"requests": []}, "requests"),
    ("batchEmbedContents", {"requests": ["hi"]}, "requests[0]"),
    ("batchEmbedContents", {"requests": [embed_request()]}, "requests[0].model"),
    ("batchEmbedContents", {"requests": [embed_request(model=GOO), embed_request(model=OA)]}, "requests[1].model"),
    ("batchEmbedContents", {"requests": [embed_request(model=GOO)] * 101}, "at most 100"),
]


@pytest.mark.parametrize(("verb", "body", "word"), BAD_GEMINI)
async def test_gemini_bad_input(embed_url: str, verb: str, body: dict[str, Any], word: str) -> None:
    answer = await post(embed_url, f"/v1/models/{GOO}:{verb}", json.dumps(body).encode())
    assert_gemini_error(answer, 400, word)


async def test_gemini_conversion_limits_to_openai(embed_url: str) -> None:
    image = {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    body = {"content": {"parts": [{"text": "look"}, image]}}
    answer = await post(embed_url, f"/v1/models/{OA}:embedContent", json.dumps(body).encode())
    assert_gemini_error(answer, 400, "content.parts[1]", "only text")
    mixed = {"requests": [embed_request("a", OA, outputDimensionality=4), embed_request("b", OA)]}
    answer = await post(embed_url, f"/v1/models/{OA}:batchEmbedContents", json.dumps(mixed).encode())
    assert_gemini_error(answer, 400, "outputDimensionality")
    # The same image on the Gemini channel goes through, and the upstream (which embeds text only) refuses it.
    answer = await post(embed_url, f"/v1/models/{GOO}:embedContent", json.dumps(body).encode())
    assert_gemini_error(answer, 400, "the upstream rejected the request")
    # A field Relay does not know: refused naming it on a conversion, the upstream's to judge on a passthrough.
    unknown = json.dumps(embed_request(autoTruncate=True)).encode()
    assert_gemini_error(await post(embed_url, f"/v1/models/{OA}:embedContent", unknown), 400, "autoTruncate")
    answer = await post(embed_url, f"/v1/models/{GOO}:embedContent", unknown)
    assert_gemini_error(answer, 400, "the upstream rejected the request", "autoTruncate")


async def test_gemini_unknown_forbidden_anthropic_and_upstream_errors(embed_url: str) -> None:
    body = json.dumps(embed_request()).encode()
    assert_gemini_error(await post(embed_url, f"/v1beta/models/{UNKNOWN}:embedContent", body), 404)
    assert_gemini_error(await post(embed_url, f"/v1beta/models/{FORBIDDEN}:embedContent", body), 403)
    error = assert_gemini_error(await post(embed_url, f"/v1/models/{CLAUDE}:embedContent", body), 400, CLAUDE)
    assert error["status"] == "INVALID_ARGUMENT"
    failing = json.dumps(embed_request("mock:status=500")).encode()
    for model in (GOO, OA):
        error = assert_gemini_error(await post(embed_url, f"/v1/models/{model}:embedContent", failing), 502)
        assert "mock upstream" not in error["message"]
    answer = await post(embed_url, f"/v1/models/{GOO}:embedContent", b"{nope")
    assert_gemini_error(answer, 400)


# ---- billing -------------------------------------------------------------------------------------------------


async def test_priced_key_is_charged_for_input_tokens(served: tuple[str, str]) -> None:
    embed_url, store = served
    texts = ["billing check one", "and the second text to embed"]
    estimate = sum(-(-len(t.encode()) // 4) for t in texts)
    calls = {
        # (path, body) -> the input tokens the request log must show
        "openai-on-openai": (
            "/v1/embeddings",
            {"model": OA, "input": texts},
            sum(tokens_of(t) for t in texts),
        ),
        "openai-on-gemini": ("/v1/embeddings", {"model": GOO, "input": texts}, estimate),
        "gemini-on-gemini": (
            f"/v1beta/models/{GOO}:batchEmbedContents",
            {"requests": [embed_request(t, GOO) for t in texts]},
            estimate,
        ),
        "gemini-on-openai": (
            f"/v1/models/{OA}:batchEmbedContents",
            {"requests": [embed_request(t, OA) for t in texts]},
            sum(tokens_of(t) for t in texts),
        ),
    }
    ids: dict[str, str] = {}
    for name, (path, body, _) in calls.items():
        answer = await post(embed_url, path, json.dumps(body).encode())
        assert answer.status == 200, (name, answer.body)
        ids[name] = answer.headers[b"x-request-id"].decode()
    rows: dict[str, LogRecord] = {}
    with trio.move_on_after(10):  # the recorder writes its batches every 50 ms: wait for them, on a busy machine too
        while True:
            found = {r.request_id: r for r in await logs(store, 1)}
            rows = {name: found[rid] for name, rid in ids.items() if rid in found}
            if len(rows) == len(ids):
                break
            await trio.sleep(0.05)
    assert set(rows) == set(ids)
    for name, (_, _, tokens) in calls.items():
        row = rows[name]
        assert (row.status, row.input_tokens, row.output_tokens) == (200, tokens, 0), (name, row)
        assert row.cost_micros == tokens * PRICE, (name, row)
        assert row.key_name == "emb" and row.end_kind == "completed"
    assert rows["openai-on-openai"].channel == "oa" and rows["openai-on-gemini"].channel == "goo"
    # The key's ledger: every hold closed, and the balance is the grant less what the request log charged.
    await settled(store)
    report = await read(store, lambda tx: check_ledger(tx, "emb"))
    assert report.spent >= sum(tokens for _, _, tokens in calls.values()) * PRICE
    assert report.balance == QUOTA * 1_000_000 - report.spent


async def test_gemini_model_lists_and_other_verbs_beside_the_embeddings_routes(embed_url: str) -> None:
    """The embeddings' verbs sit beside Gemini's ``GET …/models/{model:path}`` model info: that still answers, and
    a POST of another verb (or to the model itself) gets the router's 405 from it."""
    for prefix in ("/v1beta", "/gemini/v1beta"):
        info = await raw_request(embed_url, "GET", f"{prefix}/models/{GOO}", headers={"x-goog-api-key": KEY})
        assert info.status == 200, info.body
        for path in (f"/models/{GOO}:embedThings", f"/models/{GOO}", "/models/a/b:embedContent"):
            answer = await post(embed_url, prefix + path, json.dumps(embed_request()).encode())
            assert_gemini_error(answer, 405)
            assert answer.headers[b"allow"] == b"GET"


async def test_a_bad_key_is_a_401_before_the_body_is_read(embed_url: str) -> None:
    answer = await post(embed_url, "/v1/embeddings", b"{nope", key="sk-wrong")
    assert answer.status == 401
    assert_openai_error(answer.json(), code="invalid_api_key")
    for verb in ("embedContent", "batchEmbedContents"):
        answer = await post(embed_url, f"/v1beta/models/{GOO}:{verb}", b"{}", key=None)
        assert_gemini_error(answer, 401)
