"""The C neutral mock (cmock.c) built for use: compiled by gcc, its frame table written by table.mjs from shapes.mjs.

Both land in ``<cache>/neutral-cmock/<key>/`` where the key hashes cmock.c, table.mjs, shapes.mjs, the seed and the
compiler's version, so a changed source or shape is rebuilt and an unchanged one costs nothing; ``build.txt`` there
records the exact commands. Files are written under temporary names and renamed into place, so that two runs
building at once never see half a binary.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.procs import BenchError

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "cmock.c"
TABLE_SCRIPT = HERE / "table.mjs"
SHAPES = HERE / "shapes.mjs"
#: Standard C with GNU extensions (memmem, accept4), optimised, every warning an error so a broken build is loud.
CFLAGS = ("-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror")


@dataclass(frozen=True)
class CMock:
    """A built C mock: its binary and the frame table it loads."""

    binary: Path
    table: Path


def unavailable() -> str | None:
    """Why the C mock cannot be built here (None: it can)."""
    if shutil.which("gcc") is None:
        return "gcc not found (apt-get install gcc builds the C mock)"
    if shutil.which("node") is None:
        return "node not found (it writes the C mock's frame table from shapes.mjs)"
    return None


def _key(gcc: str, seed: int) -> str:
    version = subprocess.run([gcc, "--version"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
    digest = hashlib.sha256()
    for part in (SOURCE.read_bytes(), TABLE_SCRIPT.read_bytes(), SHAPES.read_bytes(), str(seed), version):
        digest.update(hashlib.sha256(part.encode() if isinstance(part, str) else part).digest())
    return digest.hexdigest()[:16]


def build(cache: Path, seed: int) -> CMock:
    """The C mock for ``seed`` under ``cache``, built unless already there. Raises BenchError when it cannot be."""
    reason = unavailable()
    if reason is not None:
        raise BenchError(reason)
    gcc, node = shutil.which("gcc"), shutil.which("node")
    assert gcc is not None and node is not None
    folder = cache / "neutral-cmock" / _key(gcc, seed)
    done = CMock(folder / "cmock", folder / "table.txt")
    if done.binary.exists() and done.table.exists():
        return done
    folder.mkdir(parents=True, exist_ok=True)
    suffix = f".{os.getpid()}.tmp"
    compile_cmd = [gcc, *CFLAGS, "-o", str(done.binary) + suffix, str(SOURCE), "-lm"]
    table_cmd = [node, str(TABLE_SCRIPT), "--seed", str(seed)]
    compiled = subprocess.run(compile_cmd, capture_output=True, text=True, check=False)
    if compiled.returncode != 0:
        raise BenchError(f"the C mock did not compile: {' '.join(compile_cmd)}\n{compiled.stderr[-2000:]}")
    table = subprocess.run(table_cmd, capture_output=True, check=False)
    if table.returncode != 0:
        raise BenchError(f"the C mock's frame table failed: {' '.join(table_cmd)}\n{table.stderr.decode()[-2000:]}")
    Path(str(done.table) + suffix).write_bytes(table.stdout)
    recorded = [gcc, *CFLAGS, "-o", str(done.binary), str(SOURCE), "-lm"]
    (folder / "build.txt").write_text(f"{' '.join(recorded)}\n{' '.join(table_cmd)} > {done.table}\n")
    os.replace(str(done.table) + suffix, done.table)
    os.replace(str(done.binary) + suffix, done.binary)
    return done
