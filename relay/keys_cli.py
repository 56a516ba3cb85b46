"""``relay keys``: create, list, show, update, rotate, disable, enable, top up and delete the keys in the store.

The store is the one relay.toml's ``[store] url`` names (``--config``). Keys declared in relay.toml enter the
store when Relay starts; here they can be listed, shown, disabled, enabled and topped up, but not updated,
rotated nor deleted (relay.toml is where they change).
Exit status: 0 done, 1 no such key or refused, 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from relay.admin import keys as admin
from relay.admin.keys import BadArguments, Refused
from relay.config import Config
from relay.store import Store
from relay.store.keys import KeyRecord, KeyRefused, credits
from relay.store_cli import Work, run_with_store

DEFAULT_CONFIG = "relay.toml"
NAME = admin.NAME

__all__ = ["BadArguments", "Refused", "add_parser", "main", "run"]


def add_parser(commands: Any) -> None:
    """Register ``relay keys`` and its subcommands on the ``relay`` command's subparsers."""
    keys = commands.add_parser("keys", help="manage the keys in the store", description=__doc__.split("\n\n")[0])
    keys.add_argument("--config", default=DEFAULT_CONFIG, help="path of relay.toml (default: %(default)s)")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help)
        parser.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return parser

    create = action("create", "create a key and print its secret (once)")
    create.add_argument("name")
    create.add_argument("--quota", metavar="CREDITS", help="credits it starts with (default: unlimited)")
    create.add_argument("--expires", metavar="WHEN", help="YYYY-MM-DD or an ISO 8601 time, UTC (default: never)")
    create.add_argument("--models", metavar="A,B", help="models (globs) it may use (default: all)")
    create.add_argument("--rpm", type=int, help="requests per minute (default: no limit)")
    create.add_argument("--tpm", type=int, help="tokens per minute (default: no limit)")
    create.add_argument("--group", default="default", help="channel group (default: %(default)s)")
    create.add_argument("--ips", metavar="CIDR,CIDR", help="addresses it may be used from (default: any)")
    create.add_argument("--json", action="store_true", help="print the name and the secret as JSON")
    action("list", "list the keys").add_argument("--json", action="store_true", help="print JSON")
    show = action("show", "show one key: every field, balance, open holds, today's totals")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="print JSON")
    action("disable", "disable a key (401 until enabled)").add_argument("name")
    action("enable", "enable a disabled key").add_argument("name")
    topup = action("topup", "add credits to a key's balance")
    topup.add_argument("name")
    topup.add_argument("credits")
    action("delete", "delete a key made with `relay keys create`, and its ledger").add_argument("name")
    update = action("update", "change a key's fields (those given; the name never changes)")
    update.add_argument("name")
    update.add_argument("--quota", metavar="CREDITS", help="starting balance of an unlimited key, or 'unlimited'")
    update.add_argument("--expires", metavar="WHEN", help="YYYY-MM-DD or an ISO 8601 time, UTC, or 'never'")
    update.add_argument("--models", metavar="A,B", help="models (globs) it may use, or 'all'")
    update.add_argument("--rpm", metavar="N", help="requests per minute, or 'none' (no limit)")
    update.add_argument("--tpm", metavar="N", help="tokens per minute, or 'none' (no limit)")
    update.add_argument("--group", help="channel group")
    update.add_argument("--ips", metavar="CIDR,CIDR", help="addresses it may be used from, or 'any'")
    update.add_argument("--json", action="store_true", help="print the key as JSON")
    rotate = action("rotate", "give a key a new secret and print it (once); the old one stops working")
    rotate.add_argument("name")
    rotate.add_argument("--json", action="store_true", help="print the name and the new secret as JSON")


def main(argv: Sequence[str]) -> int:
    """``relay keys`` with ``argv`` (what follows ``keys``), as the ``relay`` command runs it."""
    parser = argparse.ArgumentParser(prog="relay")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["keys", *argv]))


def run(args: argparse.Namespace) -> int:
    """Run ``relay keys …``; the exit status."""
    command = args.keys_command
    return run_with_store(
        args.config, f"relay keys {command}", lambda config: _COMMANDS[command](args, config), (KeyRefused,)
    )


# ---- create ----------------------------------------------------------------------------------------


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _new_key(args: argparse.Namespace) -> admin.NewKey:
    return admin.NewKey(
        name=args.name,
        quota=args.quota,
        expires=args.expires,
        models=_split(args.models),
        rpm=args.rpm,
        tpm=args.tpm,
        group=args.group,
        ips=_split(args.ips),
    )


async def _create(store: Store, new: tuple[KeyRecord, str], as_json: bool) -> int:
    record, secret = new
    await admin.create(store, record)
    if as_json:
        print(json.dumps({"name": record.name, "secret": secret}))
    else:
        print(f"Created key {record.name!r} ({_balance(record.quota_micros)}).")
        print(f"Secret: {secret}")
    print(
        "This secret will not be shown again: only its SHA-256 digest is stored.", file=sys.stderr if as_json else None
    )
    return 0


# ---- list and show ---------------------------------------------------------------------------------


def _balance(quota_micros: int | None) -> str:
    return "unlimited" if quota_micros is None else f"{credits(quota_micros)} credits"


def _when(moment: float | None) -> str:
    if moment is None:
        return "never"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _limit(value: int | None) -> str:
    return "-" if value is None else str(value)


