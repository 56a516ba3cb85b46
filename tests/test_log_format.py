"""``[server] log_format = "json"`` and ``log_level`` (relay/log_setup.py): every line ``relay serve`` writes
parses as JSON, the access log's fields by name."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import httpx
import pytest

from relay.log_setup import JsonFormatter
from tests.conftest import KEY, process
from tests.helpers import MOCK_ARGS


def relay_toml(upstream: str, log_format: str, level: str) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
log_format = "{log_format}"
log_level = "{level}"

[[channels]]
name = "chat"
type = "openai"
base_url = "{upstream}/v1"
api_key = "sk-upstream"
models = ["chat-1"]

[[keys]]
name = "logs"
key = "{KEY}"
"""


def served_log(tmp_path: Path, log_format: str, level: str) -> list[str]:
    """The lines of stderr of ``relay serve`` that answered one chat request, then stopped."""
    with process(*MOCK_ARGS) as (_, upstream):
        config = tmp_path / "relay.toml"
        config.write_text(relay_toml(f"http://{upstream}", log_format, level))
        stderr = tmp_path / "stderr.log"
        with stderr.open("w") as sink, process("serve", "--config", str(config), stderr=sink) as (proc, address):
            body = {"model": "chat-1", "messages": [{"role": "user", "content": "hi"}]}
            answer = httpx.post(
                f"http://{address}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}
            )
            assert answer.status_code == 200
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return [line for line in stderr.read_text().splitlines() if line.strip()]


def test_json_lines_parse_with_the_access_fields(tmp_path: Path) -> None:
    lines = served_log(tmp_path, "json", "info")
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert records
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
    access = [record for record in records if record["logger"] == "relay.access"]
    assert len(access) == 1
    (line,) = access
    assert line["level"] == "info"
    assert line["method"] == "POST" and line["path"] == "/v1/chat/completions" and line["status"] == 200
    assert line["key"] == "logs" and line["end"] == "completed"
    assert line["input_tokens"] > 0 and line["output_tokens"] > 0
    assert isinstance(line["duration_ms"], float) and len(line["request_id"]) == 24


@pytest.mark.parametrize(("level", "logged"), [("info", True), ("warning", False)])
def test_log_level_decides_the_access_log(tmp_path: Path, level: str, logged: bool) -> None:
    lines = served_log(tmp_path, "text", level)
    assert any(" INFO relay.access: " in line for line in lines) is logged, lines


@pytest.mark.parametrize("args", [("a", "b"), ()])
def test_other_records_keep_their_message(args: tuple[str, ...]) -> None:
    record = logging.LogRecord("relay", logging.ERROR, __file__, 1, "failed" + " %s" * len(args), args, None)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == " ".join(("failed", *args)) and line["level"] == "error" and line["logger"] == "relay"
