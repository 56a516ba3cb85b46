"""``relay serve`` in front of ``relay mock-upstream`` for the rerank and moderations tests, and the request log.

Channels, all on the one mock upstream but ``inproc`` (Relay's in-process mock) and ``down`` (a port nothing
listens on): (name: type, ``rerank_api``: models)

- ``jina``: openai, jina: ``jina-rerank``, ``spare-rerank``
- ``cohere``: openai, cohere: ``cohere-rerank``
- ``voyage``: openai, voyage: ``voyage-rerank``
- ``moderation``: openai: ``omni-moderation-*``, ``text-moderation-*``
- ``claude``: anthropic: ``claude-rerank``, ``claude-moderation``
- ``inproc``: mock (OpenAI's dialect), cohere: ``inproc-rerank``, ``inproc-moderation`` (mapped to
  ``omni-moderation-2024-09-26``)
- ``down``: openai, cohere, priority 1 (tried first): ``spare-rerank``

Every ``*-rerank`` model costs ``INPUT_PRICE`` credits per million input tokens; the log is in a SQLite file.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import KEY, process
from tests.helpers import MOCK_ARGS

#: Credits per million input tokens of the rerank models: micro-credits per token.
INPUT_PRICE = 1000
RERANK_APIS = {"jina": "jina-rerank", "cohere": "cohere-rerank", "voyage": "voyage-rerank"}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def channel(name: str, kind: str, base_url: str, models: list[str], extra: str = "") -> str:
    quoted = ", ".join(f'"{m}"' for m in models)
    return f"""
[[channels]]
name = "{name}"
type = "{kind}"
base_url = "{base_url}"
api_key = "sk-upstream-{name}"
models = [{quoted}]
{extra}
[channels.timeouts]
connect = 2
first_byte = 10
"""


def relay_toml(upstream: str, store: Path) -> str:
    channels = "".join(
        (
            channel("jina", "openai", f"{upstream}/v1", ["jina-rerank", "spare-rerank"], 'rerank_api = "jina"'),
            channel("cohere", "openai", f"{upstream}/v1", ["cohere-rerank"], 'rerank_api = "cohere"'),
            channel("voyage", "openai", f"{upstream}/v1", ["voyage-rerank"], 'rerank_api = "voyage"'),
            channel("moderation", "openai", f"{upstream}/v1", ["omni-moderation-*", "text-moderation-*"]),
            channel("claude", "anthropic", upstream, ["claude-rerank", "claude-moderation"]),
            channel(
                "inproc",
                "mock",
                "",
                ["inproc-rerank", "inproc-moderation"],
                'rerank_api = "cohere"\nmodel_map = { "inproc-moderation" = "omni-moderation-2024-09-26" }',
            ),
            channel(
                "down",
                "openai",
                f"http://127.0.0.1:{closed_port()}/v1",
                ["spare-rerank"],
                'rerank_api = "cohere"\npriority = 1',
            ),
        )
    )
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "sqlite:///{store}"
log_interval = 0.05

[routing]
key_rest = 0.001
breaker_failures = 1000

[[prices]]
model = "*-rerank"
input = {INPUT_PRICE}
output = 0
{channels}
[[keys]]
name = "tests"
key = "{KEY}"
"""


@contextmanager
def relay_with_mock(folder: Path) -> Iterator[tuple[str, Path]]:
    """(``http://host:port`` of Relay, its SQLite store) while both subprocesses run."""
    store = folder / "relay.db"
    with process(*MOCK_ARGS) as (_, upstream):
        config = folder / "relay.toml"
        config.write_text(relay_toml(f"http://{upstream}", store))
        with process("serve", "--config", str(config), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}", store


def log_row(store: Path, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
    """The request log's row of ``request_id``, once the recorder wrote it."""
    deadline = time.monotonic() + timeout
    while True:
        with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM request_log WHERE request_id = ?", (request_id,)).fetchone()
        if row is not None:
            return dict(row)
        if time.monotonic() > deadline:
            raise AssertionError(f"no request log row for {request_id} within {timeout}s")
        time.sleep(0.05)
