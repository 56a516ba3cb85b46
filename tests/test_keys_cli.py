"""``relay keys`` against a relay.toml in tmp_path (SQLite, and PostgreSQL when RELAY_TEST_POSTGRES_URL is
set): what it prints, what it stores, and its exit statuses.

``python -m relay keys …`` runs as a subprocess where the command itself is the point (the secret printed
once, the JSON a script reads, PostgreSQL); the many refusals run the same entry point in-process
(``keys_cli.main``), which spares an interpreter start each.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from relay import keys_cli
from relay.config import load
from relay.store import Tx, ledger, open_store
from relay.store import keys as stored
from tests.conftest import postgres_schema

ROOT = Path(__file__).resolve().parent.parent


@attrs.frozen
class Result:
    status: int
    out: str
    err: str


def command(config: Path, *args: str) -> Result:
    """``python -m relay keys --config CONFIG ARGS…`` in a subprocess."""
    argv = [sys.executable, "-m", "relay", "keys", "--config", str(config), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return Result(done.returncode, done.stdout, done.stderr)


def cli(config: Path, *args: str) -> Result:
    """The same, in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = keys_cli.main(["--config", str(config), *args])
        except SystemExit as exit:  # argparse
            status = int(exit.code or 0)
    return Result(status, out.getvalue(), err.getvalue())


def in_store(config: Path, fn: Callable[[Tx], Any]) -> Any:
    async def go() -> Any:
        async with open_store(load(config).store.url) as store:
            await store.migrate()
            return await store.transaction(fn)

    return trio.run(go)


def write_config(folder: Path, store_url: str) -> Path:
    path = folder / "relay.toml"
    path.write_text(
        f'[store]\nurl = "{store_url}"\n\n[[keys]]\nname = "dev"\nkey = "sk-relay-dev-key"\nquota = 5\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, "sqlite:///relay.db")  # relative to relay.toml's folder


@pytest.fixture
def started(config: Path) -> Path:
    """The store as Relay leaves it at start: migrated, relay.toml's keys in it."""
    in_store(config, lambda tx: stored.sync_config(tx, load(config).keys, time.time()))
    return config


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def secret_of(out: str) -> str:
    match = re.search(r"^Secret: (sk-relay-\S+)$", out, re.MULTILINE)
    assert match, out
    return match.group(1)


def test_create_prints_the_secret_once_and_stores_only_its_digest(config: Path, tmp_path: Path) -> None:
    created = command(
        config, "create", "alice", "--quota", "12.5", "--expires", "2099-01-01", "--models", "gpt-*, mock-1",
        "--rpm", "60", "--tpm", "10000", "--group", "vip", "--ips", "10.0.0.0/8,127.0.0.1",
    )  # fmt: skip
    assert created.status == 0, created.err
    secret = secret_of(created.out)
    assert "This secret will not be shown again" in created.out
    assert created.out.count(secret) == 1
    record = in_store(config, lambda tx: stored.get(tx, "alice"))
    assert record == stored.KeyRecord(
        "alice",
        hashlib.sha256(secret.encode()).digest(),
        12_500_000,
        expires_at=4070908800.0,
        models=("gpt-*", "mock-1"),
        rpm=60,
        tpm=10_000,
        group="vip",
        ips=("10.0.0.0/8", "127.0.0.1"),
        source="cli",
        created_at=record.created_at,
    )
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("relay.db*"))
    assert secret.encode() not in on_disk and hashlib.sha256(secret.encode()).hexdigest().encode() in on_disk
    assert secret not in cli(config, "show", "alice").out + cli(config, "list", "--json").out

    as_json = command(config, "create", "bob", "--json")
    assert as_json.status == 0, as_json.err
    printed = json.loads(as_json.out)
    assert printed["name"] == "bob" and in_store(config, lambda tx: stored.get(tx, "bob")).digest == stored.digest(
        printed["secret"]
    )
    assert "will not be shown again" in as_json.err


