"""Codex CLI's default tool lists, sent with the openai SDK's Responses client through Relay to each upstream.

The bodies are the ones Codex CLI 0.171 sends (tests/fixtures/codex_requests.json: its default model's
"responses lite" wire, with tools in an ``additional_tools`` input item; ``gpt-5.1-codex-max`` with a
``namespace`` tool and ``web_search``; ``gpt-5.5`` with the custom ``apply_patch`` and ``tool_search``). Only
the prompt is replaced by mock directives that make the upstream call one tool by its flat name
(``<namespace>__<name>``): the mock upstream calls only tools it was offered (and a Responses one matches the
same name against its namespaced tools), so a call coming back proves the upstream got the flattened function;
Relay must give it back named the client's way (``namespace`` and ``name``, or a ``custom_tool_call``), in
whole answers and streams, and the next turn (history with those items) must go through too.

A Responses client on an OpenAI channel is relayed as it is (``resp-1``, the control); the converted paths are
the Anthropic and Gemini channels (an OpenAI channel never converts a Responses client to Chat Completions).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from openai.types.responses import Response, ResponseCustomToolCall, ResponseFunctionToolCall

from tests.conftest import KEY

CODEX = json.loads((Path(__file__).parent.parent / "fixtures" / "codex_requests.json").read_text())
LITE, CODEX_MAX, GPT55 = CODEX.values()
#: The models of the upstream dialects (tests/sdk/conftest.py); Codex's client sends only ``/v1/responses``.
UPSTREAMS = ("resp-1", "claude-1", "gemini-1")


@pytest.fixture(scope="module")
def client(relay_url: str) -> Iterator[OpenAI]:
    with OpenAI(api_key=KEY, base_url=f"{relay_url}/v1", max_retries=0, timeout=10) as client:
        yield client


def codex_body(body: dict[str, Any], model: str, prompt: str) -> dict[str, Any]:
    """Codex's body for ``model`` with its last user message replaced by ``prompt``."""
    body = copy.deepcopy(body)
    body["model"] = model
    body["input"][-1] = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]}
    return body


def send(client: OpenAI, body: dict[str, Any], stream: bool) -> tuple[Response, dict[str, str]]:
    """The answer to ``body`` (the final Response of a stream) and the response headers."""
    known = {k: body[k] for k in ("model", "input", "tools", "tool_choice") if k in body}
    extra = {k: v for k, v in body.items() if k not in known and k != "stream"}
    raw = client.responses.with_raw_response.create(**known, stream=stream, extra_body=extra)
    assert raw.status_code == 200, raw.text()
    headers = dict(raw.headers)
    if not stream:
        return raw.parse(), headers
    events = list(raw.parse())
    assert events[-1].type == "response.completed", events[-1]
    done = [e.item for e in events if e.type == "response.output_item.done"]
    final = events[-1].response
    assert [item.model_dump() for item in done] == [item.model_dump() for item in final.output]
    return final, headers


def calls(response: Response) -> list[ResponseFunctionToolCall | ResponseCustomToolCall]:
    return [item for item in response.output if item.type in ("function_call", "custom_tool_call")]  # type: ignore[misc]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("model", UPSTREAMS)
@pytest.mark.parametrize(
    ("body", "namespace"), [(CODEX_MAX, "multi_agent_v1"), (LITE, "collaboration")], ids=["namespace", "lite"]
)
def test_a_namespaced_function_call_comes_back_with_its_namespace(
    client: OpenAI, model: str, stream: bool, body: dict[str, Any], namespace: str
) -> None:
    prompt = f'mock:tool={namespace}__spawn_agent mock:args={{"message":"relay-ok"}}'
    response, headers = send(client, codex_body(body, model, prompt), stream)
    (call,) = calls(response)
    assert isinstance(call, ResponseFunctionToolCall)
    assert (call.name, call.namespace, json.loads(call.arguments)) == (
        "spawn_agent",
        namespace,
        {"message": "relay-ok"},
    )
    if model != "resp-1" and body is CODEX_MAX:  # Codex asks for cached search only: no other provider has it
        assert headers["x-relay-dropped-tools"] == "web_search"
    # the next turn: the call and its output go back as Codex sends them
    follow = codex_body(body, model, prompt)
    follow["input"] += [
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "spawned"},
    ]
    answer, _ = send(client, follow, stream)
    assert "Tool said: spawned" in answer.output_text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("model", UPSTREAMS)
@pytest.mark.parametrize(
    ("body", "tool", "namespace"), [(GPT55, "apply_patch", None), (LITE, "exec", "functions")], ids=["top", "lite"]
)
def test_a_custom_tool_call_comes_back_as_one(
    client: OpenAI, model: str, stream: bool, body: dict[str, Any], tool: str, namespace: str | None
) -> None:
    patch = "*** Begin Patch\n*** Add File: a.txt\n+relay-ok\n*** End Patch"
    flat = f"{namespace}__{tool}" if namespace else tool  # the name the upstream was offered
    prompt = f"mock:tool={flat} mock:args=" + json.dumps({"input": patch})
    response, headers = send(client, codex_body(body, model, prompt), stream)
    (call,) = calls(response)
    assert isinstance(call, ResponseCustomToolCall)
    assert (call.name, call.namespace, call.input) == (tool, namespace, patch)
    if model != "resp-1" and body is GPT55:
        assert headers["x-relay-dropped-tools"] == "tool_search,web_search"
    follow = codex_body(body, model, prompt)
    follow["input"] += [
        call.model_dump(exclude_none=True),
        {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "patched"},
    ]
    answer, _ = send(client, follow, stream)
    assert "Tool said: patched" in answer.output_text