async def _list(store: Store, args: argparse.Namespace, config: Config) -> int:
    all_keys = await admin.list_keys(store)
    now = time.time()
    if args.json:
        print(json.dumps([admin.as_json(record, now) for record in all_keys], indent=2))
        return 0
    header = ("NAME", "STATUS", "BALANCE", "RPM", "TPM", "GROUP", "EXPIRES", "SOURCE")
    rows = [
        (
            r.name,
            r.status(now),
            _balance(r.quota_micros).removesuffix(" credits"),
            _limit(r.rpm),
            _limit(r.tpm),
            r.group,
            _when(r.expires_at),
            r.source,
        )
        for r in all_keys
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    missing = sorted({k.name for k in config.keys} - {r.name for r in all_keys})
    if missing:
        print(f"({len(missing)} key(s) of relay.toml not in the store yet: they enter it when Relay starts)")
    return 0


async def _show(store: Store, args: argparse.Namespace, config: Config) -> int:
    now = time.time()
    view = await admin.show(store, args.name, now)
    record, sums, today = view.record, view.sums, view.today
    if args.json:
        shown = admin.as_json(record, now)
        shown["open_holds_micros"] = view.open_holds_micros
        shown["leased_micros"] = view.leased_micros
        shown["today"] = {"day": today, **sums}
        print(json.dumps(shown, indent=2))
        return 0
    lines = [
        ("name", record.name),
        ("status", record.status(now)),
        ("source", "relay.toml" if record.source == "config" else "relay keys"),
        ("balance", _balance(record.quota_micros)),
        ("open holds", f"{credits(view.open_holds_micros)} credits"),
        ("leased", f"{credits(view.leased_micros)} credits (reserved by running Relay processes)"),
        ("models", ", ".join(record.models)),
        ("rpm", _limit(record.rpm)),
        ("tpm", _limit(record.tpm)),
        ("group", record.group),
        ("ips", ", ".join(record.ips) or "any"),
        ("expires", _when(record.expires_at)),
        ("created", _when(record.created_at)),
        (
            f"today ({today})",
            ", ".join(
                f"{name.replace('_', ' ')} {round(value, 3)}" for name, value in sums.items() if name != "cost_micros"
            ),
        ),
        ("today's cost", f"{credits(sums['cost_micros'])} credits"),
    ]
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        print(f"{label.ljust(width)}  {value}")
    return 0


# ---- changes ---------------------------------------------------------------------------------------


async def _set_disabled(store: Store, name: str, disabled: bool) -> int:
    await admin.set_disabled(store, name, disabled)
    print(f"Key {name!r} {'disabled' if disabled else 'enabled'}.")
    return 0


async def _disable(store: Store, args: argparse.Namespace, config: Config) -> int:
    return await _set_disabled(store, args.name, True)


async def _enable(store: Store, args: argparse.Namespace, config: Config) -> int:
    return await _set_disabled(store, args.name, False)


async def _topup(store: Store, name: str, amount: int) -> int:
    balance = await admin.topup(store, name, amount)
    print(f"Key {name!r} topped up by {credits(amount)} credits: balance {credits(balance)} credits.")
    return 0


async def _delete(store: Store, args: argparse.Namespace, config: Config) -> int:
    await admin.delete(store, args.name)
    print(f"Key {args.name!r} deleted.")
    return 0


#: ``relay keys update``'s options, and the word that clears each (None: it cannot be cleared).
_CLEARED_BY = {
    "quota": "unlimited",
    "expires": "never",
    "models": "all",
    "rpm": "none",
    "tpm": "none",
    "group": None,
    "ips": "any",
}


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    """``relay keys update``'s options as ``admin.key_change``'s changes (the options given only)."""
    changes: dict[str, Any] = {}
    for name, clear in _CLEARED_BY.items():
        text = getattr(args, name)
        if text is None:
            continue
        if clear is not None and text.strip().lower() == clear:
            changes[name] = None
        elif name in ("models", "ips"):
            changes[name] = _split(text)
        elif name in ("rpm", "tpm"):
            try:
                changes[name] = int(text)
            except ValueError:
                raise BadArguments(f"--{name}: expected an integer or {clear!r}, got {text!r}") from None
        else:
            changes[name] = text
    return changes


def _update_command(args: argparse.Namespace, config: Config) -> Work:
    change = admin.key_change(_changes(args), lambda field: f"--{field}")

    async def update(store: Store) -> int:
        record = await admin.update(store, args.name, change)
        if args.json:
            print(json.dumps(admin.as_json(record, time.time()), indent=2))
        else:
            print(f"Key {record.name!r} updated.")
        return 0

    return update


def _rotate_command(args: argparse.Namespace, config: Config) -> Work:
    async def rotate(store: Store) -> int:
        record, secret = await admin.rotate(store, args.name)
        if args.json:
            print(json.dumps({"name": record.name, "secret": secret}))
        else:
            print(f"Rotated key {record.name!r}: the old secret no longer works (within [store] key_refresh).")
            print(f"Secret: {secret}")
        print(
            "This secret will not be shown again: only its SHA-256 digest is stored.",
            file=sys.stderr if args.json else None,
        )
        return 0

    return rotate


def _create_command(args: argparse.Namespace, config: Config) -> Work:
    new = admin.new_record(_new_key(args), config, lambda field: f"--{field}")
    return lambda store: _create(store, new, args.json)


def _topup_command(args: argparse.Namespace, config: Config) -> Work:
    amount = admin.topup_amount(args.credits, "CREDITS")
    return lambda store: _topup(store, args.name, amount)


def _simple(fn: Callable[[Store, argparse.Namespace, Config], Awaitable[int]]) -> Callable[..., Work]:
    return lambda args, config: lambda store: fn(store, args, config)


_COMMANDS: dict[str, Callable[[argparse.Namespace, Config], Work]] = {
    "create": _create_command,
    "list": _simple(_list),
    "show": _simple(_show),
    "disable": _simple(_disable),
    "enable": _simple(_enable),
    "topup": _topup_command,
    "delete": _simple(_delete),
    "update": _update_command,
    "rotate": _rotate_command,
}
