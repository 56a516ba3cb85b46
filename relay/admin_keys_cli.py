"""``relay admin-keys``: create, list, disable, enable and delete the admin keys kept in the store.

The store is the one relay.toml's ``[store] url`` names (``--config``). Admin keys declared in relay.toml
(``[[admin_keys]]``) are listed too, but are changed in relay.toml only. Exit status: 0 done, 1 no such key or
refused, 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from relay.admin import admin_keys as admin
from relay.admin.keys import Refused
from relay.config import Config
from relay.store import Store
from relay.store.admin_keys import ROLES, AdminKeyRecord
from relay.store_cli import Work, run_with_store

DEFAULT_CONFIG = "relay.toml"

__all__ = ["add_parser", "main", "run"]


def add_parser(commands: Any) -> None:
    """Register ``relay admin-keys`` and its subcommands on the ``relay`` command's subparsers."""
    keys = commands.add_parser(
        "admin-keys", help="manage the admin API's keys in the store", description=__doc__.split("\n\n")[0]
    )
    keys.add_argument("--config", default=DEFAULT_CONFIG, help="path of relay.toml (default: %(default)s)")
    actions = keys.add_subparsers(dest="admin_keys_command", required=True, metavar="COMMAND")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help)
        parser.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return parser

    create = action("create", "create an admin key and print its secret (once)")
    create.add_argument("name")
    create.add_argument("--role", default="admin", help=f"{' or '.join(ROLES)} (default: %(default)s)")
    create.add_argument("--json", action="store_true", help="print the name, role and secret as JSON")
    action("list", "list the admin keys (the store's and relay.toml's)").add_argument(
        "--json", action="store_true", help="print JSON"
    )
    action("disable", "disable an admin key of the store (401 until enabled)").add_argument("name")
    action("enable", "enable a disabled admin key of the store").add_argument("name")
    action("delete", "delete an admin key of the store").add_argument("name")


def main(argv: Sequence[str]) -> int:
    """``relay admin-keys`` with ``argv`` (what follows ``admin-keys``), as the ``relay`` command runs it."""
    parser = argparse.ArgumentParser(prog="relay")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["admin-keys", *argv]))


def run(args: argparse.Namespace) -> int:
    """Run ``relay admin-keys …``; the exit status."""
    command = args.admin_keys_command
    return run_with_store(args.config, f"relay admin-keys {command}", lambda config: _COMMANDS[command](args, config))


def _when(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _as_json(record: AdminKeyRecord) -> dict[str, Any]:
    """An admin key of the store as JSON (never its secret nor its digest)."""
    status = "disabled" if record.disabled else "active"
    return {
        "name": record.name,
        "role": record.role,
        "status": status,
        "source": "store",
        "created_at": record.created_at,
    }


def _create_command(args: argparse.Namespace, config: Config) -> Work:
    record, secret = admin.new_record(args.name, args.role, config)

    async def create(store: Store) -> int:
        await admin.create(store, record)
        if args.json:
            print(json.dumps({"name": record.name, "role": record.role, "secret": secret}))
        else:
            print(f"Created admin key {record.name!r} (role {record.role}).")
            print(f"Secret: {secret}")
        print(
            "This secret will not be shown again: only its SHA-256 digest is stored.",
            file=sys.stderr if args.json else None,
        )
        return 0

    return create


def _list_command(args: argparse.Namespace, config: Config) -> Work:
    async def list_keys(store: Store) -> int:
        shown = [_as_json(record) for record in await admin.list_admin_keys(store)]
        declared = [
            {"name": k.name, "role": k.role, "status": "active", "source": "config", "created_at": None}
            for k in config.admin_keys
        ]
        rows = sorted(declared + shown, key=lambda k: k["name"])
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        header = ("NAME", "ROLE", "STATUS", "SOURCE", "CREATED")
        cells = [
            (k["name"], k["role"], k["status"], "relay.toml" if k["source"] == "config" else "store", _created(k))
            for k in rows
        ]
        widths = [max(len(row[i]) for row in (header, *cells)) for i in range(len(header))]
        for row in (header, *cells):
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        return 0

    return list_keys


def _created(shown: dict[str, Any]) -> str:
    return "-" if shown["created_at"] is None else _when(shown["created_at"])


def _change_command(verb: str) -> Callable[[argparse.Namespace, Config], Work]:
    """``disable``, ``enable`` or ``delete``: refused for a name relay.toml declares (change it there)."""

    def command(args: argparse.Namespace, config: Config) -> Work:
        if any(k.name == args.name for k in config.admin_keys):
            raise Refused(f"admin key {args.name!r} is declared in relay.toml ([[admin_keys]]); change it there")

        async def change(store: Store) -> int:
            if verb == "delete":
                await admin.delete(store, args.name)
            else:
                await admin.set_disabled(store, args.name, verb == "disable")
            print(f"Admin key {args.name!r} {verb}d.")
            return 0

        return change

    return command


_COMMANDS: dict[str, Callable[[argparse.Namespace, Config], Work]] = {
    "create": _create_command,
    "list": _list_command,
    "disable": _change_command("disable"),
    "enable": _change_command("enable"),
    "delete": _change_command("delete"),
}
