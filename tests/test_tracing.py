"""OpenTelemetry traces (relay/tracing, docs/tracing.md): ``relay serve`` sending OTLP/HTTP to a collector stub on
loopback that decodes each export with opentelemetry-proto, in front of an upstream stub that records the headers
it gets (and ``relay mock-upstream`` for a stream). A failover's spans, their links and attributes; a client's
``traceparent`` continued and the upstream's carrying the attempt's; the spans queued at exit exported; two
workers; the ``[telemetry]`` checks; nothing of OpenTelemetry loaded when traces are off."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

try:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )
except ImportError:  # pragma: no cover - the test extra pulls the otel extra
    pytest.skip("the otel extra is not installed: pip install -e '.[otel]'", allow_module_level=True)

from relay import config_checks
from relay.config import ConfigError, loads
from tests.conftest import process
from tests.helpers import MOCK_ARGS

KEY = "sk-relay-tracing-secret"
UPSTREAM_KEYS = ("sk-upstream-broken", "sk-upstream-good")
CHAT = "/v1/chat/completions"
SERVER, CLIENT = 2, 3  # SpanKind in OTLP
STATUS_UNSET, STATUS_ERROR = 0, 2
#: Spans exported every 50 ms in the tests (OpenTelemetry's own setting; 5 s by default).
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "50"}


class _Stub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.spans: list[dict[str, Any]] = []
        #: (path, headers) of every upstream request.
        self.upstream: list[tuple[str, dict[str, str]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Stub

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            with self.server.lock:
                self.server.spans += _decoded(request)
            self._answer(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")
            return
        with self.server.lock:
            self.server.upstream.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        if self.path.startswith("/broken/"):
            error = {"error": {"message": "the upstream broke (test)", "type": "server_error"}}
            self._answer(500, json.dumps(error).encode(), "application/json")
            return
        model = json.loads(body)["model"]
        answer = {
            "id": "chatcmpl-tracing",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "traced"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        }
        self._answer(200, json.dumps(answer).encode(), "application/json")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _value(any_value: Any) -> Any:
    field = any_value.WhichOneof("value")
    return getattr(any_value, field) if field is not None else None


def _decoded(request: Any) -> list[dict[str, Any]]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    {
                        "name": span.name,
                        "kind": span.kind,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent": span.parent_span_id.hex(),
                        "attributes": {kv.key: _value(kv.value) for kv in span.attributes},
                        "status": span.status.code,
                        "resource": resource,
                    }
                )
    return spans


@pytest.fixture(scope="module")
def stub() -> Iterator[_Stub]:
    server = _Stub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def mock() -> Iterator[str]:
    with process(*MOCK_ARGS) as (_, address):
        yield f"http://{address}"


def relay_toml(stub: _Stub, mock: str, *, workers: int = 1, telemetry: bool = True) -> str:
    section = f'[telemetry]\notlp_endpoint = "{stub.url}"\nservice_name = "relay-tests"\n' if telemetry else ""
    return f"""
[server]
listen = "127.0.0.1:0"
workers = {workers}
access_log = false

[routing]
key_rest = 0.001

{section}
[[channels]]
name = "broken"
type = "openai"
base_url = "{stub.url}/broken/v1"
api_key = "{UPSTREAM_KEYS[0]}"
models = ["flaky-*"]
priority = 10

[[channels]]
name = "good"
type = "openai"
base_url = "{stub.url}/good/v1"
api_key = "{UPSTREAM_KEYS[1]}"
models = ["flaky-*"]

[[channels]]
name = "mocked"
type = "openai"
base_url = "{mock}/v1"
api_key = "sk-upstream-mock"
models = ["mock-*"]

