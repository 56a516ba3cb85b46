"""Upstream faults as the official SDKs see them: a broken or malformed stream raises the SDK's API error (never a
JSON decode error nor a validation error), and an upstream's refusal of its own key is never the client's
authentication error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pydantic
import pytest
import trio
from google import genai
from google.genai import errors, types

from tests.conftest import KEY
from tests.faults.rig import Rig, Route

QUESTION = [{"role": "user", "content": "Say something in pieces."}]
BROKEN = ["cut", "malformed", "deep"]


async def raised(rig: Rig, call: Callable[[], Any]) -> BaseException:
    """The error ``call`` (one request through an SDK, run in a thread) raised."""
    rig.sent += 1

    def run() -> BaseException:
        try:
            call()
        except Exception as error:
            return error
        raise AssertionError("the SDK raised nothing")

    return await trio.to_thread.run_sync(run)


def not_a_decode_error(error: BaseException) -> None:
    assert not isinstance(error, json.JSONDecodeError | pydantic.ValidationError | KeyError | TypeError), repr(error)


def openai_client(rig: Rig) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{rig.url}/v1", api_key=KEY, max_retries=0, timeout=10)


def anthropic_client(rig: Rig) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=rig.url, api_key=KEY, max_retries=0, timeout=10)


@pytest.mark.parametrize("family", ["openai", "anthropic"])
@pytest.mark.parametrize("fault", BROKEN)
async def test_openai_sdk_chat_stream_raises_an_api_error(faulty: Rig, family: str, fault: str) -> None:
    model = Route("openai_chat", family).model(fault)
    with openai_client(faulty) as client:
        error = await raised(
            faulty, lambda: list(client.chat.completions.create(model=model, messages=QUESTION, stream=True))
        )
    not_a_decode_error(error)
    assert isinstance(error, openai.APIError) and not isinstance(error, openai.APIConnectionError), repr(error)


@pytest.mark.parametrize("family", ["openai", "gemini"])
@pytest.mark.parametrize("fault", BROKEN)
async def test_openai_sdk_responses_stream_raises_an_api_error(faulty: Rig, family: str, fault: str) -> None:
    model = Route("openai_responses", family).model(fault)
    with openai_client(faulty) as client:
        error = await raised(faulty, lambda: list(client.responses.create(model=model, input="hi", stream=True)))
    not_a_decode_error(error)
    assert isinstance(error, openai.APIError) and not isinstance(error, openai.APIConnectionError), repr(error)


@pytest.mark.parametrize("family", ["anthropic", "openai"])
@pytest.mark.parametrize("fault", BROKEN)
async def test_anthropic_sdk_stream_raises_an_api_error(faulty: Rig, family: str, fault: str) -> None:
    model = Route("anthropic", family).model(fault)
    with anthropic_client(faulty) as client:
        error = await raised(
            faulty,
            lambda: list(client.messages.create(model=model, max_tokens=100, messages=QUESTION, stream=True)),
        )
    not_a_decode_error(error)
    assert isinstance(error, anthropic.APIError) and not isinstance(error, anthropic.APIConnectionError), repr(error)


@pytest.mark.parametrize("fault", BROKEN)
async def test_genai_sdk_stream_raises_an_api_error(faulty: Rig, fault: str) -> None:
    model = Route("gemini", "gemini").model(fault)
    options = types.HttpOptions(base_url=faulty.url, api_version="v1beta", timeout=10_000)
    client = genai.Client(api_key=KEY, vertexai=False, http_options=options)
    error = await raised(faulty, lambda: list(client.models.generate_content_stream(model=model, contents="hi")))
    not_a_decode_error(error)
    assert isinstance(error, errors.APIError), repr(error)


@pytest.mark.parametrize("family", ["openai", "anthropic"])
@pytest.mark.parametrize("fault", ["non_json", "html_500", "unauthorized", "deep"])
async def test_openai_sdk_whole_answer_faults_are_server_errors(faulty: Rig, family: str, fault: str) -> None:
    model = Route("openai_chat", family).model(fault)
    with openai_client(faulty) as client:
        error = await raised(faulty, lambda: client.chat.completions.create(model=model, messages=QUESTION))
    not_a_decode_error(error)
    assert isinstance(error, openai.APIStatusError), repr(error)
    assert not isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError), repr(error)
    assert 500 <= error.status_code <= 599, error


@pytest.mark.parametrize("family", ["anthropic", "openai"])
async def test_anthropic_sdk_upstream_key_refused_is_not_the_clients_authentication_error(
    faulty: Rig, family: str
) -> None:
    model = Route("anthropic", family).model("unauthorized")
    with anthropic_client(faulty) as client:
        error = await raised(faulty, lambda: client.messages.create(model=model, max_tokens=100, messages=QUESTION))
    assert isinstance(error, anthropic.APIStatusError), repr(error)
    assert not isinstance(error, anthropic.AuthenticationError | anthropic.PermissionDeniedError), repr(error)
    assert 500 <= error.status_code <= 599, error
