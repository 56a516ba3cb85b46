"""Golden fixtures: every dialect pair, requests and responses, streaming and not, byte for byte.

Inputs (hand-written, never produced by our encoders):

- ``upstream/<dialect>/<case>.json`` / ``<case>.sse``: what each real provider sends;
- ``requests/<dialect>/<case>.json``: what each client sends. Gemini's model and stream flag live in
  the URL: the harness uses ``GEMINI_MODEL`` and streams the cases whose name ends in ``_stream``.

Outputs (``expected/``, written by ``python -m tests.golden.harness --update``, compared by
``tests/test_golden.py``):

- ``requests/<client>__to__<upstream>/<case>.json``: ``decode_request`` then ``encode_request(req, UP_MODEL)``
  (``same_dialect=True`` when the two dialects are one: the identity through the IR keeps ``extra``);
- ``responses/<upstream>__to__<client>/<case>.json``: ``convert_response`` of the upstream body;
- ``responses/<upstream>__to__<client>/<case>.sse``: ``StreamConverter`` fed the upstream stream frame by frame;
- ``<case>.error.json`` in place of either (``<case>.body-error.json`` for a body) when the conversion
  raises a ``RelayError``: ``{"status", "message", "code"}``.

The client request a response is converted for is the client's ``respond`` case (``respond_stream`` for
streams); ``now`` is ``NOW``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import orjson

from relay.dialects import ir
from relay.errors import RelayError
from relay.http.sse import Parser

ROOT = Path(__file__).resolve().parent
UPSTREAM = ROOT / "upstream"
REQUESTS = ROOT / "requests"
EXPECTED = ROOT / "expected"

DIALECTS: tuple[ir.Dialect, ...] = ("openai_chat", "openai_responses", "anthropic", "gemini")
NOW = 1700000000
UP_MODEL = "up-model"
GEMINI_MODEL = "gemini-2.5-flash"


class CodecMissing(Exception):
    """A dialect's codec module does not exist (yet)."""


def codec(dialect: str) -> ModuleType:
    """The codec module of ``dialect`` (``relay.dialects.codecs.CODECS``, or the module alone while
    another codec of the registry is still missing)."""
    try:
        from relay.dialects.codecs import CODECS
    except ImportError:
        try:
            return importlib.import_module(f"relay.dialects.{dialect}")
        except ImportError as exc:
            raise CodecMissing(f"relay.dialects.{dialect}: {exc}") from None
    return CODECS[dialect]  # type: ignore[index]


# ---- inputs ----------------------------------------------------------------------------------------


def is_stream_case(case: str) -> bool:
    return case.endswith("_stream")


def request_cases(dialect: str) -> list[str]:
    return sorted(path.stem for path in (REQUESTS / dialect).glob("*.json"))


def upstream_cases(dialect: str) -> list[tuple[str, str]]:
    """``(case, kind)`` of each upstream fixture, kind ``json`` (a body) or ``sse`` (a stream)."""
    return sorted(
        (path.stem, path.suffix[1:]) for path in (UPSTREAM / dialect).iterdir() if path.suffix in (".json", ".sse")
    )


def decode_client_request(dialect: str, case: str) -> ir.Request:
    body = (REQUESTS / dialect / f"{case}.json").read_bytes()
    module = codec(dialect)
    if dialect == "gemini":
        return module.decode_request(body, model=GEMINI_MODEL, stream=is_stream_case(case))
    return module.decode_request(body)


def frames(data: bytes) -> list[bytes]:
    """The stream cut into its SSE events, each with its terminator (a cut-off tail stays one piece)."""
    parser = Parser()
    out = [event.raw for event in parser.feed(data)]
    rest = data[sum(map(len, out)) :]
    if rest:
        out.append(rest)
    return out


