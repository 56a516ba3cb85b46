"""The concurrency-1 lanes: every target and the direct path take turns request by request, in rounds
(bench.suite.stats.interleaving), so that whatever the machine does meanwhile hits all of them alike.

``latency``      plain answers (shape ``instant``): p50/p90/p99/p99.9 of each, and what each adds to direct.
``long_prompt``  the same with a prompt of ``long_prompt_bytes`` (400 KB): the cost of reading a big body.
``stream``       streams of the run's shape (``fixed``: 64 tokens 10 ms apart): time to first token, the gaps
                 between tokens and the whole stream, each with what the target adds.
``convert``      each (client dialect, upstream dialect) route a target serves, verified (bench.targets: a
                 Relay has one channel per dialect), streams of shape ``instant``: TTFT and what the conversion
                 adds to direct in the client's dialect.
"""

from __future__ import annotations

from typing import Any

from bench.suite.dialects import long_prompt
from bench.suite.rig import (
    Endpoint,
    MockLike,
    Settings,
    Step,
    TargetLike,
    endpoint,
    flags,
    mock_endpoint,
    run_loadgen,
)
from bench.suite.stats import added, interleaving, sketch, summary


def baselines(targets: list[TargetLike], mock: MockLike, dialects: set[str]) -> dict[str, Endpoint]:
    """The direct path in each dialect: the ``direct`` target when there is one, else the neutral mock."""
    direct = next((t for t in targets if t.kind == "direct"), None)
    out: dict[str, Endpoint] = {}
    for dialect in sorted(dialects):
        base = endpoint(direct, dialect) if direct is not None else mock_endpoint(mock, dialect)
        label = "direct" if direct is not None and dialect == direct.dialect else f"direct/{dialect}"
        out[dialect] = base.renamed(label)
    return out


def measured(targets: list[TargetLike]) -> list[TargetLike]:
    """The targets other than the direct one (what "added" is computed for)."""
    return [t for t in targets if t.kind != "direct"]


def _pids(targets: list[TargetLike], mock: MockLike) -> dict[str, int]:
    pids = {"mock": mock.pid}
    for t in measured(targets):
        for i, pid in enumerate(t.pids):
            pids[f"target:{t.name}:{i}"] = pid
    return pids


def _rounds(
    paths: list[dict[str, Any]],
    settings: Settings,
    rounds: int,
    pids: dict[str, int],
    warmup: int,
) -> dict[str, Any]:
    names = [p["name"] for p in paths]
    spec = {
        "mode": "rounds",
        "targets": paths,
        "warmup": warmup,
        "order": interleaving(names, warmup + rounds),
        "pids": pids,
    }
    return run_loadgen(spec, settings.plan["loadgen"], settings.timeout)


def _summaries(raw: dict[str, Any], stream: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"errors": raw["errors"], "error_kinds": raw["error_kinds"]}
    keys = ("total", "ttft", "gaps") if stream else ("total",)
    for key in keys:
        out[key] = summary(raw[key])
        out[f"{key}_sketch"] = sketch(raw[key])
    return out


def _lane(
    name: str,
    targets: list[TargetLike],
    mock: MockLike,
    settings: Settings,
    step: Step,
    *,
    shape: str,
    stream: bool,
    rounds: int,
    warmup: int,
    prompt: str | None = None,
) -> dict[str, Any]:
    chosen = measured(targets)
    base = baselines(targets, mock, {t.dialect for t in chosen} or {"openai_chat"})
    paths = [b.spec(b.name, shape, stream=stream, prompt=prompt) for b in base.values()]
    paths += [endpoint(t).spec(t.name, shape, stream=stream, prompt=prompt) for t in chosen]
    raw = _rounds(paths, settings, rounds, _pids(targets, mock), warmup)
    step(name)
    results: dict[str, Any] = {label: _summaries(r, stream) for label, r in raw["paths"].items()}
    keys = ("total", "ttft", "gaps") if stream else ("total",)
    for t in chosen:
        direct = results[base[t.dialect].name]
        results[t.name]["baseline"] = base[t.dialect].name
        results[t.name]["added"] = {k: added(results[t.name][k], direct[k]) for k in keys}
    return {
        "lane": name,
        "shape": shape,
        "stream": stream,
        "rounds": rounds,
        "results": results,
        "cpu": raw["cpu"],
        "flags": flags(name, "all", raw["cpu"], settings.plan),
    }


def latency(targets: list[TargetLike], mock: MockLike, settings: Settings, step: Step) -> dict[str, Any]:
    return _lane(
        "latency",
        targets,
        mock,
        settings,
        step,
        shape="instant",
        stream=False,
        rounds=settings.rounds,
        warmup=settings.warmup_rounds,
    )


def long_prompt_lane(targets: list[TargetLike], mock: MockLike, settings: Settings, step: Step) -> dict[str, Any]:
    prompt = long_prompt(settings.long_prompt_bytes)
    out = _lane(
        "long_prompt",
        targets,
        mock,
        settings,
        step,
        shape="instant",
        stream=False,
        rounds=settings.long_rounds,
        warmup=min(settings.warmup_rounds, settings.long_rounds),
        prompt=prompt,
    )
    out["prompt_bytes"] = len(prompt.encode())
    return out


def stream(targets: list[TargetLike], mock: MockLike, settings: Settings, step: Step) -> dict[str, Any]:
    return _lane(
        "stream",
        targets,
        mock,
        settings,
        step,
        shape=settings.shape,
        stream=True,
        rounds=settings.stream_rounds,
        warmup=min(settings.warmup_rounds, 2),
    )


def pairs(target: TargetLike) -> list[tuple[str, str]]:
    """Every (client dialect, upstream dialect) ``target`` serves, verified by bench.targets."""
    return target.pairs()


def convert(targets: list[TargetLike], mock: MockLike, settings: Settings, step: Step) -> dict[str, Any]:
    """Every (client dialect, upstream dialect) pair of every target that names its upstream models."""
    out: dict[str, Any] = {"lane": "convert", "shape": "instant", "stream": True, "results": {}, "flags": []}
    skipped: dict[str, str] = {}
    for t in measured(targets):
        ways = pairs(t)
        if not ways:
            skipped[t.name] = "the target serves no verified (client dialect, upstream dialect) route"
            continue
        base = baselines(targets, mock, {client for client, _ in ways})
        paths = [b.spec(b.name, "instant", stream=True) for b in base.values()]
        labels: dict[str, tuple[str, str]] = {}
        for client, up in ways:
            label = f"{t.name} {client}->{up}"
            labels[label] = (client, up)
            paths.append(endpoint(t, client, up).spec(label, "instant", stream=True))
        raw = _rounds(paths, settings, settings.convert_rounds, _pids(targets, mock), settings.warmup_rounds)
        step(f"convert {t.name}")
        rows: dict[str, Any] = {}
        for label, (client, up) in labels.items():
            got = _summaries(raw["paths"][label], True)
            direct = _summaries(raw["paths"][base[client].name], True)
            got.update(client=client, upstream=up, baseline=base[client].name)
            got["added"] = {k: added(got[k], direct[k]) for k in ("total", "ttft")}
            rows[label] = got
        out["results"][t.name] = rows
        out["flags"] += flags("convert", t.name, raw["cpu"], settings.plan)
    out["skipped"] = skipped
    out["rounds"] = settings.convert_rounds
    return out
