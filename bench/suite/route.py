"""Which benchmark ``python -m bench ARGS`` runs: the suite, or bench/run.py's older one.

bench/run.py keeps every flag it had: ``python -m bench legacy ARGS`` runs it, and so does any of the flags only it
has (``LEGACY_FLAGS``), so that every command written for it (docs/performance.md) still means what it meant. The
flags both share (``--quick``, ``--no-pin``, ``--lanes``) go to the suite unless one of the older flags is there.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Flags only bench/run.py (and bench/attack.py through it) has.
LEGACY_FLAGS = frozenset(
    {
        "--table",
        "--baseline",
        "--gateway",
        "--gateway-store",
        "--floor",
        "--profile",
        "--attack",
        "--concurrency",
        "--requests",
        "--duration",
        "--json",
        "--slowloris",
        "--stalled",
        "--stalled-bytes",
        "--stalled-frames",
        "--tree",
    }
)


def legacy(argv: Sequence[str]) -> bool:
    """Whether ``argv`` is meant for bench/run.py."""
    if argv and argv[0] == "legacy":
        return True
    return any(arg.split("=", 1)[0] in LEGACY_FLAGS for arg in argv)


def main(argv: Sequence[str]) -> int:
    if legacy(argv):
        from bench import run

        return run.main(list(argv[1:]) if argv and argv[0] == "legacy" else list(argv))
    from bench.suite import cli

    return cli.main(list(argv))