def test_list_show_topup_disable_enable_delete(started: Path) -> None:
    config = started
    assert cli(config, "create", "alice", "--quota", "2", "--rpm", "5").status == 0
    assert cli(config, "create", "open").status == 0
    in_store(config, lambda tx: ledger.admit(tx, "alice", "r1", 250_000, 5, None, time.time()))
    topped = cli(config, "topup", "alice", "0.000001")
    assert topped == Result(0, "Key 'alice' topped up by 0.000001 credits: balance 1.750001 credits.\n", "")
    assert cli(config, "disable", "open") == Result(0, "Key 'open' disabled.\n", "")

    listed = command(config, "list")
    assert listed.status == 0, listed.err
    assert [line.split() for line in listed.out.splitlines()] == [
        ["NAME", "STATUS", "BALANCE", "RPM", "TPM", "GROUP", "EXPIRES", "SOURCE"],
        ["alice", "active", "1.750001", "5", "-", "default", "never", "cli"],
        ["dev", "active", "5", "-", "-", "default", "never", "config"],
        ["open", "disabled", "unlimited", "-", "-", "default", "never", "cli"],
    ]
    shown = cli(config, "show", "alice")
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in shown.out.splitlines())
    assert fields["balance"] == "1.750001 credits"
    assert fields["open holds"] == "0.25 credits"
    assert (fields["rpm"], fields["tpm"], fields["source"], fields["ips"]) == ("5", "-", "relay keys", "any")
    assert fields["today's cost"] == "0 credits"
    detail = json.loads(cli(config, "show", "alice", "--json").out)
    assert (detail["balance_micros"], detail["open_holds_micros"], detail["status"]) == (1_750_001, 250_000, "active")
    assert detail["today"]["requests"] == 0

    assert cli(config, "enable", "open") == Result(0, "Key 'open' enabled.\n", "")
    assert cli(config, "delete", "alice") == Result(0, "Key 'alice' deleted.\n", "")
    refused = cli(config, "delete", "dev")
    assert refused == Result(1, "", "relay keys delete: key 'dev' is declared in relay.toml; remove it there\n")
    listed = json.loads(cli(config, "list", "--json").out)
    assert [(k["name"], k["status"], k["source"]) for k in listed] == [
        ("dev", "active", "config"),
        ("open", "active", "cli"),
    ]
    # alice's ledger went with her.
    assert in_store(config, lambda tx: tx.execute("SELECT COUNT(*) FROM quota_ledger WHERE key_name = 'alice'")) == [
        (0,)
    ]


def test_update_changes_the_fields_given_and_rotate_the_secret(started: Path) -> None:
    config = started
    secret = secret_of(cli(config, "create", "alice", "--quota", "2", "--rpm", "5", "--group", "vip").out)
    updated = cli(
        config, "update", "alice", "--models", "gpt-*,mock-1", "--tpm", "900", "--expires", "2099-01-01",
        "--ips", "10.0.0.0/8",
    )  # fmt: skip
    assert updated == Result(0, "Key 'alice' updated.\n", "")
    record = in_store(config, lambda tx: stored.get(tx, "alice"))
    assert (record.models, record.rpm, record.tpm, record.group, record.ips) == (
        ("gpt-*", "mock-1"), 5, 900, "vip", ("10.0.0.0/8",)
    )  # fmt: skip
    assert (record.expires_at, record.quota_micros, record.digest) == (4070908800.0, 2_000_000, stored.digest(secret))
    cleared = json.loads(
        cli(config, "update", "alice", "--models", "all", "--rpm", "none", "--tpm", "none", "--expires", "never",
            "--ips", "any", "--group", "default", "--json").out
    )  # fmt: skip
    assert (cleared["models"], cleared["rpm"], cleared["tpm"], cleared["expires_at"], cleared["ips"]) == (
        ["*"], None, None, None, []
    )  # fmt: skip
    assert cli(config, "update", "alice", "--quota", "unlimited").status == 0
    assert in_store(config, lambda tx: stored.get(tx, "alice")).quota_micros is None
    assert cli(config, "update", "alice", "--quota", "3").status == 0  # an unlimited key starts a balance
    assert in_store(config, lambda tx: stored.get(tx, "alice")).quota_micros == 3_000_000

    rotated = command(config, "rotate", "alice")
    assert rotated.status == 0, rotated.err
    new = secret_of(rotated.out)
    assert new != secret and "will not be shown again" in rotated.out
    after = in_store(config, lambda tx: stored.get(tx, "alice"))
    assert after.digest == stored.digest(new) and after.quota_micros == 3_000_000  # same key, same balance
    as_json = json.loads(cli(config, "rotate", "alice", "--json").out)
    assert as_json["name"] == "alice" and in_store(config, lambda tx: stored.get(tx, "alice")).digest == stored.digest(
        as_json["secret"]
    )


def test_relay_toml_keys_not_yet_in_the_store_are_mentioned(config: Path) -> None:
    listed = cli(config, "list")
    assert listed.status == 0
    assert "1 key(s) of relay.toml not in the store yet" in listed.out