def single_bytes(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


# ---- conversions -------------------------------------------------------------------------------------


def error_json(error: RelayError) -> bytes:
    """A RelayError as stored in ``*.error.json``."""
    payload = {"status": error.status, "message": error.message, "code": error.code}
    return orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n"


def convert_request(client: str, upstream: str, case: str) -> tuple[str, bytes]:
    """``(file name, bytes)`` of one client request converted for an upstream."""
    try:
        req = decode_client_request(client, case)
        same = client == upstream  # identity through the IR keeps the client's extra fields
        return f"{case}.json", codec(upstream).encode_request(req, UP_MODEL, same_dialect=same)
    except RelayError as error:
        return f"{case}.error.json", error_json(error)


def response_request(client: str, stream: bool) -> ir.Request:
    return decode_client_request(client, "respond_stream" if stream else "respond")


def convert_body(upstream: str, client: str, case: str) -> tuple[str, bytes]:
    from relay.dialects.convert import convert_response

    body = (UPSTREAM / upstream / f"{case}.json").read_bytes()
    try:
        req = response_request(client, stream=False)
        data, _ = convert_response(body, codec(upstream), codec(client), req, now=NOW)
        return f"{case}.json", data
    except RelayError as error:
        return f"{case}.body-error.json", error_json(error)


def run_stream(upstream: str, client: str, chunks: list[bytes]) -> tuple[list[bytes], RelayError | None]:
    """The client's output for each upstream chunk (the last item is ``close()``'s), or the error raised."""
    from relay.dialects.convert import StreamConverter

    req = response_request(client, stream=True)
    converter = StreamConverter(codec(upstream).StreamDecoder(), codec(client).StreamEncoder(req), NOW)
    out: list[bytes] = []
    try:
        for chunk in chunks:
            out.append(converter.feed(chunk))
        out.append(converter.close())
    except RelayError as error:
        return out, error
    return out, None


def convert_stream(
    upstream: str, client: str, case: str, split: Callable[[bytes], list[bytes]] = frames
) -> tuple[str, bytes]:
    data = (UPSTREAM / upstream / f"{case}.sse").read_bytes()
    out, error = run_stream(upstream, client, split(data))
    if error is not None:
        return f"{case}.error.json", error_json(error)
    return f"{case}.sse", b"".join(out)


# ---- the catalogue -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One golden conversion: its id, the folder its expected file lives in, and how to compute it."""

    id: str
    folder: Path
    case: str
    compute: Callable[[], tuple[str, bytes]]
    #: The dialect whose SDK types the output must parse as, and whether it is a stream.
    client: str
    stream: bool
    #: The dialects whose codecs the conversion needs.
    needs: tuple[str, ...]

    def possible_names(self) -> tuple[str, ...]:
        if self.folder.parent.name == "requests":
            return (f"{self.case}.json", f"{self.case}.error.json")
        if self.stream:
            return (f"{self.case}.sse", f"{self.case}.error.json")
        return (f"{self.case}.json", f"{self.case}.body-error.json")


def items() -> Iterator[Item]:
    for client in DIALECTS:
        for upstream in DIALECTS:
            folder = EXPECTED / "requests" / f"{client}__to__{upstream}"
            for case in request_cases(client):
                yield Item(
                    f"requests/{client}__to__{upstream}/{case}",
                    folder,
                    case,
                    lambda c=client, u=upstream, k=case: convert_request(c, u, k),
                    upstream,
                    False,
                    (client, upstream),
                )
    for upstream in DIALECTS:
        for client in DIALECTS:
            folder = EXPECTED / "responses" / f"{upstream}__to__{client}"
            for case, kind in upstream_cases(upstream):
                if kind == "json":
                    compute = lambda u=upstream, c=client, k=case: convert_body(u, c, k)  # noqa: E731
                else:
                    compute = lambda u=upstream, c=client, k=case: convert_stream(u, c, k)  # noqa: E731
                yield Item(
                    f"responses/{upstream}__to__{client}/{case}.{kind}",
                    folder,
                    case,
                    compute,
                    client,
                    kind == "sse",
                    (upstream, client),
                )


def expected_file(item: Item) -> Path | None:
    """The expected file present for ``item`` (the first of its possible names), or None."""
    for name in item.possible_names():
        path = item.folder / name
        if path.exists():
            return path
    return None


def stale_files() -> list[Path]:
    """Expected files no item can produce (a removed case or dialect)."""
    known = {item.folder / name for item in items() for name in item.possible_names()}
    return sorted(path for path in EXPECTED.rglob("*") if path.is_file() and path not in known)


# ---- readable output -------------------------------------------------------------------------------------


def render(data: bytes) -> str:
    """Bytes shown for a human: JSON pretty-printed, each SSE data line's JSON too."""
    try:
        return orjson.dumps(orjson.loads(data), option=orjson.OPT_INDENT_2).decode() + "\n"
    except orjson.JSONDecodeError:
        pass
    lines: list[str] = []
    for line in data.decode("utf-8", "replace").splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        if stripped.startswith("data: ") and stripped[6:7] in "{[":
            try:
                pretty = orjson.dumps(orjson.loads(stripped[6:]), option=orjson.OPT_INDENT_2).decode()
            except orjson.JSONDecodeError:
                lines.append(repr(line) + "\n")
                continue
            lines.append("data: " + pretty.replace("\n", "\n      ") + "\n")
        else:
            lines.append(repr(line) + "\n")
    return "".join(lines)


# ---- command line --------------------------------------------------------------------------------------


def update(verbose: bool = False) -> int:
    """Rewrite every expected file (removing stale ones); returns the number of items that crashed."""
    crashed = 0
    written = 0
    produced: set[Path] = set()
    for item in items():
        try:
            name, data = item.compute()
        except CodecMissing as exc:
            print(f"skip {item.id}: {exc}", file=sys.stderr)
            for old in item.possible_names():
                produced.add(item.folder / old)  # keep what was there
            continue
        except Exception as exc:
            crashed += 1
            print(f"CRASH {item.id}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        path = item.folder / name
        produced.add(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
            written += 1
            if verbose:
                print(f"wrote {path.relative_to(ROOT)}")
    for path in EXPECTED.rglob("*"):
        if path.is_file() and path not in produced:
            path.unlink()
            print(f"removed {path.relative_to(ROOT)}")
    print(f"{written} expected files written, {crashed} crashed")
    return crashed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.golden.harness", description=__doc__.split("\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite tests/golden/expected/")
    parser.add_argument("--show", metavar="PATH", help="print an expected or fixture file, pretty")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.show:
        sys.stdout.write(render(Path(args.show).read_bytes()))
        return 0
    if args.update:
        return 1 if update(args.verbose) else 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
