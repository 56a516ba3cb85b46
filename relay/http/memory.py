"""The C allocator tuned for a server of large, short-lived buffers (glibc only; elsewhere nothing happens).

glibc serves an allocation above ``M_MMAP_THRESHOLD`` (128 KiB) with its own ``mmap``, returned to the
system when freed, but raises the threshold to the size of every such block freed, up to 32 MiB. After a
burst of large request bodies (a 300 KB prompt, its JSON, its converted copy) the threshold sits above
them, and later bodies come from the heap, where they fragment it: RSS stays high long after the burst.
Setting the threshold fixes it (and turns the dynamic adjustment off), so buffers of 256 KiB or more
always go back to the system when freed. ``M_TRIM_THRESHOLD`` returns freed heap tops sooner, and
``M_ARENA_MAX`` caps the per-thread arenas the store's worker threads would otherwise each grow.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger("relay.http")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: Allocations of this size or more are mapped on their own and unmapped when freed.
MMAP_THRESHOLD = 256 * 1024
#: Free memory at the top of the heap beyond this is returned to the system.
TRIM_THRESHOLD = 1024 * 1024
#: malloc arenas: the main one and one for the worker threads (sqlite, psycopg).
ARENA_MAX = 2


def tune_allocator() -> bool:
    """Set glibc's mallopt parameters above; False (and nothing changed) off glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl has no such function)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = all(
        mallopt(param, value)
        for param, value in (
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (_M_ARENA_MAX, ARENA_MAX),
        )
    )
    if not ok:
        log.warning("mallopt refused a setting; the allocator keeps its defaults for it")
    return ok
