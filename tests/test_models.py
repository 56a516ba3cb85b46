"""GET /v1/models, /v1/models/{id} and /models: from the channels, filtered by the key, in the OpenAI shape."""

import httpx
import pytest

from relay.config import loads
from tests.conftest import serve_relay
from tests.helpers import assert_openai_error

FULL = "sk-models-full-000"
NARROW = "sk-models-narrow-000"
CONFIG = f"""
[[channels]]
name = "openai"
type = "openai"
base_url = "http://127.0.0.1:9/v1"
models = ["gpt-4o", "gpt-4o-mini", "o3*", "org/tuned-1"]
[channels.model_map]
smart = "gpt-4o"

[[channels]]
name = "mock"
type = "mock"
models = ["mock-1", "mock-2", "gpt-4o"]

[[keys]]
name = "full"
key = "{FULL}"

[[keys]]
name = "narrow"
key = "{NARROW}"
models = ["gpt-4o-mini", "mock-*"]
"""
EVERY = ["smart", "gpt-4o", "gpt-4o-mini", "org/tuned-1", "mock-1", "mock-2"]


@pytest.fixture
async def relay():
    async with serve_relay(loads(CONFIG)) as served, httpx.AsyncClient(base_url=served.url) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
async def test_list_has_every_listable_model_in_the_openai_shape(relay, path):
    r = await relay.get(path, headers=bearer(FULL))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"object", "data"} and body["object"] == "list"
    assert [m["id"] for m in body["data"]] == EVERY  # channel order, no duplicates, no glob patterns
    for model in body["data"]:
        assert set(model) == {"id", "object", "created", "owned_by"}
        assert model["object"] == "model"
        assert isinstance(model["created"], int)
        assert isinstance(model["owned_by"], str) and model["owned_by"]
    owners = {m["id"]: m["owned_by"] for m in body["data"]}
    assert owners["gpt-4o"] == "openai" and owners["mock-1"] == "mock"


async def test_list_is_filtered_by_the_keys_allow_list(relay):
    r = await relay.get("/v1/models", headers=bearer(NARROW))
    assert [m["id"] for m in r.json()["data"]] == ["gpt-4o-mini", "mock-1", "mock-2"]


@pytest.mark.parametrize("path", ["/v1/models", "/models"])
@pytest.mark.parametrize("model", ["gpt-4o", "smart", "org/tuned-1", "o3-mini", "mock-2"])
async def test_get_one_model(relay, path, model):
    r = await relay.get(f"{path}/{model}", headers=bearer(FULL))
    assert r.status_code == 200, r.text
    assert r.json() == {"id": model, "object": "model", "created": 0, "owned_by": r.json()["owned_by"]}


async def test_model_id_may_be_percent_encoded(relay):
    r = await relay.get("/v1/models/org%2Ftuned-1", headers=bearer(FULL))
    assert r.status_code == 200
    assert r.json()["id"] == "org/tuned-1"


@pytest.mark.parametrize(
    ("key", "model"),
    [(FULL, "gpt-5"), (FULL, "o4-mini"), (FULL, "mock-3"), (NARROW, "gpt-4o"), (NARROW, "smart"), (NARROW, "gpt-5")],
)
async def test_unknown_or_not_allowed_model_is_404(relay, key, model):
    for path in ("/v1/models", "/models"):
        r = await relay.get(f"{path}/{model}", headers=bearer(key))
        assert r.status_code == 404, r.text
        error = assert_openai_error(r.json(), code="model_not_found", param="model")
        assert model in error["message"]


async def test_listing_needs_a_key(relay):
    for path in ("/v1/models", "/models", "/v1/models/gpt-4o"):
        r = await relay.get(path)
        assert r.status_code == 401
        assert_openai_error(r.json(), code="missing_api_key")


async def test_wrong_method_is_405(relay):
    r = await relay.post("/v1/models", headers=bearer(FULL))
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"
    assert_openai_error(r.json(), code="method_not_allowed")
