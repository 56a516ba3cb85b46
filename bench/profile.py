"""Where Relay's CPU goes under load: ``py-spy record`` on the Relay process, summarised.

Used by ``python -m bench --profile`` (needs ``py-spy`` on PATH: ``pip install py-spy``; it is not a
project dependency). py-spy writes collapsed stacks (``--format raw``); this module totals them by
function (self and inclusive) and by package, as shares of the samples where Relay was on a CPU.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.procs import affinity

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")

#: Leaf frames grouped by the code they belong to, most specific first.
GROUPS: tuple[tuple[str, str], ...] = (
    ("relay/http/", "relay.http (server, h11 glue)"),
    ("relay/upstream/", "relay.upstream (channels, the HTTP/1.1 pool)"),
    ("relay/", "relay (app, endpoints, codecs)"),
    ("h11/", "h11"),
    ("httpcore/", "httpcore"),
    ("httpx/", "httpx"),
    ("anyio/", "anyio"),
    ("sniffio/", "anyio"),
    ("trio/", "trio"),
    ("outcome/", "trio"),
    ("logging/", "stdlib logging"),
    ("socket.py", "stdlib socket"),
    ("contextlib.py", "stdlib contextlib"),
)


def available() -> bool:
    return shutil.which("py-spy") is not None


class Recorder:
    """``py-spy record`` attached to a pid until ``stop``."""

    def __init__(self, pid: int, output: Path, cpus: set[int] | None, rate: int = 250) -> None:
        self.output = output
        exe = shutil.which("py-spy")
        if exe is None:
            raise RuntimeError("py-spy is not installed (pip install py-spy)")
        argv = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--function"]
        self.proc = subprocess.Popen(
            [*argv, "--output", str(output)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=affinity(cpus),
        )

    def stop(self) -> str:
        """Stop sampling (py-spy writes its file on SIGINT); py-spy's own messages."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err.decode("utf-8", "replace")


def _parse(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), ""
    return match["func"], match["file"]


def group_of(file: str) -> str:
    for marker, name in GROUPS:
        if marker in file:
            return name
    return "other (stdlib, orjson, ...)"


def summarise(path: Path, top: int = 20) -> dict[str, Any]:
    """Self and inclusive shares per function, and self share per package, from collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_parse(f) for f in stack.split(";")]
        if frames and frames[0][1] == "" and frames[0][0].startswith(("process", "thread")):
            frames = frames[1:]  # a leading "process/thread" pseudo-frame
        if not frames:
            continue
        total += count
        func, file = frames[-1]
        own[f"{func} ({file})"] += count
        groups[group_of(file)] += count
        for name in {f"{fn} ({fl})" for fn, fl in frames}:
            inclusive[name] += count

    def shares(counter: Counter[str], n: int) -> list[dict[str, Any]]:
        return [{"name": k, "pct": round(100 * v / total, 1)} for k, v in counter.most_common(n)]

    return {
        "samples": total,
        "self_by_group": shares(groups, len(groups)),
        "self_top": shares(own, top),
        "inclusive_top": shares(inclusive, top + 10),
    }
