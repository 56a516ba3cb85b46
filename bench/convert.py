"""``python -m bench.convert``: what converting a stream costs, per upstream chunk, for every pair of dialects.

In-process, no sockets: for each upstream dialect a representative stream (a reasoning block, a text
answer in many small deltas, a tool call whose arguments arrive in fragments, the finish with usage)
is written by that dialect's stream encoder, one event per chunk, as an upstream sends it. Then, for
each client dialect, the chunks go through ``StreamConverter`` (decode, convert, encode) and the
time per chunk is the median (and the minimum) over repeated rounds, every pair run once per round so that
machine noise hits all pairs alike. Same-dialect pairs are timed on the passthrough
path (``relay.endpoints.passthrough``): reading usage and looking for the terminal event.

Target: <= 15 us per chunk for every converting pair; passthrough of each dialect next to Chat's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from relay.dialects import ir
from relay.dialects.codecs import CODECS
from relay.dialects.convert import StreamConverter

DIALECTS: tuple[ir.Dialect, ...] = ("openai_chat", "openai_responses", "anthropic", "gemini")
TARGET_US = 15.0
TEXT_DELTAS = 48
ARGUMENT_FRAGMENTS = 16


def representative_events(dialect: ir.Dialect) -> list[ir.Event]:
    """The IR of a typical streamed answer; reasoning signed as ``dialect`` would sign it."""
    events: list[ir.Event] = [ir.Start("resp0123456789", "bench-model", 1_700_000_000, ir.Usage(input_tokens=120))]
    events += [ir.ReasoningStart(0, dialect=dialect), *(ir.ReasoningDelta(0, "think ") for _ in range(8))]
    if dialect in ("anthropic", "gemini"):
        events.append(ir.ReasoningSignature(0, "c2lnbmF0dXJl" * 8))
    events.append(ir.BlockEnd(0))
    events.append(ir.TextStart(1))
    events += [ir.TextDelta(1, f"word{i} ") for i in range(TEXT_DELTAS)]
    events.append(ir.BlockEnd(1))
    events.append(ir.ToolCallStart(2, "call_bench0", "get_weather"))
    fragments = ['{"city": "Par', 'is", "days": ', "3", ', "unit": "c', 'elsius"}']
    events += [ir.ToolCallDelta(2, fragments[i % len(fragments)]) for i in range(ARGUMENT_FRAGMENTS)]
    events.append(ir.BlockEnd(2))
    usage = ir.Usage(input_tokens=120, output_tokens=180, cached_tokens=20, reasoning_tokens=40)
    events.append(ir.Finish("tool_calls", usage))
    return events


def request(stream: bool = True) -> ir.Request:
    return ir.Request(
        model="bench-model",
        system=(ir.Text("You are terse."),),
        messages=(ir.Message("user", (ir.Text("Weather in Paris?"),)),),
        stream=stream,
        tools=(
            ir.Tool("get_weather", "Weather by city", {"type": "object", "properties": {"city": {"type": "string"}}}),
        ),
        extra={},
    )


def upstream_chunks(dialect: ir.Dialect) -> list[bytes]:
    """The representative stream as ``dialect``'s upstream sends it: one chunk per frame."""
    encoder = CODECS[dialect].StreamEncoder(request())
    chunks = [encoder.encode(event) for event in representative_events(dialect)]
    chunks.append(encoder.finish())
    return [chunk for chunk in chunks if chunk]


def time_once(run: Callable[[], None], chunks: int) -> float:
    """Microseconds per chunk of one run."""
    started = time.perf_counter()
    run()
    return (time.perf_counter() - started) / chunks * 1e6


def converting(source: ir.Dialect, client: ir.Dialect, chunks: Sequence[bytes]) -> Callable[[], None]:
    upstream_codec, client_codec = CODECS[source], CODECS[client]
    req = request()

    def run() -> None:
        converter = StreamConverter(upstream_codec.StreamDecoder(), client_codec.StreamEncoder(req), 1_700_000_000)
        for chunk in chunks:
            converter.feed(chunk)
        converter.close()

    return run


def passing(dialect: ir.Dialect, chunks: Sequence[bytes]) -> Callable[[], None]:
    from relay.endpoints.passthrough import Passthrough

    codec = CODECS[dialect]

    class _Exchange:
        channel = "bench"

    def run() -> None:
        watch = Passthrough(dialect, codec, _Exchange(), "bench-model", "bench-model")  # type: ignore[arg-type]
        for chunk in chunks:
            watch.step(chunk)

    return run


def measure(repeats: int) -> dict[str, Any]:
    """Every pair, ``repeats`` rounds; each round runs every pair once, so that machine noise hits all alike."""
    runs: list[tuple[ir.Dialect, ir.Dialect, int, Callable[[], None]]] = []
    for source in DIALECTS:
        chunks = upstream_chunks(source)
        for client in DIALECTS:
            run = passing(source, chunks) if source == client else converting(source, client, chunks)
            run()  # warm-up
            runs.append((source, client, len(chunks), run))
    samples: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for i, (_, _, chunks, run) in enumerate(runs):
            samples[i].append(time_once(run, chunks))
    rows = [
        {
            "upstream": source,
            "client": client,
            "chunks": chunks,
            "us_per_chunk": round(statistics.median(times), 2),
            "us_per_chunk_min": round(min(times), 2),
        }
        for (source, client, chunks, _), times in zip(runs, samples, strict=True)
    ]
    return {"rows": rows, "target_us": TARGET_US, "repeats": repeats}


def render(result: dict[str, Any]) -> str:
    lines = ["upstream -> client                      chunks  us/chunk (median, min)  target <= 15"]
    for row in result["rows"]:
        same = row["upstream"] == row["client"]
        verdict = "passthrough" if same else ("PASS" if row["us_per_chunk"] <= TARGET_US else "MISS")
        pair = f"{row['upstream']} -> {row['client']}"
        lines.append(
            f"{pair:<40}{row['chunks']:>6}  {row['us_per_chunk']:>8.2f} {row['us_per_chunk_min']:>8.2f}       {verdict}"
        )
    chat = next(r["us_per_chunk"] for r in result["rows"] if r["upstream"] == r["client"] == "openai_chat")
    for row in result["rows"]:
        if row["upstream"] == row["client"] and row["upstream"] != "openai_chat":
            lines.append(f"passthrough {row['upstream']}: {row['us_per_chunk'] / chat:.2f}x Chat's per chunk")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.convert", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="timed runs per pair (default 200)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = measure(args.repeats)
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
