"""Admin keys kept in the store: ``relay admin-keys`` (its own process) against ``relay serve --workers 2`` in front
of ``relay mock-upstream``, with httpx: a key made by the CLI opens the admin API in every worker within seconds,
with its role; disabled or deleted, it is refused within seconds; only its digest is in the database; relay.toml's
admin keys keep working beside it and their names cannot be taken."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest

from relay import admin_keys_cli
from tests.conftest import process
from tests.helpers import MOCK_ARGS

ROOT_KEY = "sk-admin-root-0123456789abcdef"
#: Fresh connections in a row that must all agree: with two workers sharing the port (SO_REUSEPORT), the chance
#: that all of them reach the same worker is 2**-11.
IN_A_ROW = 12


@attrs.frozen
class Served:
    base: str
    config: Path
    folder: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("admin_keys_store")
    with process(*MOCK_ARGS) as (_, upstream):
        config = folder / "relay.toml"
        config.write_text(
            f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "sqlite:///{folder}/relay.db"
key_refresh = 0.2

[[channels]]
name = "chat"
type = "openai"
base_url = "http://{upstream}/v1"
api_key = "sk-upstream"
models = ["chat-*"]

[[admin_keys]]
name = "root"
key = "{ROOT_KEY}"
""",
            encoding="utf-8",
        )
        with process("serve", "--config", str(config), "--workers", "2") as (_, address):
            yield Served(f"http://{address}", config, folder)


def admin_keys(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m relay admin-keys --config CONFIG ARGS…``."""
    argv = [sys.executable, "-m", "relay", "admin-keys", "--config", str(config), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def status(base: str, secret: str, method: str = "GET", path: str = "/keys") -> int:
    """The status of one admin call, on a connection of its own (so either worker may answer)."""
    headers = {"authorization": f"Bearer {secret}"}
    return httpx.request(method, f"{base}/admin/v1{path}", headers=headers, json={}, timeout=10).status_code


def settles_on(base: str, secret: str, wanted: int, method: str = "GET", path: str = "/keys") -> None:
    """Wait (at most 10 s) until ``IN_A_ROW`` calls in a row answer ``wanted``."""
    deadline = time.monotonic() + 10
    streak = 0
    while streak < IN_A_ROW:
        assert time.monotonic() < deadline, f"{method} {path} did not settle on {wanted}"
        streak = streak + 1 if status(base, secret, method, path) == wanted else 0
        if streak == 0:
            time.sleep(0.05)


def created(config: Path, name: str, *options: str) -> str:
    made = admin_keys(config, "create", name, "--json", *options)
    assert made.returncode == 0, made.stderr
    assert "will not be shown again" in made.stderr
    printed = json.loads(made.stdout)
    assert printed["name"] == name and printed["secret"].startswith("sk-admin-")
    return printed["secret"]


def test_a_key_made_by_the_cli_opens_the_admin_api_until_disabled_or_deleted(served: Served) -> None:
    assert status(served.base, "sk-admin-not-made-yet-000000000000") == 401
    secret = created(served.config, "ops")
    settles_on(served.base, secret, 200)
    settles_on(served.base, secret, 400, "POST", "/keys")  # an admin may write: past the role check, no name: 400
    disabled = admin_keys(served.config, "disable", "ops")
    assert (disabled.returncode, disabled.stdout) == (0, "Admin key 'ops' disabled.\n")
    settles_on(served.base, secret, 401)
    error = httpx.get(served.base + "/admin/v1/keys", headers={"authorization": f"Bearer {secret}"}).json()["error"]
    assert error["code"] == "admin_key_disabled" and "'ops'" in error["message"]
    assert admin_keys(served.config, "enable", "ops").returncode == 0
    settles_on(served.base, secret, 200)
    assert admin_keys(served.config, "delete", "ops").returncode == 0
    settles_on(served.base, secret, 401)
    assert status(served.base, ROOT_KEY) == 200  # relay.toml's admin key is untouched throughout


def test_a_viewer_made_by_the_cli_only_reads(served: Served) -> None:
    secret = created(served.config, "watcher", "--role", "viewer")
    settles_on(served.base, secret, 200)
    settles_on(served.base, secret, 403, "POST", "/keys")
    reply = httpx.post(
        served.base + "/admin/v1/keys", headers={"authorization": f"Bearer {secret}"}, json={"name": "x"}, timeout=10
    )
    assert reply.status_code == 403 and "'watcher'" in reply.json()["error"]["message"]


def test_only_the_digest_is_in_the_database(served: Served) -> None:
    secret = created(served.config, "stored")
    on_disk = b"".join(path.read_bytes() for path in served.folder.glob("relay.db*"))
    assert secret.encode() not in on_disk
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in on_disk


def test_list_shows_both_sources_and_relay_toml_names_are_refused(served: Served) -> None:
    assert created(served.config, "listed")
    listed = json.loads(admin_keys(served.config, "list", "--json").stdout)
    by_name = {k["name"]: k for k in listed}
    assert (by_name["root"]["source"], by_name["listed"]["source"]) == ("config", "store")
    assert all("secret" not in k and "digest" not in k for k in listed)
    table = admin_keys(served.config, "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "ROLE", "STATUS", "SOURCE", "CREATED"]
    assert any(line.split()[:4] == ["root", "admin", "active", "relay.toml"] for line in table)
    refused = admin_keys(served.config, "create", "root")
    assert refused.returncode == 1 and "declared in relay.toml" in refused.stderr and refused.stdout == ""
    assert admin_keys(served.config, "disable", "root").returncode == 1


@pytest.mark.parametrize(
    ("args", "status", "error"),
    [
        (("create", "x", "--role", "owner"), 2, "relay admin-keys create: --role: must be one of admin, viewer"),
        (("create", "bad name"), 2, "relay admin-keys create: name 'bad name': use 1 to 64"),
        (("create", "root"), 1, "admin key 'root' is declared in relay.toml"),
        (("create", "taken"), 1, "an admin key named 'taken' already exists"),
        (("disable", "ghost"), 1, "relay admin-keys disable: no admin key named 'ghost' in the store"),
        (("enable", "ghost"), 1, "relay admin-keys enable: no admin key named 'ghost' in the store"),
        (("delete", "ghost"), 1, "relay admin-keys delete: no admin key named 'ghost' in the store"),
        (("delete", "root"), 1, "admin key 'root' is declared in relay.toml ([[admin_keys]]); change it there"),
    ],
)
def test_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], status: int, error: str
) -> None:
    config = tmp_path / "relay.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///relay.db"\n[[admin_keys]]\nname = "root"\nkey = "{ROOT_KEY}"\n', encoding="utf-8"
    )
    assert admin_keys_cli.main(["--config", str(config), "create", "taken"]) == 0
    capsys.readouterr()
    assert admin_keys_cli.main(["--config", str(config), *args]) == status
    out, err = capsys.readouterr()
    assert out == "" and error in err