@pytest.mark.parametrize(
    ("args", "status", "error"),
    [
        (("create", "x", "--rpm", "0"), 2, "relay keys create: --rpm: must be at least 1"),
        (("create", "x", "--tpm", "-5"), 2, "relay keys create: --tpm: must be at least 1"),
        (("create", "x", "--quota", "lots"), 2, "relay keys create: --quota: expected a number of credits, got 'lots'"),
        (("create", "x", "--quota", "-1"), 2, "relay keys create: --quota: must be at least 0"),
        (("create", "x", "--expires", "soon"), 2, "--expires: expected YYYY-MM-DD or an ISO 8601 time, got 'soon'"),
        (("create", "x", "--expires", "2001-01-01"), 2, "--expires: '2001-01-01' is in the past"),
        (("create", "x", "--ips", "10.0.0.0/33"), 2, "--ips[0]: expected an IP address or a CIDR, got '10.0.0.0/33'"),
        (("create", "x", "--group", " "), 2, "--group: must not be empty"),
        (("create", "bad name"), 2, "relay keys create: name 'bad name': use 1 to 64 letters"),
        (("create", "dev"), 1, "relay keys create: key 'dev' is declared in relay.toml; change it there"),
        (("create", "free"), 1, "relay keys create: a key named 'free' already exists"),
        (("topup", "free", "1"), 1, "key 'free' has no quota (unlimited): there is nothing to top up"),
        (("topup", "dev", "-1"), 2, "relay keys topup: CREDITS: must be more than 0"),
        (("topup", "dev", "some"), 2, "relay keys topup: CREDITS: expected a number of credits"),
        (("topup", "ghost", "1"), 1, "relay keys topup: no key named 'ghost'"),
        (("show", "ghost"), 1, "relay keys show: no key named 'ghost'"),
        (("disable", "ghost"), 1, "relay keys disable: no key named 'ghost'"),
        (("enable", "ghost"), 1, "relay keys enable: no key named 'ghost'"),
        (("delete", "ghost"), 1, "relay keys delete: no key named 'ghost'"),
        (("update", "ghost", "--rpm", "5"), 1, "relay keys update: no key named 'ghost'"),
        (("update", "dev", "--rpm", "5"), 1, "key 'dev' is declared in relay.toml: change it there"),
        (("update", "free"), 2, "relay keys update: nothing to change: give at least one of --quota"),
        (("update", "free", "--rpm", "many"), 2, "relay keys update: --rpm: expected an integer or 'none', got 'many'"),
        (("update", "free", "--tpm", "0"), 2, "relay keys update: --tpm: must be at least 1"),
        (("update", "free", "--expires", "2001-01-01"), 2, "--expires: '2001-01-01' is in the past"),
        (("update", "free", "--ips", "10.0.0.0/33"), 2, "--ips[0]: expected an IP address or a CIDR"),
        (("update", "free", "--group", " "), 2, "relay keys update: --group: must not be empty"),
        (("update", "dev", "--quota", "9"), 1, "key 'dev' is declared in relay.toml"),
        (("rotate", "ghost"), 1, "relay keys rotate: no key named 'ghost'"),
        (("rotate", "dev"), 1, "relay keys rotate: key 'dev' is declared in relay.toml: rotate it there"),
        (("frobnicate",), 2, "invalid choice: 'frobnicate'"),
        (("create",), 2, "the following arguments are required: name"),
    ],
)
def test_refusals_and_bad_arguments(started: Path, args: tuple[str, ...], status: int, error: str) -> None:
    assert cli(started, "create", "free").status == 0
    before = in_store(started, stored.load_all)
    result = cli(started, *args)
    assert (result.status, result.out) == (status, "")
    assert error in result.err
    assert in_store(started, stored.load_all) == before  # nothing changed


def test_a_bad_or_missing_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[store]\nurl = "mysql://db"\n', encoding="utf-8")
    broken = cli(bad, "list")
    assert broken.status == 2 and "store.url: store url 'mysql://db' has scheme 'mysql'" in broken.err
    missing = cli(tmp_path / "none.toml", "list")
    assert missing.status == 2 and "none.toml: cannot read" in missing.err
    unreachable = tmp_path / "unreachable.toml"
    unreachable.write_text('[store]\nurl = "sqlite:///no/such/folder/relay.db"\n', encoding="utf-8")
    down = cli(unreachable, "list")
    assert down.status == 1 and "cannot open SQLite database" in down.err


def test_against_postgresql(postgres_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, postgres_url)
    created = command(config, "create", "alice", "--quota", "1.5")
    assert created.status == 0, created.err
    secret = secret_of(created.out)
    topped = cli(config, "topup", "alice", "0.25")
    assert topped.out == "Key 'alice' topped up by 0.25 credits: balance 1.75 credits.\n"
    shown = command(config, "show", "alice", "--json")
    assert shown.status == 0, shown.err
    assert json.loads(shown.out)["balance_micros"] == 1_750_000
    [record] = in_store(config, stored.load_all)
    assert record.digest == hashlib.sha256(secret.encode()).digest()
    assert cli(config, "update", "alice", "--rpm", "7", "--models", "a,b").status == 0
    rotated = secret_of(cli(config, "rotate", "alice").out)
    [record] = in_store(config, stored.load_all)
    assert (record.rpm, record.models, record.quota_micros) == (7, ("a", "b"), 1_750_000)
    assert record.digest == stored.digest(rotated)
    assert cli(config, "delete", "alice").status == 0
    assert json.loads(cli(config, "list", "--json").out) == []
