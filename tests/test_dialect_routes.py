"""Every client API's routes: each answers in its own dialect, model lists in each shape, errors in each shape."""

import base64

import httpx
import orjson
import pytest

from relay.config import loads
from relay.routes import ROUTES, Router
from tests.conftest import KEY, serve_relay

CONFIG = f"""
[[channels]]
name = "chat"
type = "mock"
models = ["chat-*"]

[[channels]]
name = "claude"
type = "mock"
models = ["claude-*"]
[channels.mock]
dialect = "anthropic"

[[channels]]
name = "gemini"
type = "mock"
models = ["gemini-*"]
[channels.mock]
dialect = "gemini"

[[keys]]
name = "test"
key = "{KEY}"

[[keys]]
name = "narrow"
key = "sk-narrow-key-0000"
models = ["chat-*"]
"""
AUTH = {"authorization": f"Bearer {KEY}"}
NAMES = ["chat-1", "chat-2", "claude-1", "claude-2", "gemini-1", "gemini-2"]
LISTED = CONFIG.replace('["chat-*"]', '["chat-1", "chat-2"]', 1)
LISTED = LISTED.replace('["claude-*"]', '["claude-1", "claude-2"]').replace('["gemini-*"]', '["gemini-1", "gemini-2"]')


@pytest.fixture
async def relay():
    async with serve_relay(loads(LISTED)) as served, httpx.AsyncClient(base_url=served.url) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path", "endpoint", "params"),
    [
        ("POST", "/v1/chat/completions", "chat_completions", {}),
        ("POST", "/v1beta/openai/chat/completions", "chat_completions", {}),
        ("POST", "/v1/responses", "responses", {}),
        ("POST", "/v1/responses/input_tokens", "responses_count", {}),
        ("POST", "/v1/messages", "messages", {}),
        ("POST", "/claude/v1/messages", "messages", {}),
        ("POST", "/claude/v1/messages/count_tokens", "anthropic_count", {}),
        ("POST", "/v1beta/models/gemini-2.5-flash:generateContent", "generate_content", {"model": "gemini-2.5-flash"}),
        ("POST", "/v1/models/g-1:streamGenerateContent", "stream_generate_content", {"model": "g-1"}),
        ("POST", "/gemini/v1beta/models/g-1:countTokens", "gemini_count", {"version": "v1beta", "model": "g-1"}),
        ("GET", "/v1/models/org/tuned:v1", "get_model", {"model": "org/tuned:v1"}),
        ("GET", "/v1beta/models/g-1", "get_gemini_model", {"model": "g-1"}),
        ("GET", "/gemini/v1/models", "list_gemini_models", {"version": "v1"}),
    ],
)
def test_routes(method, path, endpoint, params):
    route, found = Router(ROUTES).match(method, path)
    assert route.endpoint.__name__ == endpoint
    assert found == params


async def test_model_lists_in_three_shapes(relay):
    openai = (await relay.get("/v1/models", headers=AUTH)).json()
    assert [m["id"] for m in openai["data"]] == NAMES
    assert openai["object"] == "list"
    claude = (await relay.get("/v1/models", headers={**AUTH, "anthropic-version": "2023-06-01"})).json()
    assert claude == {
        "data": [{"type": "model", "id": n, "display_name": n, "created_at": "1970-01-01T00:00:00Z"} for n in NAMES],
        "has_more": False,
        "first_id": "chat-1",
        "last_id": "gemini-2",
    }
    assert (await relay.get("/claude/v1/models", headers=AUTH)).json() == claude
    gemini = (await relay.get("/v1beta/models", headers={"x-goog-api-key": KEY})).json()
    assert [m["name"] for m in gemini["models"]] == [f"models/{n}" for n in NAMES]
    assert "nextPageToken" not in gemini
    assert gemini["models"][0]["supportedGenerationMethods"] == [
        "generateContent",
        "streamGenerateContent",
        "countTokens",
    ]
    assert (await relay.get("/v1beta/openai/models", headers=AUTH)).json() == openai


async def test_anthropic_paging(relay):
    headers = {**AUTH, "anthropic-version": "2023-06-01"}
    first = (await relay.get("/v1/models?limit=4", headers=headers)).json()
    assert [m["id"] for m in first["data"]] == NAMES[:4] and first["has_more"] is True
    rest = (await relay.get(f"/v1/models?limit=4&after_id={first['last_id']}", headers=headers)).json()
    assert [m["id"] for m in rest["data"]] == NAMES[4:] and rest["has_more"] is False
    before = (await relay.get("/v1/models?limit=2&before_id=claude-2", headers=headers)).json()
    assert [m["id"] for m in before["data"]] == ["chat-2", "claude-1"] and before["has_more"] is True
    bad = await relay.get("/v1/models?limit=0", headers=headers)
    assert bad.status_code == 400
    assert bad.json()["type"] == "error" and bad.json()["error"]["type"] == "invalid_request_error"


