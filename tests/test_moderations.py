"""``/v1/moderations`` through ``relay serve`` to ``relay mock-upstream``, with the official ``openai`` SDK (and
httpx for bodies the SDK will not send); the request log read back from the SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import openai
import pytest

from relay.mock.wire_moderations import TRIGGERS
from tests.conftest import KEY
from tests.rerank_servers import log_row, relay_with_mock

if TYPE_CHECKING:
    from openai.types import ModerationMultiModalInputParam

CATEGORIES = list(TRIGGERS)
TEXT: ModerationMultiModalInputParam = {"type": "text", "text": "some gore here"}
IMAGE: ModerationMultiModalInputParam = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    with relay_with_mock(tmp_path_factory.mktemp("moderations")) as served:
        yield served


@pytest.fixture(scope="module")
def client(relay: tuple[str, Path]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{relay[0]}/v1", api_key=KEY, max_retries=0) as client:
        yield client


def flagged(result: Any) -> set[str]:
    """The categories a ``Moderation`` flags, by their wire names (``self-harm/intent``)."""
    return {name for name, value in result.categories.model_dump(by_alias=True).items() if value}


def test_a_string_defaults_to_omni_moderation_latest(client: openai.OpenAI, relay: tuple[str, Path]) -> None:
    raw = client.moderations.with_raw_response.create(input="I will kill the bomb maker")
    answer = raw.parse()
    assert answer.model == "omni-moderation-latest"
    assert answer.id.startswith("modr-")
    [result] = answer.results
    assert result.flagged is True
    assert flagged(result) == {"violence", "illicit/violent"}
    scores = result.category_scores.model_dump(by_alias=True)
    assert set(scores) == set(CATEGORIES)
    assert scores["violence"] == 0.98 and scores["hate"] < 0.001
    assert result.category_applied_input_types.model_dump(by_alias=True) == {name: ["text"] for name in CATEGORIES}
    row = log_row(relay[1], raw.headers["x-request-id"])
    assert (row["status"], row["route"], row["requested_model"], row["channel"]) == (
        200,
        "/v1/moderations",
        "omni-moderation-latest",
        "moderation",
    )
    assert (row["input_tokens"], row["output_tokens"], row["cost_micros"]) == (0, 0, 0)  # free


def test_a_list_of_strings_gives_a_result_each(client: openai.OpenAI) -> None:
    answer = client.moderations.create(
        model="text-moderation-latest", input=["a lovely day", "you idiot, I threaten you", "I feel suicidal"]
    )
    assert answer.model == "text-moderation-latest"
    assert [r.flagged for r in answer.results] == [False, True, True]
    assert [flagged(r) for r in answer.results] == [
        set(),
        {"harassment", "harassment/threatening"},
        {"self-harm/intent"},
    ]


def test_an_in_process_mock_channel_gets_the_model_name_it_knows(client: openai.OpenAI) -> None:
    """``inproc-moderation`` is ``omni-moderation-2024-09-26`` on its channel: the answer is the upstream's."""
    answer = client.moderations.create(model="inproc-moderation", input="shoplift")
    assert answer.model == "omni-moderation-2024-09-26"
    assert flagged(answer.results[0]) == {"illicit"}


def test_the_same_input_gets_the_same_answer(client: openai.OpenAI) -> None:
    first = client.moderations.create(input=["same words"]).model_dump()
    assert client.moderations.create(input=["same words"]).model_dump() == first


def test_multimodal_parts_give_one_result(client: openai.OpenAI) -> None:
    answer = client.moderations.create(
        model="omni-moderation-latest",
        input=[TEXT, IMAGE],
    )
    [result] = answer.results
    assert flagged(result) == {"violence/graphic"}
    applied = result.category_applied_input_types.model_dump(by_alias=True)
    assert applied["violence/graphic"] == ["text", "image"] and applied["hate"] == ["text"]


def test_the_upstreams_own_refusal_reaches_the_client_in_openais_shape(client: openai.OpenAI) -> None:
    """The mock, as OpenAI, takes no image for a text-moderation model: its 400, in Relay's words."""
    with pytest.raises(openai.BadRequestError) as caught:
        client.moderations.create(
            model="text-moderation-latest",
            input=[IMAGE],
        )
    body = caught.value.body
    assert isinstance(body, dict)
    assert "upstream rejected the request" in body["message"] and body["param"] == "input[0]"


def test_a_model_on_an_anthropic_channel_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.moderations.create(model="claude-moderation", input="hello")
    assert caught.value.code == "unsupported_model"
    assert caught.value.param == "model"
    assert "anthropic channel" in caught.value.message


def test_an_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.moderations.create(model="ghost-moderation", input="hello")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "input"),
        ({"input": None}, "input"),
        ({"input": 5}, "input"),
        ({"input": []}, "input"),
        ({"input": ["a", 5]}, "input[1]"),
        ({"input": [{"type": "text"}]}, "input[0].text"),
        ({"input": [{"type": "audio", "audio": "x"}]}, "input[0].type"),
        ({"input": [{"type": "image_url", "image_url": "https://x"}]}, "input[0].image_url"),
        ({"input": [{"type": "image_url", "image_url": {"url": ""}}]}, "input[0].image_url.url"),
        ({"input": "hi", "model": 3}, "model"),
        ({"input": "hi", "model": ""}, "model"),
    ],
)
def test_bad_input_is_a_400_naming_the_param(relay: tuple[str, Path], body: dict[str, Any], param: str) -> None:
    for path in ("/v1/moderations", "/moderations"):
        reply = httpx.post(f"{relay[0]}{path}", json=body, headers={"authorization": f"Bearer {KEY}"}, timeout=30)
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_without_a_key_it_is_a_401(relay: tuple[str, Path]) -> None:
    client = openai.OpenAI(base_url=f"{relay[0]}/v1", api_key="sk-not-a-relay-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.moderations.create(input="hello")
