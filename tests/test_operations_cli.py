"""Operators' first commands: ``relay --version``, ``relay check-config`` with every problem at once, and the
start-up summary ``relay serve`` logs."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import time
from pathlib import Path

from relay.config import loads
from relay.startup_summary import summary
from tests.helpers import relay_cli, relay_with_stderr

ROOT = Path(__file__).resolve().parent.parent
VERSION = importlib.metadata.version("relay")


def test_version_flag_and_command_print_the_package_version():
    for args in (("--version",), ("version",)):
        result = relay_cli(*args)
        assert result.returncode == 0, result.stderr
        line = result.stdout.strip()
        assert re.fullmatch(rf"relay {re.escape(VERSION)}( \(git [0-9a-f]{{7,40}}(\+dirty)?\))?", line), line
        if (ROOT / ".git").exists() and shutil.which("git"):
            assert "(git " in line


BROKEN = """
[server]
workers = 0
[[channels]]
name = "up"
type = "openai"
api_key = "${H13_MISSING_UPSTREAM_KEY}"
base_url = "ftp://nowhere"
models = ["gpt-*"]
list_models = ["gpt-*", "claude-1"]
[[channels]]
name = "up"
type = "mock"
models = ["mock-*"]
[[keys]]
name = "dev"
key = "${H13_MISSING_DEV_KEY}"
"""


def test_check_config_reports_missing_variables_with_every_other_problem(tmp_path):
    path = tmp_path / "relay.toml"
    path.write_text(BROKEN)
    result = relay_cli("check-config", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"{path}: channels[0].api_key: environment variable H13_MISSING_UPSTREAM_KEY is not set",
        f"{path}: keys[0].key: environment variable H13_MISSING_DEV_KEY is not set",
        f"{path}: server.workers: must be at least 1",
        f"{path}: channels[1].name: duplicate 'up', already used by channels[0]",
        f"{path}: channels[0].base_url: must be an http:// or https:// URL with a host, got 'ftp://nowhere'",
        f"{path}: channels[0].list_models[0]: must be an exact model name, not a pattern, got 'gpt-*'",
        f"{path}: channels[0].list_models[1]: 'claude-1' is not served by this channel's models or model_map",
    ]
    # The empty value a missing variable stands for meanwhile is not reported as a short key.
    assert "at least 8 characters" not in result.stderr


def test_check_config_reports_missing_variables_beside_type_errors(tmp_path):
    path = tmp_path / "relay.toml"
    path.write_text(BROKEN.replace("workers = 0", 'workers = "two"'))
    lines = relay_cli("check-config", str(path)).stderr.strip().splitlines()
    assert f"{path}: channels[0].api_key: environment variable H13_MISSING_UPSTREAM_KEY is not set" in lines
    assert f"{path}: server.workers: expected an integer, got a string ('two')" in lines
    assert f"{path}: channels[1].name: duplicate 'up', already used by channels[0]" in lines


def test_summary_names_version_config_store_channels_workers_and_address_without_secrets():
    config = loads(
        """
[store]
url = "postgresql://relay:s3cret-pw@db:5432/relay"
[ratelimit]
url = "redis://:r3dis-pw@cache:6379/0"
[[channels]]
name = "up"
type = "openai"
api_key = "sk-upstream-secret-1234"
models = ["gpt-4o*"]
list_models = ["gpt-4o-mini"]
model_map = { fast = "gpt-4o-mini" }
[[mcp]]
name = "docs"
url = "https://mcp.example/mcp"
headers = { authorization = "Bearer mcp-secret-5678" }
groups = ["team"]
keys = ["ci"]
"""
    )
    lines = summary(config, "/etc/relay/relay.toml", workers=4, listen="0.0.0.0:8080")
    text = "\n".join(lines)
    assert lines[0].startswith(f"relay {VERSION}")
    assert "config: /etc/relay/relay.toml" in lines
    assert "store: postgresql://relay:***@db:5432/relay" in lines
    assert "rate limits: redis://:***@cache:6379/0" in lines
    assert "workers: 4, listen: 0.0.0.0:8080" in lines
    assert "channel up (openai, priority 0, group default): gpt-4o*; model_map: fast; list_models: gpt-4o-mini" in lines
    assert "traces: off" in lines
    assert "mcp docs (streamable_http) at /v1/mcp/docs: group team, key ci" in lines
    for secret in ("s3cret-pw", "r3dis-pw", "sk-upstream-secret-1234", "mcp-secret-5678"):
        assert secret not in text


def test_serve_logs_the_summary_at_start(tmp_path):
    config = tmp_path / "relay.toml"
    config.write_text((ROOT / "relay.toml").read_text())
    log = tmp_path / "stderr.log"
    with relay_with_stderr(config, log) as url:
        address = url.removeprefix("http://")
        deadline = time.monotonic() + 10
        while f"listen: {address}" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    text = log.read_text()
    assert f"relay.startup: relay {VERSION}" in text
    assert f"relay.startup: config: {config}" in text
    assert f"relay.startup: store: sqlite:///{tmp_path / 'relay.db'}" in text
    assert f"relay.startup: workers: 1, listen: {address}" in text
    assert "relay.startup: channel mock (mock, priority 0, group default): mock-*" in text


def test_with_workers_the_summary_is_logged_once_by_the_supervisor(tmp_path):
    config = tmp_path / "relay.toml"
    config.write_text((ROOT / "relay.toml").read_text().replace("workers = 1", "workers = 2"))
    log = tmp_path / "stderr.log"
    with relay_with_stderr(config, log) as url:
        address = url.removeprefix("http://")
        deadline = time.monotonic() + 10
        while f"listen: {address}" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # workers that would log a summary of their own have started by now
    text = log.read_text()
    assert text.count("relay.startup: config: ") == 1
    assert f"relay.startup: workers: 2, listen: {address}" in text