async def test_gemini_paging(relay):
    seen, token, pages = [], "", 0
    while True:
        query = f"?pageSize=4&pageToken={token}" if token else "?pageSize=4"
        page = (await relay.get("/v1beta/models" + query, params=None, headers={"x-goog-api-key": KEY})).json()
        seen += [m["name"].removeprefix("models/") for m in page["models"]]
        pages += 1
        token = page.get("nextPageToken", "")
        if not token:
            break
    assert seen == NAMES and pages == 2
    one = await relay.get("/v1beta/models/gemini-1", headers={"x-goog-api-key": KEY})
    assert one.json()["name"] == "models/gemini-1"
    bad = await relay.get("/v1beta/models?pageToken=" + base64.urlsafe_b64encode(b"x").decode(), headers=AUTH)
    assert bad.status_code == 400
    assert bad.json()["error"] == {
        "code": 400,
        "message": bad.json()["error"]["message"],
        "status": "INVALID_ARGUMENT",
    }
    assert "pageToken" in bad.json()["error"]["message"]


async def test_narrow_key_sees_its_models(relay):
    listed = (await relay.get("/v1beta/models", headers={"x-goog-api-key": "sk-narrow-key-0000"})).json()
    assert [m["name"] for m in listed["models"]] == ["models/chat-1", "models/chat-2"]
    hidden = await relay.get("/v1beta/models/gemini-1", headers={"x-goog-api-key": "sk-narrow-key-0000"})
    assert hidden.status_code == 404
    assert hidden.json()["error"]["status"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/v1/messages", "anthropic"),
        ("/claude/v1/messages", "anthropic"),
        ("/v1/messages/count_tokens", "anthropic"),
        ("/v1beta/models/gemini-1:generateContent", "gemini"),
        ("/gemini/v1beta/models/gemini-1:streamGenerateContent", "gemini"),
        ("/v1/models/gemini-1:countTokens", "gemini"),
        ("/v1/responses", "openai"),
        ("/v1/chat/completions", "openai"),
    ],
)
async def test_errors_take_the_route_dialect(relay, path, shape):
    body = b'{"model": "chat-1", "messages": [], "contents": []}'
    missing = await relay.post(path, content=body)
    assert missing.status_code == 401
    assert_shape(missing.json(), shape, 401)
    wrong = await relay.post(path, content=body, headers={"x-api-key": "sk-not-a-key-0000"})
    assert wrong.status_code == 401
    assert_shape(wrong.json(), shape, 401)
    not_json = await relay.post(path, content=b"{nope", headers=AUTH)
    assert not_json.status_code == 400
    assert_shape(not_json.json(), shape, 400)


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        ("/v1beta/nothing", "gemini"),
        ("/gemini/v1/nothing", "gemini"),
        ("/claude/nothing", "anthropic"),
        ("/nope", "openai"),
    ],
)
async def test_unknown_paths_answer_in_the_prefix_dialect(relay, path, shape):
    response = await relay.get(path, headers=AUTH)
    assert response.status_code == 404
    assert_shape(response.json(), shape, 404)


async def test_wrong_method_on_gemini_route(relay):
    response = await relay.get("/v1beta/models/gemini-1:generateContent", headers=AUTH)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert_shape(response.json(), "gemini", 405)


async def test_unknown_model_in_each_dialect(relay):
    claude = await relay.post("/v1/messages", headers=AUTH, json={"model": "nope", "max_tokens": 5, "messages": []})
    assert claude.status_code == 404
    assert claude.json()["error"]["type"] == "not_found_error"
    gemini = await relay.post("/v1beta/models/nope:generateContent", headers=AUTH, json={"contents": []})
    assert gemini.status_code == 404
    assert gemini.json()["error"]["status"] == "NOT_FOUND"
    narrow = await relay.post(
        "/v1beta/models/gemini-1:generateContent", headers={"x-goog-api-key": "sk-narrow-key-0000"}, json={}
    )
    assert narrow.status_code == 403
    assert narrow.json()["error"]["status"] == "PERMISSION_DENIED"


def assert_shape(body: dict, shape: str, status: int) -> None:
    text = orjson.dumps(body).decode()
    assert "Traceback" not in text
    if shape == "anthropic":
        assert body["type"] == "error"
        assert set(body["error"]) >= {"type", "message"} and body["error"]["message"]
    elif shape == "gemini":
        assert body["error"]["code"] == status
        assert isinstance(body["error"]["status"], str) and body["error"]["message"]
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["message"]
