"""The Dockerfile, docker-compose.yml and deploy/relay.toml, checked without Docker: the image's user and health
check, the compose services and their wiring, and the image's configuration served for real (its health check
command run against it)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from relay.config import load
from tests.conftest import process

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
IMAGE_CONFIG = ROOT / "deploy" / "relay.toml"


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines if line and line[0] != "#"]


def last(name: str) -> str:
    found = [args for instr, args in instructions() if instr == name]
    assert found, f"Dockerfile has no {name}"
    return found[-1]


def test_dockerfile_is_slim_non_root_with_a_health_check_and_the_serve_command():
    assert instructions()[0] == ("FROM", "python:3.11-slim")
    user = last("USER").split(":")[0]
    assert user not in ("root", "0")
    runs = " ".join(args for instr, args in instructions() if instr == "RUN")
    made = re.search(r"useradd ([^&]*?)\s(\w+)\s*(?:&&|$)", runs)
    assert made is not None and made.group(2) == user, runs
    uid = re.search(r"--uid (\d+)", made.group(1))
    assert uid is not None and int(uid.group(1)) > 0
    assert json.loads(last("CMD")) == ["relay", "serve", "--config", "/etc/relay/relay.toml"]
    health = last("HEALTHCHECK")
    assert "/healthz" in health and "CMD" in health
    copies = [args.split() for instr, args in instructions() if instr == "COPY"]
    for sources in (c[:-1] for c in copies):
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
    assert ["deploy/relay.toml", "/etc/relay/relay.toml"] in copies


def compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML parses docker-compose.yml")
    return yaml.safe_load(COMPOSE.read_text())


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:?message}`` and ``${VAR:-default}``, for the variables in ``env``."""
    return re.sub(r"\$\{(\w+)(?::[?-][^}]*)?\}", lambda m: env[m.group(1)], value)


def test_compose_runs_relay_on_postgres_and_redis_once_they_are_healthy():
    services = compose()["services"]
    assert set(services) == {"relay", "postgres", "redis"}
    relay = services["relay"]
    assert relay["build"] == "."
    assert relay["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert services["postgres"]["image"].startswith("postgres:") and "healthcheck" in services["postgres"]
    assert services["redis"]["image"].startswith("redis:") and "healthcheck" in services["redis"]
    env = {"RELAY_KEY": "sk-compose-key", "POSTGRES_PASSWORD": "pw-compose"}
    relay_env = {name: interpolate(value, env) for name, value in relay["environment"].items()}
    assert relay_env["RELAY_STORE_URL"] == "postgresql://relay:pw-compose@postgres:5432/relay"
    pg = services["postgres"]["environment"]
    assert (pg["POSTGRES_USER"], pg["POSTGRES_DB"]) == ("relay", "relay")
    # The image's relay.toml, with the compose file's environment, is valid and uses PostgreSQL and Redis.
    config = load(IMAGE_CONFIG, relay_env)
    assert config.store.url == relay_env["RELAY_STORE_URL"]
    assert config.ratelimit.url == "redis://redis:6379/0"
    assert config.server.listen == "0.0.0.0:8080"
    assert config.keys[0].key == "sk-compose-key"


def test_the_image_configuration_refuses_to_start_without_a_key():
    result = subprocess.run(
        [sys.executable, "-m", "relay", "check-config", str(IMAGE_CONFIG)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=20,
    )
    assert result.returncode == 2
    assert "keys[0].key: environment variable RELAY_KEY is not set" in result.stderr


def test_the_image_configuration_serves_and_passes_the_health_check_command(tmp_path):
    env = {"RELAY_KEY": "sk-image-key-123", "RELAY_STORE_URL": f"sqlite:///{tmp_path / 'relay.db'}"}
    with process("serve", "--config", str(IMAGE_CONFIG), "--listen", "127.0.0.1:0", env=env) as (_, address):
        command = json.loads(last("HEALTHCHECK").split(" CMD ", 1)[1])  # exec form: a JSON array
        assert command[:2] == ["python", "-c"]
        script = command[2].replace("127.0.0.1:8080", address)
        assert subprocess.run([sys.executable, "-c", script], timeout=10).returncode == 0
        down = command[2].replace("127.0.0.1:8080", "127.0.0.1:9")  # nothing listens there: the check fails
        assert subprocess.run([sys.executable, "-c", down], capture_output=True, timeout=10).returncode != 0
