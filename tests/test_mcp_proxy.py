"""The MCP proxy (``[[mcp]]`` servers at ``/v1/mcp/{name}``) through ``relay serve``, with the official ``mcp`` SDK
as the client: to the mock's MCP server (in process, and ``relay mock-upstream`` over HTTP with the key Relay's
configuration gives it), and to real servers made with the SDK's ``MCPServer`` (FastMCP) in processes of their
own, over streamable HTTP and the legacy HTTP+SSE transport. Keys (401, 403), the key's rpm on tool calls, the
request log's rows (through the admin API), the server's headers reaching it and the client's not, JSON-RPC
errors for what is not JSON-RPC, and ``check-config``'s account of bad ``[[mcp]]`` tables.

The SDK is asyncio's: each test runs its client with ``anyio.run(..., backend="asyncio")``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.conftest import process
from tests.helpers import MOCK_ARGS, relay_cli

KEY = "sk-relay-mcp-tests-dev"
LIMITED = "sk-relay-mcp-tests-limited"
LIMITED_SSE = "sk-relay-mcp-tests-limited-sse"
OUTSIDER = "sk-relay-mcp-tests-outsider"
PAYING = "sk-relay-mcp-tests-paying"
ADMIN = "sk-admin-mcp-tests-0123456789"
#: The key ``relay mock-upstream`` requires; Relay gets it from the environment (``${H7_MOCK_KEY}``).
MOCK_KEY = "sk-mock-upstream-secret"
#: The token the MCPServer processes are sent (``${H7_SERVER_TOKEN}``); they record the headers they get.
SERVER_TOKEN = "tok-upstream-0123456789"

SERVER_SCRIPT = textwrap.dedent(
    '''
    """An MCPServer (FastMCP) of the mcp SDK on a port of its own; prints it, then serves. It records the headers of
    the POST that carries each message, which its ``seen_headers`` tool returns."""
    import socket
    import sys

    import anyio
    import uvicorn
    from mcp.server.mcpserver import Context, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("relay-test-server")
    seen: dict[str, str] = {}


    @server.tool()
    def add(a: int, b: int) -> int:
        """The sum of a and b."""
        return a + b


    @server.tool()
    def fail(reason: str) -> str:
        """Always fails, with ``reason``."""
        raise ToolError(reason)


    @server.tool()
    def seen_headers() -> dict[str, str]:
        """The headers of the request that carried this call."""
        return dict(seen)


    @server.tool()
    async def count(n: int, ctx: Context) -> str:
        """Counts to n, reporting progress at each step."""
        for i in range(n):
            await ctx.report_progress(i + 1, n)
            await anyio.sleep(0.01)
        return f"counted to {n}"


    @server.tool()
    async def stall(seconds: float, ctx: Context) -> str:
        """Reports progress, then says nothing for ``seconds``."""
        await ctx.report_progress(1, 2)
        await anyio.sleep(seconds)
        return "done"


    transport = sys.argv[1]
    inner = server.streamable_http_app(host="127.0.0.1") if transport == "streamable-http" else server.sse_app(
        host="127.0.0.1"
    )


    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST":
            seen.clear()
            seen.update({k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]})
        await inner(scope, receive, send)


    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(f"listening on 127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn_server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    anyio.run(lambda: uvicorn_server.serve(sockets=[sock]))
    '''
)


def closed_port() -> int:
    """A port nothing listens on (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def relay_toml(root: Path, mock: str, streamable: str, legacy: str) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "sqlite:///{root}/relay.db"
key_refresh = 0.2
log_interval = 0.05

[[keys]]
name = "dev"
key = "{KEY}"

[[keys]]
name = "limited"
key = "{LIMITED}"
rpm = 2

[[keys]]
name = "limited-sse"
key = "{LIMITED_SSE}"
rpm = 1

[[keys]]
name = "outsider"
key = "{OUTSIDER}"
group = "elsewhere"

[[keys]]
name = "paying"
key = "{PAYING}"
quota = 10

[[prices]]
model = "mcp:mock/*"
request = 0.25

[[admin_keys]]
name = "root"
key = "{ADMIN}"

[[mcp]]
name = "mock"
url = "mock"

[[mcp]]
name = "mockhttp"
url = "http://{mock}/mcp"
headers = {{ Authorization = "Bearer ${{H7_MOCK_KEY}}" }}

[[mcp]]
name = "mockwrongkey"
url = "http://{mock}/mcp"
headers = {{ Authorization = "Bearer not-the-mock-key" }}

[[mcp]]
name = "private"
url = "mock"
keys = ["limited"]
groups = []

[[mcp]]
name = "down"
url = "http://127.0.0.1:{closed_port()}/mcp"

[[mcp]]
name = "fast"
url = "http://{streamable}/mcp"
headers = {{ X-Upstream-Token = "${{H7_SERVER_TOKEN}}" }}

[[mcp]]
name = "fastidle"
url = "http://{streamable}/mcp"
[mcp.timeouts]
idle = 0.5

[[mcp]]
name = "legacy"
url = "http://{legacy}/sse"
headers = {{ X-Upstream-Token = "${{H7_SERVER_TOKEN}}" }}
"""


@pytest.fixture(scope="module")
def mcp_server_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mcp_server") / "server.py"
    path.write_text(SERVER_SCRIPT)
    return path


@contextmanager
def _server(script: Path, transport: str) -> Iterator[str]:
    """The MCPServer script serving ``transport`` in a process of its own; yields its ``HOST:PORT``."""
    proc = subprocess.Popen(
        [sys.executable, str(script), transport], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, f"the MCP server did not start: {line!r}"
        address = line.split("listening on", 1)[1].strip()
        _wait_listening(address)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_listening(address: str) -> None:
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {address}"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, mcp_server_script: Path) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mcp_proxy")
    with (
        process(*MOCK_ARGS, "--api-key", MOCK_KEY) as (_, mock),
        _server(mcp_server_script, "streamable-http") as streamable,
        _server(mcp_server_script, "sse") as legacy,
    ):
        path = root / "relay.toml"
        path.write_text(relay_toml(root, mock, streamable, legacy))
        env = {"H7_MOCK_KEY": MOCK_KEY, "H7_SERVER_TOKEN": SERVER_TOKEN}
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0", env=env) as (_, address):
            yield f"http://{address}"


# ---- the SDK's clients ---------------------------------------------------------------------------------------

Body = Callable[[ClientSession], Awaitable[Any]]


def streamable(base: str, name: str, body: Body, key: str = KEY) -> Any:
    """``body`` run in an initialized SDK session with the server ``name`` over streamable HTTP, through Relay."""

    async def main() -> Any:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=20) as http,
            streamable_http_client(f"{base}/v1/mcp/{name}", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await body(session)

    return anyio.run(main, backend="asyncio")


def legacy(base: str, name: str, body: Body, key: str = KEY) -> Any:
    """``body`` run in an initialized SDK session over the legacy HTTP+SSE transport, through Relay."""

    async def main() -> Any:
        async with (
            sse_client(f"{base}/v1/mcp/{name}/sse", headers={"Authorization": f"Bearer {key}"}, timeout=20) as (
                read,
                write,
            ),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await body(session)

    return anyio.run(main, backend="asyncio")


def failure(run: Callable[[], Any]) -> BaseException:
    """What ``run`` raised, out of the task groups' exception groups the SDK's context managers wrap it in."""
    try:
        run()
    except BaseException as exc:
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        return exc
    raise AssertionError("nothing was raised")


def texts(result: Any) -> list[str]:
    return [part.text for part in result.content]


def rows(base: str, want: int, **params: Any) -> list[dict[str, Any]]:
    """The request log's rows matching ``params`` (the admin API's filters), once at least ``want`` are in."""
    deadline = time.monotonic() + 10
    while True:
        answer = httpx.get(
            f"{base}/admin/v1/requests", params=params, headers={"authorization": f"Bearer {ADMIN}"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        found = answer.json()["data"]
        if len(found) >= want:
            return found
        assert time.monotonic() < deadline, f"{want} rows for {params} did not reach the log: {found}"
        time.sleep(0.1)


# ---- the mock's MCP server ------------------------------------------------------------------------------------


def test_mock_in_process_lists_and_calls_its_tools(base: str) -> None:
    progress: list[tuple[float, float | None]] = []

    async def body(session: ClientSession) -> Any:
        listed = await session.list_tools()
        added = await session.call_tool("add", {"a": 2, "b": 3.5})

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, total))

        echoed = await session.call_tool("echo", {"text": "héllo"}, progress_callback=on_progress)
        now = await session.call_tool("now_fixed", {})
        wrong = await session.call_tool("add", {"a": "two", "b": 3})
        with pytest.raises(MCPError, match="Unknown tool: nope"):
            await session.call_tool("nope", {})
        await session.send_ping()
        return listed, added, echoed, now, wrong

    listed, added, echoed, now, wrong = streamable(base, "mock", body)
    assert [tool.name for tool in listed.tools] == ["add", "echo", "now_fixed"]
    assert texts(added) == ["5.5"] and added.structured_content == {"sum": 5.5} and not added.is_error
    assert texts(echoed) == ["héllo"]
    assert progress == [(1, 1)]  # the mock's progress event came through Relay's relayed stream
    assert texts(now) == ["2026-01-01T00:00:00Z"]
    assert wrong.is_error and "must be numbers" in texts(wrong)[0]


def test_mock_upstream_gets_the_configured_key_and_not_the_clients(base: str) -> None:
    # relay mock-upstream runs with --api-key: only the [[mcp]] headers' ${H7_MOCK_KEY} opens it (Relay's key, the
    # client's Authorization, would be refused), so this call proves the one is sent and the other is not.
    result = streamable(base, "mockhttp", lambda session: session.call_tool("add", {"a": 1, "b": 2}))
    assert texts(result) == ["3"]


def test_a_server_refusing_relays_credentials_is_a_502_json_rpc_error(base: str) -> None:
    refused = failure(lambda: streamable(base, "mockwrongkey", lambda session: session.list_tools()))
    assert isinstance(refused, MCPError) and "refused Relay's credentials" in str(refused)
    answer = _post(base, "mockwrongkey", {"jsonrpc": "2.0", "id": 7, "method": "initialize", "params": {}})
    assert answer.status_code == 502
    assert answer.json()["id"] == 7 and answer.json()["error"]["code"] == -32603


# ---- real servers: the mcp SDK's MCPServer ---------------------------------------------------------------------


def test_streamable_http_server_through_relay(base: str) -> None:
    steps: list[float] = []

    async def body(session: ClientSession) -> Any:
        listed = await session.list_tools()
        added = await session.call_tool("add", {"a": 20, "b": 22})
        failed = await session.call_tool("fail", {"reason": "on purpose"})

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            steps.append(value)

        counted = await session.call_tool("count", {"n": 3}, progress_callback=on_progress)
        headers = await session.call_tool("seen_headers", {})
        return listed, added, failed, counted, headers

    listed, added, failed, counted, headers = streamable(base, "fast", body)
    assert {"add", "fail", "seen_headers", "count"} <= {tool.name for tool in listed.tools}
    assert texts(added) == ["42"]
    assert failed.is_error and "on purpose" in texts(failed)[0]
    assert texts(counted) == ["counted to 3"] and steps == [1, 2, 3]
    seen = headers.structured_content
    assert seen["x-upstream-token"] == SERVER_TOKEN  # the [[mcp]] headers, ${VAR} resolved
    assert "authorization" not in seen  # Relay's key stays with Relay
    assert seen["mcp-session-id"] and seen["mcp-protocol-version"] == "2025-11-25"  # MCP's headers pass


def test_legacy_sse_server_through_relay(base: str) -> None:
    async def body(session: ClientSession) -> Any:
        listed = await session.list_tools()
        added = await session.call_tool("add", {"a": 1, "b": 41})
        failed = await session.call_tool("fail", {"reason": "legacy"})
        headers = await session.call_tool("seen_headers", {})
        return listed, added, failed, headers

    listed, added, failed, headers = legacy(base, "legacy", body)
    assert "add" in {tool.name for tool in listed.tools}
    assert texts(added) == ["42"] and failed.is_error
    seen = headers.structured_content
    assert seen["x-upstream-token"] == SERVER_TOKEN and "authorization" not in seen


def test_legacy_endpoint_is_rewritten_to_relays_path(base: str) -> None:
    with httpx.stream(
        "GET", f"{base}/v1/mcp/legacy/sse", headers={"authorization": f"Bearer {KEY}"}, timeout=10
    ) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines) == "event: endpoint"
        data = next(lines)
    assert data.startswith("data: /v1/mcp/legacy/messages/?session_id=")


# ---- keys, limits, errors --------------------------------------------------------------------------------------


def _post(
    base: str, name: str, message: Any, key: str | None = KEY, raw: bytes | None = None, session: str | None = None
) -> httpx.Response:
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    if session is not None:
        headers["mcp-session-id"] = session
    content = raw if raw is not None else httpx.Request("POST", "http://x", json=message).content
    return httpx.post(f"{base}/v1/mcp/{name}", content=content, headers=headers, timeout=10)


def test_no_key_and_a_wrong_key_are_401_in_openai_shape(base: str) -> None:
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    for key, code in ((None, "missing_api_key"), ("sk-not-a-relay-key", "invalid_api_key")):
        answer = _post(base, "mock", ping, key=key)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == code
    # The SDK reads no JSON-RPC error in OpenAI's shape: it shows its own for the failed status.
    refused = failure(lambda: streamable(base, "mock", lambda session: session.list_tools(), key="sk-not-a-relay-key"))
    assert isinstance(refused, MCPError) and refused.error.code == -32603, repr(refused)


def test_a_key_the_server_does_not_allow_is_403(base: str) -> None:
    answer = _post(base, "private", {"jsonrpc": "2.0", "id": 1, "method": "ping"}, key=OUTSIDER)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "mcp_server_not_allowed"
    answer = _post(base, "fast", {"jsonrpc": "2.0", "id": 1, "method": "ping"}, key=OUTSIDER)  # its group: not default
    assert answer.status_code == 403
    answer = _post(base, "private", {"jsonrpc": "2.0", "id": 1, "method": "ping"}, key=KEY)
    assert answer.status_code == 403
    # "limited" is named in the server's keys: it may (the mock then wants a session: its own 400)
    answer = _post(base, "private", {"jsonrpc": "2.0", "id": 1, "method": "ping"}, key=LIMITED)
    assert answer.status_code == 400 and "Mcp-Session-Id" in answer.json()["error"]["message"]
    answer = _post(base, "nowhere", {"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "mcp_server_not_found"


def test_session_header_passes_both_ways_and_delete_ends_the_session(base: str) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}}
    opened = _post(base, "mockhttp", init)
    session = opened.headers["mcp-session-id"]  # the server's header, back to the client
    headers = {"authorization": f"Bearer {KEY}", "mcp-session-id": session}
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    answer = _post(base, "mockhttp", ping, session=session)
    assert answer.status_code == 200 and answer.json() == {"jsonrpc": "2.0", "id": 2, "result": {}}
    assert httpx.delete(f"{base}/v1/mcp/mockhttp", headers=headers, timeout=10).status_code == 200
    ended = _post(base, "mockhttp", ping, session=session)
    assert ended.status_code == 404 and ended.json()["error"]["message"] == "Session not found"  # the server's own
    declined = httpx.get(f"{base}/v1/mcp/mockhttp", headers=headers, timeout=10)
    assert declined.status_code == 405 and declined.headers["allow"] == "POST, DELETE"


def test_an_unreachable_server_is_a_502_json_rpc_error(base: str) -> None:
    answer = _post(base, "down", {"jsonrpc": "2.0", "id": "x1", "method": "tools/call", "params": {"name": "add"}})
    assert answer.status_code == 502
    assert answer.json()["id"] == "x1" and answer.json()["error"]["code"] == -32603
    refused = failure(lambda: streamable(base, "down", lambda session: session.list_tools()))
    assert isinstance(refused, MCPError) and "cannot connect" in str(refused)
    (row,) = rows(base, 1, channel="mcp:down", model="mcp:down/add")
    assert row["status"] == 502 and row["end_kind"] == "upstream_error"


def test_a_stream_silent_past_idle_ends_with_an_error_for_the_call(base: str) -> None:
    steps: list[float] = []

    async def body(session: ClientSession) -> Any:
        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            steps.append(value)

        with pytest.raises(MCPError, match=r"ended early \(the server sent nothing for 0.5s\)") as cut:
            await session.call_tool("stall", {"seconds": 3}, progress_callback=on_progress)
        return cut.value, await session.call_tool("add", {"a": 1, "b": 1})  # the session goes on

    cut, added = streamable(base, "fastidle", body)
    assert cut.error.code == -32000 and steps == [1]  # the progress came, then Relay's error event
    assert texts(added) == ["2"]
    (row,) = rows(base, 1, model="mcp:fastidle/stall")
    assert row["status"] == 200 and row["end_kind"] == "timeout" and row["error_kind"] == "timeout"


def test_paths_beside_a_servers_own_are_refused(base: str) -> None:
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    for path in ("fast/messages/", "legacy/a/%2e%2e/%2e%2e/admin", "legacy/sse", "legacy/%2e/messages/"):
        answer = httpx.post(f"{base}/v1/mcp/{path}", content=b"{}", headers=headers, timeout=10)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "unknown_route", path  # Relay's own
    assert httpx.get(f"{base}/v1/mcp/legacy/other", headers=headers, timeout=10).status_code == 404
    answer = httpx.post(f"{base}/v1/mcp/legacy", content=b"{}", headers=headers, timeout=10)
    assert answer.status_code == 405 and "/v1/mcp/legacy/sse" in answer.json()["error"]["message"]


def test_what_is_not_json_rpc_gets_a_json_rpc_error(base: str) -> None:
    answer = _post(base, "mock", None, raw=b"{not json")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == -32700
    answer = _post(base, "mock", {"id": 1, "method": "ping"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == -32600
    answer = _post(base, "mock", [])
    assert answer.status_code == 400 and answer.json()["error"]["code"] == -32600


def within_one_minute() -> None:
    """Wait, if need be, so that the next few seconds fall in one rate-limit minute (they are counted per minute of
    the clock: calls on both sides of a minute's turn would be in two)."""
    left = 60 - time.time() % 60
    if left < 8:
        time.sleep(left + 0.1)


def test_tool_calls_are_counted_against_the_keys_rpm(base: str) -> None:
    within_one_minute()

    async def body(session: ClientSession) -> Any:
        for _ in range(3):  # listing is not a tool call: not counted
            await session.list_tools()
        first = await session.call_tool("echo", {"text": "one"})
        second = await session.call_tool("echo", {"text": "two"})
        with pytest.raises(MCPError, match="rate limit reached") as refused:
            await session.call_tool("echo", {"text": "three"})
        return first, second, refused.value

    first, second, refused = streamable(base, "mock", body, key=LIMITED)
    assert texts(first) == ["one"] and texts(second) == ["two"]
    assert refused.error.data["status"] == 429
    logged = rows(base, 3, key="limited", model="mcp:mock/echo")
    assert sorted(row["status"] for row in logged[:3]) == [200, 200, 429]


def test_legacy_tool_calls_are_counted_too(base: str) -> None:
    within_one_minute()

    async def body(session: ClientSession) -> Any:
        added = await session.call_tool("add", {"a": 1, "b": 1})
        with pytest.raises(MCPError, match="rate limit reached"):  # on the stream: the SDK's POST saw 202
            await session.call_tool("add", {"a": 2, "b": 2})
        return added

    assert texts(legacy(base, "legacy", body, key=LIMITED_SSE)) == ["2"]


def test_each_tool_call_is_one_row_of_the_request_log(base: str) -> None:
    started = time.time()

    async def body(session: ClientSession) -> Any:
        await session.list_tools()
        await session.call_tool("add", {"a": 1, "b": 2})
        await session.call_tool("fail", {"reason": "logged"})

    streamable(base, "fast", body)
    logged = rows(base, 2, channel="mcp:fast", since=started)
    assert len(logged) == 2  # initialize, the notification, the listing and the session's end: no rows
    failed, added = logged  # newest first
    assert added["requested_model"] == "mcp:fast/add" and added["upstream_model"] == "add"
    assert added["status"] == 200 and added["error_kind"] is None and added["key_name"] == "dev"
    assert added["latency_ms"] > 0 and added["dialect"] == "mcp" and added["route"] == "/v1/mcp/{name}"
    assert failed["requested_model"] == "mcp:fast/fail" and failed["error_kind"] == "tool_error"
    assert "logged" in failed["error_detail"]


def test_a_tool_call_is_charged_its_request_price(base: str) -> None:
    async def body(session: ClientSession) -> Any:
        await session.list_tools()  # not a tool call: free
        return await session.call_tool("now_fixed", {})

    assert texts(streamable(base, "mock", body, key=PAYING)) == ["2026-01-01T00:00:00Z"]
    (row,) = rows(base, 1, key="paying")
    assert row["requested_model"] == "mcp:mock/now_fixed" and row["request_units"] == 1
    assert row["cost_micros"] == 250_000  # [[prices]] model = "mcp:mock/*", request = 0.25
    shown = httpx.get(f"{base}/admin/v1/keys/paying", headers={"authorization": f"Bearer {ADMIN}"}, timeout=10)
    deadline = time.monotonic() + 10
    while shown.json()["balance_credits"] != 9.75:
        assert time.monotonic() < deadline, shown.json()
        time.sleep(0.1)
        shown = httpx.get(f"{base}/admin/v1/keys/paying", headers={"authorization": f"Bearer {ADMIN}"}, timeout=10)


def test_refusals_are_logged(base: str) -> None:
    started = time.time()
    _post(base, "private", {"jsonrpc": "2.0", "id": 1, "method": "ping"}, key=OUTSIDER)
    (row,) = rows(base, 1, key="outsider", since=started)
    assert row["status"] == 403 and row["channel"] == "mcp:private"


# ---- the mock's MCP server on its own ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mock_mcp() -> Iterator[str]:
    with process(*MOCK_ARGS) as (_, address):
        yield f"http://{address}/mcp"


def _rpc(url: str, message: Any, session: str | None = None, accept: str = "application/json, text/event-stream"):
    headers = {"accept": accept, "content-type": "application/json"}
    if session:
        headers["mcp-session-id"] = session
    return httpx.post(url, json=message, headers=headers, timeout=10)


def test_mock_mcp_sessions_are_kept_and_ended(mock_mcp: str) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}}
    opened = _rpc(mock_mcp, init)
    assert opened.status_code == 200 and opened.json()["result"]["protocolVersion"] == "2025-06-18"
    session = opened.headers["mcp-session-id"]
    assert _rpc(mock_mcp, init).headers["mcp-session-id"] != session  # the same body, another session
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    assert _rpc(mock_mcp, ping).status_code == 400  # no session named
    assert _rpc(mock_mcp, ping, "mock-unknown").status_code == 404
    assert _rpc(mock_mcp, ping, session).json() == {"jsonrpc": "2.0", "id": 2, "result": {}}
    notified = _rpc(mock_mcp, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
    assert notified.status_code == 202 and notified.content == b""
    assert _rpc(mock_mcp, ping, session, accept="application/json").status_code == 406
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}
    streamed = _rpc(mock_mcp, call, session)
    assert streamed.headers["content-type"] == "text/event-stream"
    assert streamed.text == (
        'event: message\ndata: {"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"3"}],'
        '"structuredContent":{"sum":3},"isError":false}}\n\n'
    )
    unknown = _rpc(mock_mcp, {"jsonrpc": "2.0", "id": 4, "method": "resources/list"}, session)
    assert unknown.json()["error"]["code"] == -32601
    assert httpx.get(mock_mcp, timeout=10).status_code == 405
    assert httpx.delete(mock_mcp, headers={"mcp-session-id": session}, timeout=10).status_code == 200
    assert _rpc(mock_mcp, ping, session).status_code == 404  # ended


def test_check_config_reports_bad_mcp_tables(tmp_path: Path) -> None:
    path = tmp_path / "relay.toml"
    path.write_text(
        """
[[mcp]]
name = "a b"
url = "ftp://example.com/mcp"
headers = { Host = "x" }
groups = []

[[mcp]]
name = "ok"
url = "https://example.com/mcp"
headers = { Authorization = "Bearer ${H7_UNSET_TOKEN}" }
transport = "websocket"
"""
    )
    checked = relay_cli("check-config", str(path))
    assert checked.returncode == 2
    out = checked.stdout + checked.stderr
    for problem in (
        "mcp[0].name: use letters, digits",
        "mcp[0].url: must be an http:// or https:// URL",
        "mcp[0].headers.Host: Relay sets this header itself",
        "mcp[0]: no key may use this server",
        "mcp[1].headers.Authorization: environment variable H7_UNSET_TOKEN is not set",
        "mcp[1].transport: must be one of",
    ):
        assert problem in out, out
