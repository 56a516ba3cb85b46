"""Versioned schema migrations: an ordered list, applied at start, each version exactly once.

Rules (see docs/store.md): never edit or reorder a released migration, only append a new version;
each migration is given for SQLite and for PostgreSQL; statements are separated by ``;`` (so no ``;``
inside a statement). Amounts of credit are integers in micro-credits (1 credit = 1 000 000), times are
Unix seconds (float), days are ``YYYY-MM-DD`` (UTC) text, lists are JSON text.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from relay.store.errors import StoreError

if TYPE_CHECKING:
    from relay.store.tx import Tx

# pg_advisory_xact_lock key: any constant 64-bit number, the same for every Relay process.
PG_LOCK_KEY = 0x52454C4159_01  # "RELAY", 1

_V1_SQLITE = """
CREATE TABLE keys (
    name TEXT PRIMARY KEY,
    secret_digest TEXT NOT NULL UNIQUE,
    quota_micros INTEGER CHECK (quota_micros IS NULL OR quota_micros >= 0),
    expires_at REAL,
    models TEXT,
    rpm INTEGER CHECK (rpm IS NULL OR rpm >= 0),
    tpm INTEGER CHECK (tpm IS NULL OR tpm >= 0),
    channel_group TEXT,
    ip_allow TEXT,
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at REAL NOT NULL
);
CREATE TABLE quota_ledger (
    id INTEGER PRIMARY KEY,
    key_name TEXT NOT NULL,
    request_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('hold', 'settle', 'release', 'topup')),
    amount_micros INTEGER NOT NULL CHECK (amount_micros >= 0),
    created_at REAL NOT NULL,
    UNIQUE (request_id, kind)
);
CREATE INDEX quota_ledger_key ON quota_ledger (key_name, created_at);
CREATE TABLE request_log (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    request_id TEXT NOT NULL UNIQUE,
    key_name TEXT,
    dialect TEXT NOT NULL,
    route TEXT NOT NULL,
    requested_model TEXT,
    upstream_model TEXT,
    channel TEXT,
    attempts TEXT NOT NULL DEFAULT '[]',
    status INTEGER NOT NULL,
    error_kind TEXT,
    stream INTEGER NOT NULL DEFAULT 0 CHECK (stream IN (0, 1)),
    latency_ms REAL NOT NULL,
    ttft_ms REAL,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cost_micros INTEGER NOT NULL DEFAULT 0,
    client_addr TEXT
);
CREATE INDEX request_log_time ON request_log (time);
CREATE INDEX request_log_key ON request_log (key_name, time);
CREATE TABLE daily_totals (
    day TEXT NOT NULL,
    key_name TEXT NOT NULL,
    model TEXT NOT NULL,
    channel TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cost_micros INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, key_name, model, channel)
)
"""

_V1_POSTGRES = """
CREATE TABLE keys (
    name TEXT PRIMARY KEY,
    secret_digest TEXT NOT NULL UNIQUE,
    quota_micros BIGINT CHECK (quota_micros IS NULL OR quota_micros >= 0),
    expires_at DOUBLE PRECISION,
    models TEXT,
    rpm INTEGER CHECK (rpm IS NULL OR rpm >= 0),
    tpm BIGINT CHECK (tpm IS NULL OR tpm >= 0),
    channel_group TEXT,
    ip_allow TEXT,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE quota_ledger (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_name TEXT NOT NULL,
    request_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('hold', 'settle', 'release', 'topup')),
    amount_micros BIGINT NOT NULL CHECK (amount_micros >= 0),
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (request_id, kind)
);
CREATE INDEX quota_ledger_key ON quota_ledger (key_name, created_at);
CREATE TABLE request_log (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time DOUBLE PRECISION NOT NULL,
    request_id TEXT NOT NULL UNIQUE,
    key_name TEXT,
    dialect TEXT NOT NULL,
    route TEXT NOT NULL,
    requested_model TEXT,
    upstream_model TEXT,
    channel TEXT,
    attempts TEXT NOT NULL DEFAULT '[]',
    status INTEGER NOT NULL,
    error_kind TEXT,
    stream BOOLEAN NOT NULL DEFAULT FALSE,
    latency_ms DOUBLE PRECISION NOT NULL,
    ttft_ms DOUBLE PRECISION,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    cost_micros BIGINT NOT NULL DEFAULT 0,
    client_addr TEXT
);
CREATE INDEX request_log_time ON request_log (time);
CREATE INDEX request_log_key ON request_log (key_name, time);
CREATE TABLE daily_totals (
    day TEXT NOT NULL,
    key_name TEXT NOT NULL,
    model TEXT NOT NULL,
    channel TEXT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    cost_micros BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, key_name, model, channel)
)
"""

# Version 2: where a key comes from (relay.toml or ``relay keys``) and when it last changed; ``meta``, whose
# ``keys_version`` moves with every key change (processes reload their copy of the keys when it does);
# ``rate_windows``, the requests and tokens of a key in one minute (minute = floor(unix time / 60)); on SQLite
# WITHOUT ROWID: one b-tree to write per admission, not a table and its key's index.
_V2_SQLITE = """
ALTER TABLE keys ADD COLUMN source TEXT NOT NULL DEFAULT 'cli' CHECK (source IN ('config', 'cli'));
ALTER TABLE keys ADD COLUMN updated_at REAL;
UPDATE keys SET updated_at = created_at;
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE rate_windows (
    key_name TEXT NOT NULL,
    minute INTEGER NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_name, minute)
) WITHOUT ROWID
"""

_V2_POSTGRES = """
ALTER TABLE keys ADD COLUMN source TEXT NOT NULL DEFAULT 'cli' CHECK (source IN ('config', 'cli'));
ALTER TABLE keys ADD COLUMN updated_at DOUBLE PRECISION;
UPDATE keys SET updated_at = created_at;
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
CREATE TABLE rate_windows (
    key_name TEXT NOT NULL,
    minute BIGINT NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    tokens BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_name, minute)
)
"""

# Version 3: how each logged exchange ended, and the operator's account of its error (redacted).
_V3 = """
ALTER TABLE request_log ADD COLUMN end_kind TEXT;
ALTER TABLE request_log ADD COLUMN error_detail TEXT
"""

# Version 4: quota leases (docs/store.md, "Leases"). A process reserves a slice of a key's balance
# (``amount_micros`` taken, ``settled_micros`` of it charged since: the reservation is the difference) and
# admits requests against it in memory; ``expires_at`` lets another process reclaim the slice of one that
# crashed. ``minute`` and ``slots`` show the rate-limit slots it took in the store's window of that minute;
# ``recall`` asks its owner to give back what it has free (another process could not cover a request).
_V4_SQLITE = """
CREATE TABLE quota_leases (
    lease_id TEXT PRIMARY KEY,
    key_name TEXT NOT NULL,
    owner TEXT NOT NULL,
    amount_micros INTEGER NOT NULL DEFAULT 0 CHECK (amount_micros >= 0),
    settled_micros INTEGER NOT NULL DEFAULT 0 CHECK (settled_micros >= 0),
    minute INTEGER NOT NULL DEFAULT 0,
    slots INTEGER NOT NULL DEFAULT 0,
    recall INTEGER NOT NULL DEFAULT 0 CHECK (recall IN (0, 1)),
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX quota_leases_key ON quota_leases (key_name);
CREATE INDEX quota_leases_owner ON quota_leases (owner)
"""

_V4_POSTGRES = """
CREATE TABLE quota_leases (
    lease_id TEXT PRIMARY KEY,
    key_name TEXT NOT NULL,
    owner TEXT NOT NULL,
    amount_micros BIGINT NOT NULL DEFAULT 0 CHECK (amount_micros >= 0),
    settled_micros BIGINT NOT NULL DEFAULT 0 CHECK (settled_micros >= 0),
    minute BIGINT NOT NULL DEFAULT 0,
    slots BIGINT NOT NULL DEFAULT 0,
    recall INTEGER NOT NULL DEFAULT 0 CHECK (recall IN (0, 1)),
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX quota_leases_key ON quota_leases (key_name);
CREATE INDEX quota_leases_owner ON quota_leases (owner)
"""

# Version 5: the Responses API's state (docs/apis/responses_state.md). ``stored_responses``: the responses Relay
# keeps for channels that keep none (the answer was converted): who owns it (a key's name), the request's input
# items (with those of the chain it continued) and instructions, the output items, the usage and the whole
# Response object as the client got it, all JSON text. ``response_affinity``: a response an OpenAI Responses
# upstream keeps itself, and the channel that has it, so that a follow-up and a retrieval go back there.
_V5_SQLITE = """
CREATE TABLE stored_responses (
    id TEXT PRIMARY KEY,
    key_name TEXT NOT NULL,
    channel TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at REAL NOT NULL,
    status TEXT NOT NULL,
    previous_response_id TEXT,
    instructions TEXT,
    input_items TEXT NOT NULL,
    output_items TEXT NOT NULL,
    usage TEXT,
    response TEXT NOT NULL
);
CREATE INDEX stored_responses_created ON stored_responses (created_at);
CREATE TABLE response_affinity (
    id TEXT PRIMARY KEY,
    key_name TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX response_affinity_created ON response_affinity (created_at)
"""

_V5_POSTGRES = """
CREATE TABLE stored_responses (
    id TEXT PRIMARY KEY,
    key_name TEXT NOT NULL,
    channel TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    previous_response_id TEXT,
    instructions TEXT,
    input_items TEXT NOT NULL,
    output_items TEXT NOT NULL,
    usage TEXT,
    response TEXT NOT NULL
);
CREATE INDEX stored_responses_created ON stored_responses (created_at);
CREATE TABLE response_affinity (
    id TEXT PRIMARY KEY,
    key_name TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX response_affinity_created ON response_affinity (created_at)
"""

# Version 6: objects an upstream keeps for a key (docs/apis/files_batches.md): OpenAI files and batches, Anthropic
# message batches. Who owns each (a key's name), the channel that has it (later calls go there), its model (a
# batch's, for its price), the object it came from (a batch's output file: the batch), the object as last seen
# (JSON text, for the listings), and when its usage was settled (NULL: not yet).
_V6 = """
CREATE TABLE upstream_objects (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    key_name TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_at {real} NOT NULL,
    model TEXT,
    parent TEXT,
    object TEXT NOT NULL,
    settled_at {real}
);
CREATE INDEX upstream_objects_owner ON upstream_objects (key_name, kind, created_at)
"""

# Version 7: the units of the APIs beside generation, in the request log and the daily totals (docs/gateway.md):
# images made (and the size/quality they were priced at), seconds of audio, characters spoken, and requests
# billed as units (``request_units``: ``daily_totals.requests`` already counts the requests logged). One column
# per unit rather than one unit/amount pair: a request can be billed in two (a Gemini answer's tokens and images).
_V7 = """
ALTER TABLE request_log ADD COLUMN images {int} NOT NULL DEFAULT 0;
ALTER TABLE request_log ADD COLUMN image_size TEXT;
ALTER TABLE request_log ADD COLUMN seconds {real} NOT NULL DEFAULT 0;
ALTER TABLE request_log ADD COLUMN characters {int} NOT NULL DEFAULT 0;
ALTER TABLE request_log ADD COLUMN request_units {int} NOT NULL DEFAULT 0;
ALTER TABLE daily_totals ADD COLUMN images {int} NOT NULL DEFAULT 0;
ALTER TABLE daily_totals ADD COLUMN seconds {real} NOT NULL DEFAULT 0;
ALTER TABLE daily_totals ADD COLUMN characters {int} NOT NULL DEFAULT 0;
ALTER TABLE daily_totals ADD COLUMN request_units {int} NOT NULL DEFAULT 0
"""

# A background response's stream events (a JSON list), replayed by ``GET /v1/responses/{id}?stream=true``.
_V8_RESPONSE_EVENTS = "ALTER TABLE stored_responses ADD COLUMN events TEXT"

# Version 9: the Conversations API (docs/apis/responses_state.md), kept by Relay for every channel. ``conversations``:
# one per conversation, its owner (a key's name), its metadata (JSON text), when it was made and last changed (the
# retention counts from ``updated_at``) and the next item's position. ``conversation_items``: its items in order
# (the item as JSON text, with its id).
_V9_CONVERSATIONS = """
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    key_name TEXT NOT NULL,
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL,
    metadata TEXT NOT NULL,
    next_position {int} NOT NULL DEFAULT 0
);
CREATE INDEX conversations_updated ON conversations (updated_at);
CREATE TABLE conversation_items (
    conversation_id TEXT NOT NULL,
    position {int} NOT NULL,
    id TEXT NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (conversation_id, position),
    UNIQUE (conversation_id, id)
)
"""

# Version 10: admin keys made with ``relay admin-keys create`` (docs/admin.md), beside relay.toml's ``[[admin_keys]]``:
# the name, the digest of the secret (never the secret), the role, whether it is disabled, when it was made and last
# changed. ``meta``'s ``admin_keys_version`` moves with every change (relay/store/admin_keys.py).
_V10_ADMIN_KEYS = """
CREATE TABLE admin_keys (
    name TEXT PRIMARY KEY,
    secret_digest TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    disabled {bool} NOT NULL DEFAULT {false},
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL
)
"""

# Version 11: channels kept in the store (docs/admin.md), beside relay.toml's ``[[channels]]``. ``store_channels``: one
# per channel made through the admin API, its ``[[channels]]`` table as JSON text (``${VAR}`` references kept as
# written), whether it is enabled, when it was made and last changed. ``channel_states``: relay.toml channels
# disabled (or enabled again) at run time, by name. ``meta``'s ``channels_version`` moves with every change of
# either (relay/store/channels.py), so every process rebuilds its channels within ``[store] key_refresh``.
_V11_CHANNELS = """
CREATE TABLE store_channels (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    enabled {bool} NOT NULL DEFAULT {true},
    created_at {real} NOT NULL,
    updated_at {real} NOT NULL
);
CREATE TABLE channel_states (
    name TEXT PRIMARY KEY,
    enabled {bool} NOT NULL,
    updated_at {real} NOT NULL
)
"""

# Version 12: the request a logged request was made for (``parent_id``: a task endpoint's model calls, docs/utility.md),
# indexed to list a task's calls.
_V12_PARENT_ID = """
ALTER TABLE request_log ADD COLUMN parent_id TEXT;
CREATE INDEX request_log_parent ON request_log (parent_id)
"""

# (version, SQL for SQLite, SQL for PostgreSQL): strictly increasing from 1; append only.
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, _V1_SQLITE, _V1_POSTGRES),
    (2, _V2_SQLITE, _V2_POSTGRES),
    (3, _V3, _V3),
    (4, _V4_SQLITE, _V4_POSTGRES),
    (5, _V5_SQLITE, _V5_POSTGRES),
    (6, _V6.format(real="REAL"), _V6.format(real="DOUBLE PRECISION")),
    (7, _V7.format(int="INTEGER", real="REAL"), _V7.format(int="BIGINT", real="DOUBLE PRECISION")),
    (8, _V8_RESPONSE_EVENTS, _V8_RESPONSE_EVENTS),
    (
        9,
        _V9_CONVERSATIONS.format(int="INTEGER", real="REAL"),
        _V9_CONVERSATIONS.format(int="BIGINT", real="DOUBLE PRECISION"),
    ),
    (
        10,
        _V10_ADMIN_KEYS.format(bool="INTEGER", false="0 CHECK (disabled IN (0, 1))", real="REAL"),
        _V10_ADMIN_KEYS.format(bool="BOOLEAN", false="FALSE", real="DOUBLE PRECISION"),
    ),
    (
        11,
        _V11_CHANNELS.format(bool="INTEGER", true="1 CHECK (enabled IN (0, 1))", real="REAL"),
        _V11_CHANNELS.format(bool="BOOLEAN", true="TRUE", real="DOUBLE PRECISION"),
    ),
    (12, _V12_PARENT_ID, _V12_PARENT_ID),
]

LATEST = MIGRATIONS[-1][0]

TABLES = (
    "keys",
    "quota_ledger",
    "request_log",
    "daily_totals",
    "meta",
    "rate_windows",
    "quota_leases",
    "stored_responses",
    "response_affinity",
    "upstream_objects",
    "conversations",
    "conversation_items",
    "admin_keys",
    "store_channels",
    "channel_states",
)

_SCHEMA_VERSION = {
    "sqlite": "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)",
    "postgresql": "CREATE TABLE IF NOT EXISTS schema_version "
    "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)",
}


def statements(sql: str) -> list[str]:
    """A migration's statements, split on ``;``."""
    return [part.strip() for part in sql.split(";") if part.strip()]


def _lock(tx: Tx) -> None:
    # SQLite: the transaction began with BEGIN IMMEDIATE, which already holds the one write lock.
    if tx.backend == "postgresql":
        tx.execute("SELECT pg_advisory_xact_lock(?)", (PG_LOCK_KEY,))


def current_version(tx: Tx) -> int:
    _lock(tx)
    tx.execute(_SCHEMA_VERSION[tx.backend])
    return int(tx.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])


def apply(tx: Tx) -> int:
    """Apply every migration newer than the schema, in the caller's transaction, under a lock held to its end.

    A second process starting at the same moment waits on the lock, then finds nothing left to do.
    """
    current = current_version(tx)
    if current > LATEST:
        raise StoreError(
            f"the database schema is at version {current}, newer than this Relay knows ({LATEST}): upgrade Relay"
        )
    for version, sqlite_sql, postgres_sql in MIGRATIONS:
        if version <= current:
            continue
        for statement in statements(sqlite_sql if tx.backend == "sqlite" else postgres_sql):
            tx.execute(statement)
        tx.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, time.time()))
    return LATEST
