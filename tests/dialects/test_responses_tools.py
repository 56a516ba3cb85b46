"""OpenAI Responses tools other dialects lack: namespaces, custom (freeform) tools, hosted tools, on converted paths.

Decoding (flat names, custom tools as functions, hosted tools, history items, tool choices), the upstream
encoders (what Anthropic, Gemini and Chat receive), and the way back: calls named the client's way, web searches
as ``web_search_call`` items, citations as ``url_citation`` annotations, in answers and streams, checked with the
openai SDK's types. The tool lists are the ones Codex CLI 0.171 sends (tests/fixtures/codex_requests.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from relay.dialects import hosted_tools, ir, tool_names
from relay.dialects.anthropic import codec as anthropic
from relay.dialects.convert import StreamConverter
from relay.dialects.gemini import codec as gemini
from relay.dialects.openai.chat import codec as openai_chat
from relay.dialects.openai.responses import codec as R
from relay.errors import RelayError
from relay.http.sse import Parser
from tests.search_answers import ANTHROPIC_SEARCH, ANTHROPIC_SEARCH_STREAM, GROUNDED

CODEX = json.loads((Path(__file__).parent.parent / "fixtures" / "codex_requests.json").read_text())
LITE, CODEX_MAX, GPT55 = CODEX.values()
EVENTS = pydantic.TypeAdapter(ResponseStreamEvent)
NAMESPACED = {
    "type": "namespace",
    "name": "crm",
    "description": "Customer records.",
    "tools": [
        {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}},
        {
            "type": "custom",
            "name": "query",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: /x+/"},
        },
    ],
}
APPLY_PATCH = {"type": "custom", "name": "apply_patch", "description": "Edit files."}


def decode(**fields: Any) -> ir.Request:
    return R.decode_request(orjson.dumps({"model": "gpt-5", "input": "hi", **fields}))


def codex(body: dict[str, Any], **fields: Any) -> ir.Request:
    return R.decode_request(orjson.dumps({**body, **fields}))


# ---- names -------------------------------------------------------------------------------------------------


def test_flat_names_join_namespace_and_name() -> None:
    assert tool_names.flat_name("multi_agent_v1", "spawn_agent") == "multi_agent_v1__spawn_agent"
    assert tool_names.flat_name(None, "exec_command") == "exec_command"


@pytest.mark.parametrize(
    ("namespace", "name"),
    [("n" * 40, "f" * 40), ("mcp.server", "tool"), ("ns", "naïve name"), ("a" * 70, "b")],
)
def test_a_name_that_does_not_fit_is_shortened_deterministically(namespace: str, name: str) -> None:
    flat = tool_names.flat_name(namespace, name)
    assert tool_names.NAME.fullmatch(flat) and len(flat) <= 64
    assert flat == tool_names.flat_name(namespace, name)  # the same on every turn: no state kept
    assert flat != tool_names.flat_name(namespace, name + "x")


def test_shortened_names_reverse_exactly_through_the_request() -> None:
    long = {"type": "namespace", "name": "n" * 40, "description": "", "tools": [{"type": "function", "name": "f" * 40}]}
    req = decode(tools=[long])
    (tool,) = req.tools
    assert len(tool.name) == 64
    assert tool_names.origins(req) == {tool.name: ir.ToolOrigin("f" * 40, "n" * 40)}
    call = ir.ToolCall("call_1", tool.name, "{}")
    item = Response.model_validate_json(R.encode_response(ir.Response("r", "m", (call,), "tool_calls"), req))
    assert item.output[0].model_dump(exclude_none=True) == {
        "type": "function_call",
        "id": item.output[0].id,
        "call_id": "call_1",
        "name": "f" * 40,
        "namespace": "n" * 40,
        "arguments": "{}",
        "status": "completed",
    }


def test_two_tools_with_one_flat_name_are_refused() -> None:
    clash = {"type": "namespace", "name": "a", "description": "", "tools": [{"type": "function", "name": "b"}]}
    with pytest.raises(RelayError) as info:
        decode(tools=[clash, {"type": "function", "name": "a__b"}])
    assert info.value.status == 400 and "a__b" in info.value.message


# ---- decoding Codex's tools --------------------------------------------------------------------------------


def test_codex_namespaces_become_flat_functions_and_web_search_a_hosted_tool() -> None:
    req = codex(CODEX_MAX)
    R.require_convertible(req)
    R.require_kept(req)
    names = [t.name for t in req.tools]
    assert "multi_agent_v1__spawn_agent" in names and "exec_command" in names
    spawn = next(t for t in req.tools if t.name == "multi_agent_v1__spawn_agent")
    assert spawn.origin == ir.ToolOrigin("spawn_agent", "multi_agent_v1")
    assert spawn.description.endswith("(One of the multi_agent_v1 tools: Tools for spawning and managing sub-agents.)")
    assert spawn.parameters["type"] == "object"
    (search,) = req.hosted
    assert (search.kind, search.label, search.live) == ("web_search", "web_search", False)


def test_codex_lite_additional_tools_are_the_request_tools() -> None:
    req = codex(LITE)
    R.require_convertible(req)
    R.require_kept(req)
    exec_tool = next(t for t in req.tools if t.name == "functions__exec")
    assert exec_tool.origin == ir.ToolOrigin("exec", "functions", custom=True)
    assert exec_tool.parameters["required"] == ["input"]
    assert "lark grammar" in (exec_tool.description or "")
    assert {"clock__sleep", "collaboration__spawn_agent"} <= {t.name for t in req.tools}
    assert all(item.get("type") != "additional_tools" for item in R.encode_input(req))
    assert R.decode_request(orjson.dumps(LITE)).extra["tools"] == []  # the echo shows the client's own (none)


def test_codex_custom_apply_patch_and_hosted_tool_search() -> None:
    req = codex(GPT55)
    patch = next(t for t in req.tools if t.name == "apply_patch")
    assert patch.origin == ir.ToolOrigin("apply_patch", None, custom=True)
    assert [h.label for h in req.hosted] == ["tool_search", "web_search"]


def test_namespace_members_must_be_functions_or_custom_tools() -> None:
    bad = {"type": "namespace", "name": "n", "description": "", "tools": [{"type": "web_search"}]}
    with pytest.raises(RelayError) as info:
        decode(tools=[bad])
    assert info.value.param == "tools[0].tools[0].type"


def test_web_search_options_and_max_tool_calls() -> None:
    tool = {
        "type": "web_search_preview",
        "filters": {"allowed_domains": ["example.com"]},
        "user_location": {"type": "approximate", "city": "Lyon", "country": "FR", "region": None},
        "search_context_size": "high",
    }
    (search,) = decode(tools=[tool], max_tool_calls=4).hosted
    assert search == ir.HostedTool(
        "web_search", "web_search_preview", allowed_domains=("example.com",), max_uses=4,
        location={"city": "Lyon", "country": "FR"}, dialect="openai_responses",
    )  # fmt: skip


# ---- history items -----------------------------------------------------------------------------------------


def test_history_items_of_namespaced_and_custom_calls() -> None:
    req = decode(
        tools=[NAMESPACED, APPLY_PATCH],
        input=[
            {"role": "user", "content": "go"},
            {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search"}},
            {"type": "function_call", "call_id": "c1", "name": "lookup", "namespace": "crm", "arguments": "{}"},
            {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin Patch"},
            {"type": "function_call_output", "call_id": "c1", "output": "found"},
            {"type": "custom_tool_call_output", "call_id": "c2", "output": "done"},
        ],
    )
    R.require_convertible(req)
    assert req.messages[1:] == (
        ir.Message(
            "assistant",
            (
                ir.ToolCall("c1", "crm__lookup", "{}"),
                ir.ToolCall("c2", "apply_patch", '{"input":"*** Begin Patch"}'),
            ),
        ),
        ir.Message(
            "user",
            (
                ir.ToolResult("c1", "crm__lookup", (ir.Text("found"),)),
                ir.ToolResult("c2", "apply_patch", (ir.Text("done"),)),
            ),
        ),
    )
    assert req.extra["input"][2]["namespace"] == "crm"  # a Responses upstream gets the items as they were


# ---- tool choice -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "named"),
    [
        ({"type": "function", "name": "lookup", "namespace": "crm"}, "crm__lookup"),
        ({"type": "function", "name": "lookup"}, "crm__lookup"),  # the one tool of that name
        ({"type": "custom", "name": "apply_patch"}, "apply_patch"),
        ({"type": "custom", "name": "query"}, "crm__query"),
    ],
)
def test_a_choice_naming_a_namespaced_or_custom_tool(choice: dict[str, Any], named: str) -> None:
    req = decode(tools=[NAMESPACED, APPLY_PATCH], tool_choice=choice)
    assert req.tool_choice == ir.ToolChoice("named", named)
    body = orjson.loads(anthropic.encode_request(req, "claude"))
    assert body["tool_choice"] == {"type": "tool", "name": named}


def test_allowed_tools_narrow_namespaced_and_hosted_tools() -> None:
    choice = {
        "type": "allowed_tools",
        "mode": "auto",
        "tools": [{"type": "function", "name": "lookup", "namespace": "crm"}, {"type": "web_search"}],
    }
    req = decode(tools=[NAMESPACED, APPLY_PATCH, {"type": "web_search"}, {"type": "file_search"}], tool_choice=choice)
    assert [t.name for t in req.tools] == ["crm__lookup"]
    assert [h.kind for h in req.hosted] == ["web_search"]


def test_a_choice_forcing_a_dropped_tool_is_refused_naming_it() -> None:
    req = decode(tools=[{"type": "file_search", "vector_store_ids": ["vs"]}], tool_choice={"type": "file_search"})
    for dialect in ("anthropic", "gemini", "openai_chat"):
        with pytest.raises(RelayError) as info:
            hosted_tools.dropped(req, dialect)  # type: ignore[arg-type]
        assert (info.value.status, info.value.param) == (400, "tool_choice")
        assert "'file_search'" in info.value.message


def test_a_forced_web_search_is_forced_on_anthropic_and_refused_where_it_cannot_be() -> None:
    req = decode(tools=[{"type": "web_search"}], tool_choice={"type": "web_search_preview"})
    assert hosted_tools.dropped(req, "anthropic") == ()
    body = orjson.loads(anthropic.encode_request(req, "claude"))
    assert body["tool_choice"] == {"type": "tool", "name": "web_search"}
    for dialect in ("gemini", "openai_chat"):
        with pytest.raises(RelayError):
            hosted_tools.dropped(req, dialect)  # type: ignore[arg-type]


# ---- hosted tools per upstream -----------------------------------------------------------------------------

LIVE_SEARCH = {
    "type": "web_search",
    "user_location": {"type": "approximate", "city": "Oslo", "timezone": "Europe/Oslo"},
}


@pytest.mark.parametrize(
    ("tools", "dialect", "dropped"),
    [
        ([LIVE_SEARCH], "anthropic", ()),
        ([LIVE_SEARCH], "gemini", ()),
        ([LIVE_SEARCH], "openai_chat", ("web_search",)),
        ([LIVE_SEARCH, {"type": "function", "name": "f"}], "gemini", ("web_search",)),  # not with functions
        ([{"type": "web_search", "filters": {"allowed_domains": ["a.io"]}}], "gemini", ("web_search",)),
        ([{"type": "web_search", "external_web_access": False}], "anthropic", ("web_search",)),  # cached only
        (
            [{"type": "file_search"}, {"type": "code_interpreter"}, {"type": "mcp"}, {"type": "image_generation"}],
            "anthropic",
            ("file_search", "code_interpreter", "mcp", "image_generation"),
        ),
        ([{"type": "computer_use_preview"}, {"type": "local_shell"}, {"type": "mcp"}], "gemini", None),
    ],
)
def test_the_hosted_tool_table(tools: list[dict[str, Any]], dialect: Any, dropped: tuple[str, ...] | None) -> None:
    req = decode(tools=tools)
    expected = tuple(dict.fromkeys(t["type"] for t in tools)) if dropped is None else dropped
    assert hosted_tools.dropped(req, dialect) == expected


def test_web_search_reaches_anthropic_as_its_server_tool_and_gemini_as_google_search() -> None:
    req = decode(tools=[LIVE_SEARCH, {"type": "file_search"}], max_tool_calls=2)
    body = orjson.loads(anthropic.encode_request(req, "claude"))
    assert body["tools"] == [
        {
            "type": "web_search_20250305",
            "name": "web_search",
            "max_uses": 2,
            "user_location": {"type": "approximate", "city": "Oslo", "timezone": "Europe/Oslo"},
        }
    ]
    assert orjson.loads(gemini.encode_request(req, "gemini-2.5-pro"))["tools"] == [{"google_search": {}}]
    assert "tools" not in orjson.loads(openai_chat.encode_request(req, "gpt-4o"))


def test_the_dropped_tools_header_is_header_safe() -> None:
    assert hosted_tools.header_value(("web_search", "file_search")) == b"web_search,file_search"
    assert hosted_tools.header_value(("evil\r\nx-a: b", "ünï")) == b"evil__x-a:_b,_n_"


def test_codex_tools_reach_each_upstream_as_flat_functions() -> None:
    req = codex(CODEX_MAX)
    claude = orjson.loads(anthropic.encode_request(req, "claude"))
    assert "multi_agent_v1__spawn_agent" in [t["name"] for t in claude["tools"]]
    assert all(t.get("type") != "web_search_20250305" for t in claude["tools"])  # Codex asks for cached search
    declarations = orjson.loads(gemini.encode_request(req, "gemini-2.5-pro"))["tools"][0]["functionDeclarations"]
    assert "multi_agent_v1__wait_agent" in [d["name"] for d in declarations]
    chat = orjson.loads(openai_chat.encode_request(codex(GPT55), "gpt-4o"))
    patch = next(t["function"] for t in chat["tools"] if t["function"]["name"] == "apply_patch")
    assert patch["parameters"]["properties"] == {"input": {"type": "string", "description": ANY_TEXT}}


class _AnyText(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)

    __hash__ = str.__hash__


ANY_TEXT = _AnyText()


# ---- answers: calls named back the client's way -----------------------------------------------------------


def answer(req: ir.Request, *parts: Any, finish: ir.FinishReason = "tool_calls") -> Response:
    body = R.encode_response(ir.Response("msg_1", "up", tuple(parts), finish), req)
    return Response.model_validate_json(body)


def test_answers_restore_namespace_and_custom_calls() -> None:
    req = decode(tools=[NAMESPACED, APPLY_PATCH])
    resp = answer(
        req,
        ir.ToolCall("toolu_1", "crm__lookup", '{"id":7}'),
        ir.ToolCall("toolu_2", "apply_patch", '{"input":"*** Begin Patch\\n*** End Patch"}'),
        ir.ToolCall("toolu_3", "crm__query", "not json"),
        ir.ToolCall("toolu_4", "unknown__tool", "{}"),  # offered by no one: as the upstream named it
    )
    first, second, third, fourth = (item.model_dump(exclude_none=True) for item in resp.output)
    assert (first["type"], first["name"], first["namespace"], first["arguments"]) == (
        "function_call", "lookup", "crm", '{"id":7}',
    )  # fmt: skip
    assert (second["type"], second["name"], second["input"]) == (
        "custom_tool_call", "apply_patch", "*** Begin Patch\n*** End Patch",
    )  # fmt: skip
    assert "namespace" not in second and second["call_id"] == "toolu_2" and second["id"].startswith("ctc_")
    assert (third["type"], third["namespace"], third["input"]) == ("custom_tool_call", "crm", "not json")
    assert (fourth["type"], fourth["name"]) == ("function_call", "unknown__tool") and "namespace" not in fourth


def stream_events(req: ir.Request, events: list[ir.Event]) -> list[Any]:
    encoder = R.StreamEncoder(req)
    data = b"".join(encoder.encode(e) for e in events) + encoder.finish()
    return [EVENTS.validate_json(frame.data) for frame in Parser().feed(data) if frame.data]


def test_streams_restore_namespace_and_custom_calls() -> None:
    req = decode(tools=[NAMESPACED, APPLY_PATCH], stream=True)
    events = stream_events(
        req,
        [
            ir.Start("msg_1", "up"),
            ir.ToolCallStart(0, "toolu_1", "crm__lookup"),
            ir.ToolCallDelta(0, '{"id"'),
            ir.ToolCallDelta(0, ":7}"),
            ir.BlockEnd(0),
            ir.ToolCallStart(1, "toolu_2", "apply_patch"),
            ir.ToolCallDelta(1, '{"input":"*** Be'),
            ir.ToolCallDelta(1, 'gin Patch"}'),
            ir.BlockEnd(1),
            ir.Finish("tool_calls"),
        ],
    )
    kinds = [e.type for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done",
        "response.output_item.done",
        "response.completed",
    ]
    added = events[2].item
    assert (added.type, added.name, added.namespace) == ("function_call", "lookup", "crm")
    custom = events[10].item
    assert (custom.type, custom.name, custom.input, custom.call_id) == (
        "custom_tool_call", "apply_patch", "*** Begin Patch", "toolu_2",
    )  # fmt: skip
    assert events[8].delta == "*** Begin Patch" and events[9].input == "*** Begin Patch"
    assert custom.id.startswith("ctc_") and events[7].item.id == events[8].item_id == events[9].item_id == custom.id
    final = events[-1].response.output
    assert [(o.type, o.name) for o in final] == [("function_call", "lookup"), ("custom_tool_call", "apply_patch")]
    assert final[0].namespace == "crm" and final[0].arguments == '{"id":7}'


# ---- web search results --------------------------------------------------------------------------------------


def test_anthropic_web_search_decodes_to_a_search_and_citations() -> None:
    resp = anthropic.decode_response(orjson.dumps(ANTHROPIC_SEARCH))
    assert resp.parts == (
        ir.WebSearch("srvtoolu_1", ("relay trio",), ("https://a.example/1", "https://b.example/2")),
        ir.Text("Here is what I found: "),
        ir.Text("Trio is a library.", (ir.Citation("https://a.example/1", "A"),)),
    )
    assert resp.finish_reason == "stop"


def test_a_search_and_its_citations_reach_a_responses_client_as_items_and_annotations() -> None:
    resp = anthropic.decode_response(orjson.dumps(ANTHROPIC_SEARCH))
    out = Response.model_validate_json(R.encode_response(resp, decode(tools=[LIVE_SEARCH]))).output
    search, message = out
    assert search.type == "web_search_call" and search.status == "completed"
    assert search.action.type == "search" and search.action.query == "relay trio"
    assert [s.url for s in search.action.sources] == ["https://a.example/1", "https://b.example/2"]
    first, second = message.content
    assert first.annotations == []
    (note,) = second.annotations
    assert note.model_dump() == {
        "type": "url_citation",
        "start_index": 0,
        "end_index": len("Trio is a library."),
        "url": "https://a.example/1",
        "title": "A",
    }


def test_other_clients_get_the_text_alone() -> None:
    resp = anthropic.decode_response(orjson.dumps(ANTHROPIC_SEARCH))
    req = ir.Request(model="m", system=(), messages=(ir.Message("user", (ir.Text("q"),)),))
    assert [b["type"] for b in orjson.loads(anthropic.encode_response(resp, req))["content"]] == ["text", "text"]
    chat = orjson.loads(openai_chat.encode_response(resp, req))
    assert chat["choices"][0]["message"]["content"] == "Here is what I found: Trio is a library."
    parts = orjson.loads(gemini.encode_response(resp, req))["candidates"][0]["content"]["parts"]
    assert "".join(p["text"] for p in parts) == "Here is what I found: Trio is a library."


def test_anthropic_stream_search_and_citations_decode() -> None:
    events = anthropic.StreamDecoder().feed(ANTHROPIC_SEARCH_STREAM)
    search = ir.WebSearch("srvtoolu_1", ("relay",), ("https://a.example/1", "https://b.example/2"))
    assert ir.WebSearched(0, search) in events
    assert ir.TextCitation(1, ir.Citation("https://a.example/1", "A")) in events
    assert [type(e).__name__ for e in events] == [
        "Start", "WebSearched", "TextStart", "TextCitation", "TextDelta", "TextDelta", "BlockEnd", "Finish",
    ]  # fmt: skip


def test_anthropic_stream_search_reaches_a_responses_stream_as_items_and_annotations() -> None:
    req = decode(tools=[LIVE_SEARCH], stream=True)
    converter = StreamConverter(anthropic.StreamDecoder(), R.StreamEncoder(req), 1)
    data = converter.feed(ANTHROPIC_SEARCH_STREAM) + converter.close()
    events = [EVENTS.validate_json(f.data) for f in Parser().feed(data) if f.data]
    kinds = [e.type for e in events]
    assert kinds[2:7] == [
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
    ]
    assert events[6].item.action.query == "relay"
    (added,) = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert added.annotation.url == "https://a.example/1" and added.annotation.end_index == len("Trio is a library.")
    assert kinds.index("response.output_text.annotation.added") < kinds.index("response.output_text.done")
    final = events[-1].response
    assert [o.type for o in final.output] == ["web_search_call", "message"]
    assert final.output[1].content[0].annotations[0].title == "A"


def test_gemini_grounding_is_a_web_search() -> None:
    resp = gemini.decode_response(orjson.dumps(GROUNDED))
    search = ir.WebSearch("", ("python trio",), ("https://vertexaisearch.example/r1",))
    assert resp.parts == (search, ir.Text("Trio is a library."))
    out = Response.model_validate_json(R.encode_response(resp, decode(tools=[LIVE_SEARCH]))).output
    assert [o.type for o in out] == ["web_search_call", "message"]
    assert out[0].id.startswith("ws_") and out[0].action.queries == ["python trio"]


def test_gemini_stream_grounding_comes_before_the_finish() -> None:
    first = {**GROUNDED, "candidates": [{"content": {"role": "model", "parts": [{"text": "Trio "}]}}]}
    data = b"".join(b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in (first, GROUNDED))
    events = gemini.StreamDecoder().feed(data)
    search = ir.WebSearch("", ("python trio",), ("https://vertexaisearch.example/r1",))
    assert events[-2:] == [ir.WebSearched(1, search), ir.Finish("stop", events[-1].usage)]  # type: ignore[union-attr]


def test_other_stream_encoders_skip_searches_and_citations() -> None:
    req = ir.Request(model="m", system=(), messages=(ir.Message("user", (ir.Text("q"),)),), stream=True)
    for codec in (anthropic, openai_chat):
        converter = StreamConverter(anthropic.StreamDecoder(), codec.StreamEncoder(req), 1)
        data = converter.feed(ANTHROPIC_SEARCH_STREAM) + converter.close()
        assert b"Trio is " in data and b"a.example" not in data
    converter = StreamConverter(anthropic.StreamDecoder(), gemini.StreamEncoder(req), 1)
    data = converter.feed(ANTHROPIC_SEARCH_STREAM) + converter.close()
    assert b"Trio is " in data and b"a.example" not in data


# ---- the same policy for Anthropic's and Gemini's own tools ------------------------------------------------

ANTHROPIC_TOOLS = [
    {"name": "lookup", "input_schema": {"type": "object", "properties": {}}},
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 2, "blocked_domains": ["x.example"]},
    {"type": "code_execution_20250522", "name": "code_execution"},
]


def anthropic_request(**fields: Any) -> ir.Request:
    body = {"model": "claude", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}], **fields}
    return anthropic.decode_request(orjson.dumps(body))


def test_anthropic_server_tools_are_hosted_tools() -> None:
    req = anthropic_request(tools=ANTHROPIC_TOOLS)
    anthropic.require_kept(req)
    assert [t.name for t in req.tools] == ["lookup"]
    search, code = req.hosted
    assert (search.kind, search.label, search.max_uses, search.blocked_domains) == (
        "web_search", "web_search_20250305", 2, ("x.example",),
    )  # fmt: skip
    assert (code.kind, code.dialect, code.raw) == ("code_execution_20250522", "anthropic", ANTHROPIC_TOOLS[2])
    # the same dialect gets them as they were; others map the search where they can and drop the rest
    assert orjson.loads(anthropic.encode_request(req, "c", same_dialect=True))["tools"] == ANTHROPIC_TOOLS
    assert hosted_tools.dropped(req, "anthropic") == ()
    assert hosted_tools.dropped(req, "openai_chat") == ("web_search_20250305", "code_execution_20250522")
    assert hosted_tools.dropped(req, "openai_responses") == ("web_search_20250305", "code_execution_20250522")
    allowed = anthropic_request(
        tools=[{"type": "web_search_20250305", "name": "web_search", "allowed_domains": ["a.io"]}]
    )
    assert orjson.loads(R.encode_request(allowed, "gpt-5"))["tools"] == [
        {"type": "web_search", "filters": {"allowed_domains": ["a.io"]}}
    ]
    alone = anthropic_request(tools=[{"type": "web_search_20250305", "name": "web_search"}])
    assert orjson.loads(gemini.encode_request(alone, "gemini-2.5-pro"))["tools"] == [{"google_search": {}}]


def test_an_anthropic_choice_of_a_server_tool_forces_it() -> None:
    choice = {"type": "tool", "name": "web_search", "disable_parallel_tool_use": True}
    req = anthropic_request(tools=ANTHROPIC_TOOLS[1:2], tool_choice=choice)
    assert req.tool_choice is None and req.hosted[0].forced
    body = orjson.loads(anthropic.encode_request(req, "c", same_dialect=True))
    assert body["tool_choice"] == choice
    for dialect in ("gemini", "openai_responses", "openai_chat"):
        with pytest.raises(RelayError):
            hosted_tools.dropped(req, dialect)  # type: ignore[arg-type]


def test_google_search_is_a_hosted_web_search() -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "tools": [{"googleSearch": {}}, {"code_execution": {}}],
    }
    req = gemini.decode_request(orjson.dumps(body), model="gemini-2.5-pro", stream=False)
    gemini.require_kept(req)
    assert [(h.kind, h.label) for h in req.hosted] == [
        ("web_search", "googleSearch"),
        ("codeExecution", "codeExecution"),
    ]
    assert hosted_tools.dropped(req, "anthropic") == ("codeExecution",)
    assert orjson.loads(anthropic.encode_request(req, "c"))["tools"] == [
        {"type": "web_search_20250305", "name": "web_search"}
    ]
    assert orjson.loads(gemini.encode_request(req, "g", same_dialect=True))["tools"] == body["tools"]  # no twice
