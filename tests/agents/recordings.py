"""The golden fixtures: the requests the real agent CLIs sent to Relay, one JSON file each, in ``fixtures/``.

A file holds where the request came from (``client``, its ``version``, the channel it was recorded on, the
case and its place in the run) and the request itself as the client sent it: ``method``, ``path``, the headers
but the credential and the hop-by-hop ones, the header that carried the credential (``auth_header``), and the
JSON body unchanged. ``run_real_clients.sh --refresh-fixtures`` rewrites them; ``test_agent_replay.py`` replays
them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from tests.agents.proxy import Exchange

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@attrs.frozen
class Fixture:
    name: str
    client: str
    version: str
    #: The channel (upstream dialect) the request was recorded on.
    channel: str
    case: str
    #: The request's place in its run, from 1.
    seq: int
    #: The status Relay answered when it was recorded (the replay expects 200 whatever it was).
    recorded_status: int | None
    method: str
    path: str
    headers: dict[str, str]
    auth_header: str
    body: Any

    @property
    def streamed(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True


def fixture_name(client: str, channel: str, case: str, seq: int) -> str:
    return f"{client}-{channel}-{case}-{seq:02d}"


def as_fixture(exchange: Exchange, *, client: str, version: str, channel: str, case: str, seq: int) -> dict[str, Any]:
    return {
        "client": client,
        "version": version,
        "channel": channel,
        "case": case,
        "seq": seq,
        "recorded_status": exchange.status,
        "auth_header": exchange.auth_header,
        **exchange.record(),
    }


def write_fixtures(records: list[dict[str, Any]], folder: Path = FIXTURES) -> list[Path]:
    """Replace every fixture in ``folder`` by ``records`` (each a dict of ``as_fixture``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.json"):
        old.unlink()
    written = []
    for record in records:
        path = folder / f"{fixture_name(record['client'], record['channel'], record['case'], record['seq'])}.json"
        path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
        written.append(path)
    return written


def load_fixtures(folder: Path = FIXTURES) -> list[Fixture]:
    fixtures = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        fixtures.append(
            Fixture(
                name=path.stem,
                client=data["client"],
                version=data["version"],
                channel=data["channel"],
                case=data["case"],
                seq=data["seq"],
                recorded_status=data.get("recorded_status"),
                method=data["method"],
                path=data["path"],
                headers=data["headers"],
                auth_header=data["auth_header"],
                body=data["body"],
            )
        )
    return fixtures
