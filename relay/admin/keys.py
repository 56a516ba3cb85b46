"""The operations on the store's keys, one implementation for ``relay keys`` and ``/admin/v1/keys``.

Each returns plain data or raises ``BadArguments`` (the request is wrong), ``Refused`` (it cannot be done), a
``relay.store.keys.KeyRefused`` (``KeyNotFound``: no such key) or a ``StoreError``. Messages name a field with
``label(field)``: the CLI passes ``--quota``, the API ``quota``.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from relay.config import Config
from relay.config_checks import key_problems, parse_expiry
from relay.store import IntegrityError, Store, leases, ledger, records
from relay.store import keys as stored
from relay.store.keys import KeyNotFound, KeyRecord, micros

__all__ = [
    "NAME",
    "UPDATABLE",
    "BadArguments",
    "KeyView",
    "NewKey",
    "Refused",
    "as_json",
    "create",
    "delete",
    "key_change",
    "list_keys",
    "new_record",
    "rotate",
    "set_disabled",
    "show",
    "topup",
    "topup_amount",
    "update",
]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}")
#: The fields ``update`` may change; the name never, the secret only by ``rotate``.
UPDATABLE = ("quota", "expires", "models", "rpm", "tpm", "group", "ips")
Label = Callable[[str], str]


class Refused(Exception):
    """The operation cannot be done (the CLI's exit status 1)."""


class BadArguments(Exception):
    """The operation's arguments are wrong (the CLI's exit status 2)."""


@attrs.frozen
class NewKey:
    """What ``create`` needs: a key's fields (``models``, ``ips``: lists; the rest as the CLI's options)."""

    name: str
    quota: str | None = None
    expires: str | None = None
    models: Sequence[str] = ()
    rpm: int | None = None
    tpm: int | None = None
    group: str = "default"
    ips: Sequence[str] = ()


@attrs.frozen
class KeyView:
    """One key as ``show`` reads it: the record, its open holds and leases, and today's totals."""

    record: KeyRecord
    open_holds_micros: int
    leased_micros: int
    today: str
    #: Today's counters (``records.DailyTotal``'s, summed over models and channels).
    sums: dict[str, Any]


def new_record(new: NewKey, config: Config, label: Label) -> tuple[KeyRecord, str]:
    """The record of a new key and its secret; BadArguments or Refused when it cannot be made."""
    if not NAME.fullmatch(new.name):
        raise BadArguments(f"name {new.name!r}: use 1 to 64 letters, digits and . _ : @ - (a letter or digit first)")
    if any(key.name == new.name for key in config.keys):
        raise Refused(f"key {new.name!r} is declared in relay.toml; change it there")
    ips = [ip.strip() for ip in new.ips if ip.strip()]
    fields: dict[str, Any] = {"key": stored.new_secret(), "group": new.group, "ips": ips}
    quota = None
    if new.quota is not None:
        try:
            quota = micros(new.quota)
        except ValueError as error:
            raise BadArguments(f"{label('quota')}: {error}") from None
        fields["quota"] = quota / stored.MICROS
    for name in ("rpm", "tpm", "expires"):
        if getattr(new, name) is not None:
            fields[name] = getattr(new, name)
    problems = [re.sub(r"^@\.(\w+)", lambda m: label(m.group(1)), p) for p in key_problems(fields, "@")]
    if problems:
        raise BadArguments("; ".join(problems))
    expires = parse_expiry(new.expires) if new.expires is not None else None
    if expires is not None and expires <= time.time():
        raise BadArguments(f"{label('expires')}: {new.expires!r} is in the past")
    models = tuple(m.strip() for m in new.models if m.strip()) or ("*",)
    record = KeyRecord(
        name=new.name,
        digest=stored.digest(fields["key"]),
        quota_micros=quota,
        expires_at=expires,
        models=models,
        rpm=new.rpm,
        tpm=new.tpm,
        group=new.group.strip(),
        ips=tuple(ips),
        source="cli",
        created_at=time.time(),
    )
    return record, fields["key"]


async def create(store: Store, record: KeyRecord) -> None:
    """Store a new key; Refused when its name is taken."""
    try:
        await store.transaction(lambda tx: stored.create(tx, record))
    except IntegrityError as error:  # the name is taken (a secret taken too is all but impossible)
        raise Refused(str(error)) from None


def as_json(record: KeyRecord, now: float) -> dict[str, Any]:
    """A key's fields as JSON (never its secret nor its digest)."""
    return {
        "name": record.name,
        "status": record.status(now),
        "source": record.source,
        "balance_micros": record.quota_micros,
        "balance_credits": None if record.quota_micros is None else record.quota_micros / stored.MICROS,
        "models": list(record.models),
        "rpm": record.rpm,
        "tpm": record.tpm,
        "group": record.group,
        "ips": list(record.ips),
        "expires_at": record.expires_at,
        "created_at": record.created_at,
    }


async def list_keys(store: Store) -> list[KeyRecord]:
    """Every key of the store, by name."""
    return await store.transaction(stored.load_all)


async def show(store: Store, name: str, now: float) -> KeyView:
    """One key with its holds, leases and today's totals; Refused when there is no such key."""
    today = records.day_of(now)

    def read(tx: stored.Tx) -> tuple[KeyRecord | None, int, int, list[records.DailyTotal]]:
        record = stored.get(tx, name)
        if record is None:
            return None, 0, 0, []
        return record, ledger.open_holds(tx, name), leases.reserved(tx, name), records.daily(tx, today, name)

    record, holds, leased, totals = await store.transaction(read)
    if record is None:
        raise KeyNotFound(f"no key named {name!r}")
    counters = [f.name for f in attrs.fields(records.DailyTotal)][4:]  # after day, key_name, model, channel
    sums = {counter: sum(getattr(t, counter) for t in totals) for counter in counters}
    return KeyView(record, holds, leased, today, sums)


async def set_disabled(store: Store, name: str, disabled: bool) -> None:
    """Disable or enable a key; KeyNotFound when there is no such key."""
    if not await store.transaction(lambda tx: stored.set_disabled(tx, name, disabled, time.time())):
        raise KeyNotFound(f"no key named {name!r}")


def topup_amount(text: str, label: str) -> int:
    """Credits as text → micro-credits, more than 0; BadArguments otherwise."""
    try:
        amount = micros(text)
    except ValueError as error:
        raise BadArguments(f"{label}: {error}") from None
    if amount <= 0:
        raise BadArguments(f"{label}: must be more than 0 (at least 0.000001), got {text!r}")
    return amount


async def topup(store: Store, name: str, amount: int) -> int:
    """Add ``amount`` micro-credits to the key's balance; the new balance."""
    request_id = f"topup-{uuid.uuid4().hex}"
    return await store.transaction(lambda tx: stored.topup(tx, name, amount, request_id, time.time()))


async def delete(store: Store, name: str) -> None:
    """Delete a key made by ``relay keys`` or the API; KeyNotFound, or KeyRefused for a key of relay.toml."""
    if not await store.transaction(lambda tx: stored.delete(tx, name)):
        raise KeyNotFound(f"no key named {name!r}")


def key_change(changes: Mapping[str, Any], label: Label) -> Callable[[KeyRecord], KeyRecord]:
    """What ``update`` does to a key: ``changes`` maps fields of ``UPDATABLE`` to their new values, checked as
    ``new_record`` checks them (``quota``, ``expires``: text; ``models``, ``ips``: lists; ``rpm``, ``tpm``:
    integers; ``group``: text). None clears a field: unlimited, never expires, all models, no rpm or tpm limit,
    the ``default`` group, any address. BadArguments when one is wrong.

    ``quota`` gives an unlimited key a balance to start with (granted in the ledger), and None makes a limited key
    unlimited; a key that has a balance is topped up instead (Refused), so that the ledger explains every balance.
    """
    unknown = sorted(set(changes) - set(UPDATABLE))
    if unknown:
        raise BadArguments(f"{label(unknown[0])}: not a field update changes (it changes {', '.join(UPDATABLE)})")
    if not changes:
        raise BadArguments(f"nothing to change: give at least one of {', '.join(label(f) for f in UPDATABLE)}")
    given = {name: value for name, value in changes.items() if value is not None}
    fields: dict[str, Any] = {k: v for k, v in given.items() if k in ("rpm", "tpm", "expires", "group")}
    values: dict[str, Any] = {}
    if "ips" in changes:
        fields["ips"] = [ip.strip() for ip in given.get("ips", ()) if ip.strip()]
        values["ips"] = tuple(fields["ips"])
    if "models" in changes:
        values["models"] = tuple(m.strip() for m in given.get("models", ()) if m.strip()) or ("*",)
    if "quota" in changes:
        values["quota_micros"] = None
        if "quota" in given:
            try:
                values["quota_micros"] = micros(given["quota"])
            except ValueError as error:
                raise BadArguments(f"{label('quota')}: {error}") from None
            fields["quota"] = values["quota_micros"] / stored.MICROS
    problems = [re.sub(r"^@\.(\w+)", lambda m: label(m.group(1)), p) for p in key_problems(fields, "@")]
    if problems:
        raise BadArguments("; ".join(problems))
    for name in ("rpm", "tpm"):
        if name in changes:
            values[name] = given.get(name)
    if "group" in changes:
        values["group"] = given.get("group", "default").strip()
    if "expires" in changes:
        values["expires_at"] = parse_expiry(given["expires"]) if "expires" in given else None
        if values["expires_at"] is not None and values["expires_at"] <= time.time():
            raise BadArguments(f"{label('expires')}: {given['expires']!r} is in the past")

    def change(old: KeyRecord) -> KeyRecord:
        if values.get("quota_micros") is not None and old.quota_micros is not None:
            raise Refused(
                f"key {old.name!r} has a balance ({stored.credits(old.quota_micros)} credits): top it up instead"
                f" ({label('quota')} starts the balance of an unlimited key)"
            )
        return attrs.evolve(old, **values)

    return change


async def update(store: Store, name: str, change: Callable[[KeyRecord], KeyRecord]) -> KeyRecord:
    """Change a key made by ``relay keys`` or the API (``key_change``); the key as it is now. KeyNotFound,
    KeyRefused for a key of relay.toml (change it there), Refused as ``key_change`` says."""
    return await store.transaction(lambda tx: stored.update(tx, name, change, time.time()))


async def rotate(store: Store, name: str) -> tuple[KeyRecord, str]:
    """Give a key made by ``relay keys`` or the API a new secret; the key and the secret (shown once). The old
    secret stops working as soon as running Relays reload their keys (``[store] key_refresh``): no overlap.
    KeyNotFound, or KeyRefused for a key of relay.toml (its secret is in the file)."""
    secret = stored.new_secret()
    record = await store.transaction(lambda tx: stored.rotate(tx, name, stored.digest(secret), time.time()))
    return record, secret