[[keys]]
name = "tracing"
key = "{KEY}"
"""


def serve(folder: Path, toml: str, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    path = folder / "relay.toml"
    path.write_text(toml)
    with process("serve", "--config", str(path), env=env) as (proc, address):
        yield proc, f"http://{address}"


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory, stub: _Stub, mock: str) -> Iterator[str]:
    for _, url in serve(tmp_path_factory.mktemp("tracing"), relay_toml(stub, mock), FAST_EXPORT):
        yield url


def chat(base: str, model: str, headers: dict[str, str] | None = None, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}], **extra}
    auth = {"authorization": f"Bearer {KEY}", **(headers or {})}
    return httpx.post(base + CHAT, json=body, headers=auth, timeout=30)


def spans_of(stub: _Stub, trace_id: str | None = None, *, count: int, kind: int | None = None) -> list[dict[str, Any]]:
    """The spans of ``trace_id`` (every trace: None) and ``kind``, once ``count`` of them arrived (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        with stub.lock:
            found = [
                s
                for s in stub.spans
                if (trace_id is None or s["trace_id"] == trace_id) and (kind is None or s["kind"] == kind)
            ]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def request_span(stub: _Stub, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        with stub.lock:
            found = [s for s in stub.spans if s["attributes"].get("relay.request_id") == request_id]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, f"the span of request {request_id} did not arrive"
            return found[0]
        time.sleep(0.05)


def test_a_failover_is_one_server_span_with_a_client_span_per_attempt(relay: str, stub: _Stub) -> None:
    trace_id, parent_id = os.urandom(16).hex(), os.urandom(8).hex()
    answer = chat(relay, "flaky-1", {"traceparent": f"00-{trace_id}-{parent_id}-01"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "traced"

    server = request_span(stub, answer.headers["x-request-id"])
    assert server["trace_id"] == trace_id and server["parent"] == parent_id  # the client's trace, continued
    assert server["kind"] == SERVER and server["name"] == "POST /v1/chat/completions"
    assert server["status"] == STATUS_UNSET
    assert server["resource"]["service.name"] == "relay-tests"
    attributes = server["attributes"]
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.route"] == CHAT
    assert attributes["http.response.status_code"] == 200
    assert attributes["gen_ai.request.model"] == "flaky-1"
    assert attributes["relay.channel"] == "good"
    assert attributes["relay.key"] == "tracing"
    assert attributes["relay.attempts"] == 2
    assert attributes["relay.end"] == "completed"
    assert attributes["relay.stream"] is False
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (7, 3)

    attempts = sorted(spans_of(stub, trace_id, count=2, kind=CLIENT), key=lambda s: s["attributes"]["relay.attempt"])
    assert [s["name"] for s in attempts] == ["upstream broken", "upstream good"]
    assert all(s["parent"] == server["span_id"] for s in attempts)
    broken, good = (s["attributes"] for s in attempts)
    assert (broken["relay.channel"], broken["relay.attempt"], broken["http.response.status_code"]) == ("broken", 1, 500)
    assert broken["error.type"] == "upstream_error" and attempts[0]["status"] == STATUS_ERROR
    assert (good["relay.channel"], good["relay.attempt"], good["http.response.status_code"]) == ("good", 2, 200)
    assert good["gen_ai.request.model"] == "flaky-1" and "error.type" not in good
    assert attempts[1]["status"] == STATUS_UNSET

    # Each upstream request carried its own attempt's context, in the client's trace.
    with stub.lock:
        sent = {
            path.split("/")[1]: headers for path, headers in stub.upstream if trace_id in headers.get("traceparent", "")
        }
    assert sent["broken"]["traceparent"] == f"00-{trace_id}-{attempts[0]['span_id']}-01"
    assert sent["good"]["traceparent"] == f"00-{trace_id}-{attempts[1]['span_id']}-01"

    # Neither the client's key nor an upstream key is in any span.
    shown = json.dumps([server, *attempts])
    assert KEY not in shown and not any(key in shown for key in UPSTREAM_KEYS)


def test_a_caller_that_does_not_sample_is_followed_but_its_context_still_goes_upstream(relay: str, stub: _Stub) -> None:
    trace_id, parent_id = os.urandom(16).hex(), os.urandom(8).hex()
    answer = chat(relay, "flaky-3", {"traceparent": f"00-{trace_id}-{parent_id}-00"})
    assert answer.status_code == 200
    with stub.lock:
        sent = [h["traceparent"] for _, h in stub.upstream if trace_id in h.get("traceparent", "")]
    assert len(sent) == 2 and all(t.endswith("-00") and parent_id not in t for t in sent)
    later = chat(relay, "flaky-3")  # exported after the first, were it recorded
    request_span(stub, later.headers["x-request-id"])
    with stub.lock:
        assert not [s for s in stub.spans if s["trace_id"] == trace_id]


def test_a_stream_without_traceparent_begins_a_trace(relay: str, stub: _Stub) -> None:
    with httpx.stream(
        "POST",
        relay + CHAT,
        json={"model": "mock-1", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {KEY}"},
        timeout=30,
    ) as answer:
        assert answer.status_code == 200
        request_id = answer.headers["x-request-id"]
        assert "[DONE]" in answer.read().decode()
    server = request_span(stub, request_id)
    assert server["parent"] == ""  # a root: no client trace to continue
    attributes = server["attributes"]
    assert attributes["relay.stream"] is True and attributes["relay.end"] == "completed"
    assert attributes["relay.channel"] == "mocked" and attributes["gen_ai.usage.output_tokens"] > 0
    (attempt,) = spans_of(stub, server["trace_id"], count=1, kind=CLIENT)
    assert attempt["parent"] == server["span_id"]
    assert attempt["attributes"]["http.response.status_code"] == 200


def test_refusals_and_unknown_paths_are_spans_too(relay: str, stub: _Stub) -> None:
    refused = httpx.post(relay + CHAT, json={"model": "flaky-1", "messages": []}, headers={"authorization": "Bearer x"})
    assert refused.status_code == 401
    server = request_span(stub, refused.headers["x-request-id"])
    assert server["attributes"]["http.response.status_code"] == 401
    assert server["attributes"]["error.type"] == "authentication"
    assert "relay.key" not in server["attributes"] and server["status"] == STATUS_UNSET  # a client's error
    with stub.lock:  # an attempt's span ends before its request's: it would have come with it, or before
        assert not [s for s in stub.spans if s["trace_id"] == server["trace_id"] and s["kind"] == CLIENT]

    unknown = httpx.get(relay + "/no/such/path/4f1c")
    assert unknown.status_code == 404
    span = request_span(stub, unknown.headers["x-request-id"])
    assert span["name"] == "GET" and "http.route" not in span["attributes"]  # no path of a scanner's as a name


def test_spans_still_queued_are_exported_at_exit(tmp_path: Path, stub: _Stub, mock: str) -> None:
    # Spans exported every 10 minutes: only the relay's exit can export them in time.
    toml = _write(tmp_path, relay_toml(stub, mock))
    with process("serve", "--config", str(toml), env={"OTEL_BSP_SCHEDULE_DELAY": "600000"}) as (proc, address):
        answer = chat(f"http://{address}", "mock-1")
        assert answer.status_code == 200
        request_id = answer.headers["x-request-id"]
        with stub.lock:
            assert not any(s["attributes"].get("relay.request_id") == request_id for s in stub.spans)
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        with stub.lock:
            assert [s for s in stub.spans if s["attributes"].get("relay.request_id") == request_id]


def test_each_worker_exports_its_own_spans(tmp_path: Path, stub: _Stub, mock: str) -> None:
    toml = relay_toml(stub, mock, workers=2)
    for proc, base in serve(tmp_path, toml, FAST_EXPORT):
        ids = []
        for _ in range(12):
            with httpx.Client() as client:  # a connection of its own: any worker may take it
                answer = client.post(
                    base + CHAT,
                    json={"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]},
                    headers={"authorization": f"Bearer {KEY}"},
                )
            assert answer.status_code == 200
            ids.append(answer.headers["x-request-id"])
        spans = [request_span(stub, request_id) for request_id in ids]
        pids = {span["resource"]["process.pid"] for span in spans}
        assert proc.pid not in pids  # the workers' spans, not the supervisor's
        assert all(spans_of(stub, span["trace_id"], count=1, kind=CLIENT) for span in spans)


def test_no_traceparent_goes_upstream_when_traces_are_off(tmp_path: Path, stub: _Stub, mock: str) -> None:
    for _, base in serve(tmp_path, relay_toml(stub, mock, telemetry=False)):
        with stub.lock:
            before = len(stub.upstream)
        answer = chat(base, "flaky-2")
        assert answer.status_code == 200
        with stub.lock:
            sent = stub.upstream[before:]
    assert [path.split("/")[1] for path, _ in sent] == ["broken", "good"]
    assert not any("traceparent" in headers for _, headers in sent)


def test_open_telemetry_is_not_imported_when_traces_are_off() -> None:
    code = (
        "import sys; from relay.config import loads; from relay.app import Relay; import relay.cli; "
        "Relay(loads('')); print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_telemetry_problems_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def problems(section: str) -> list[str]:
        with pytest.raises(ConfigError) as caught:
            loads("[telemetry]\n" + section)
        return caught.value.problems

    assert problems('otlp_endpoint = "collector:4318"\nsample_ratio = 1.5') == [
        "telemetry.sample_ratio: must be from 0 to 1",
        "telemetry.otlp_endpoint: must be an http:// or https:// URL with a host, got 'collector:4318'",
    ]
    shown = problems('otlp_endpoint = "https://user:hunter2@collector"')
    assert shown == ["telemetry.otlp_endpoint: must not hold credentials: put them in telemetry.headers"]
    assert problems("headers = {authorization = 1}") == [
        "telemetry.headers: expected string values, got an integer (1) for 'authorization'"
    ]
    assert problems('headers = {"bad header" = "x", authorization = "a\\nb"}') == [
        "telemetry.headers: 'bad header' is not a header name",
        "telemetry.headers.authorization: the value holds a line break or control character",
    ]
    assert loads('[telemetry]\notlp_endpoint = "http://collector:4318"\nsample_ratio = 0').telemetry.sample_ratio == 0

    # Traces asked for without the extra installed: what to install, named.
    monkeypatch.setattr(config_checks, "OTEL_MODULES", ("opentelemetry_not_installed.sdk",))
    (problem,) = problems('otlp_endpoint = "http://collector:4318"')
    assert problem.startswith("telemetry.otlp_endpoint: traces need OpenTelemetry")
    assert problem.endswith("pip install 'relay[otel]'")


def _write(folder: Path, toml: str) -> Path:
    path = folder / "relay.toml"
    path.write_text(toml)
    return path
