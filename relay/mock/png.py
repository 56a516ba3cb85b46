"""Small PNG images made deterministically from a seed: the mock upstream's generated images.

An image is ``SIZE`` x ``SIZE`` RGB pixels coloured from the SHA-256 of its seed, written with zlib and struct
(signature, ``IHDR``, one ``IDAT``, ``IEND``), so the same seed always gives the same bytes and any PNG decoder
reads it.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Width and height of every mock image, in pixels.
SIZE = 8


def png(seed: str, size: int = SIZE) -> bytes:
    """A ``size`` x ``size`` RGB PNG whose pixels derive from ``seed``."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # filter: none
        for x in range(size):
            rows += bytes((digest[0] ^ (x * 31) & 0xFF, digest[1] ^ (y * 29) & 0xFF, digest[2 + (x + y) % 30]))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB, deflate, no filter choice, no interlace
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + _chunk(b"IEND", b"")


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def is_png(data: bytes) -> bool:
    return data.startswith(SIGNATURE)
