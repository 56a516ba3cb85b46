"""Strict checks of a request head before h11 parses it: the framing rules that stop request smuggling.

h11 is lenient where RFC 9112 lets a server be, and a relay should not be: it accepts a bare LF as a line
end, unfolds obsolete line folding, takes ``Content-Length`` together with ``Transfer-Encoding`` as
chunked, and reads any ``HTTP/x.y`` as HTTP/1.1. Each of those is a way for two HTTP parsers on the path
(a proxy in front, Relay) to disagree on where a request ends. Here every such head is refused, with a
status and a code, before h11 sees it; the connection then closes (docs/limits.md lists them). Sans-IO.
"""

from __future__ import annotations

import re

import attrs

#: The end of a request head.
HEAD_END = b"\r\n\r\n"
_VERSION = re.compile(rb" HTTP/(\d)\.(\d)$")
#: Transfer codings Relay decodes: only ``chunked`` (RFC 9112 §7).
_KNOWN_CODINGS = frozenset({b"chunked"})


@attrs.frozen
class Refusal:
    """Why a head is refused: the status, the message and the error code the client gets."""

    status: int
    message: str
    code: str


def bare_lf(data: bytes | bytearray, start: int) -> bool:
    """Whether ``data`` has a LF not preceded by a CR at or after ``start``."""
    at = data.find(b"\n", start)
    while at >= 0:
        if at == 0 or data[at - 1] != 0x0D:
            return True
        at = data.find(b"\n", at + 1)
    return False


def check_head(head: bytes) -> Refusal | None:
    """The refusal for a complete head (request line through the blank line), or None when it is clean."""
    lines = head[: -len(HEAD_END)].split(b"\r\n")
    if b"\n" in head.replace(b"\r\n", b""):
        return Refusal(400, "malformed HTTP request: a line ends in a bare LF", "malformed_request")
    if b"\r" in head.replace(b"\r\n", b""):
        return Refusal(400, "malformed HTTP request: a bare CR", "malformed_request")
    version = _VERSION.search(lines[0])
    if version is not None and version.group(1) != b"1":
        major, minor = version.group(1).decode(), version.group(2).decode()
        return Refusal(
            505, f"HTTP/{major}.{minor} is not supported: Relay speaks HTTP/1.1", "http_version_not_supported"
        )
    lengths = 0
    codings: list[bytes] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            return Refusal(400, "malformed HTTP request: obsolete line folding", "malformed_request")
        name, colon, value = line.partition(b":")
        if not colon:
            continue  # h11 refuses it
        if name != name.rstrip(b" \t"):
            return Refusal(400, "malformed HTTP request: whitespace before a header's colon", "malformed_request")
        name = name.lower()
        if name == b"content-length":
            lengths += 1
        elif name == b"transfer-encoding":
            codings += [c.strip().lower() for c in value.split(b",")]
    if not codings:
        return None
    if lengths:
        return Refusal(400, "malformed HTTP request: both Content-Length and Transfer-Encoding", "malformed_request")
    unknown = [c for c in codings if c not in _KNOWN_CODINGS]
    if any(not c for c in unknown):
        return Refusal(400, "malformed HTTP request: an empty transfer coding", "malformed_request")
    if unknown:
        names = ", ".join(sorted({c.decode("latin-1") for c in unknown}))
        return Refusal(501, f"transfer coding not supported: {names} (only chunked is)", "unsupported_transfer_coding")
    if len(codings) > 1:
        return Refusal(400, "malformed HTTP request: chunked applied more than once", "malformed_request")
    return None


def request_path(head: bytes) -> str | None:
    """The path of a head's request line (for the error's dialect), or None when there is none to read."""
    parts = head.split(b"\r\n", 1)[0].split(b" ")
    if len(parts) != 3 or not parts[1].startswith(b"/"):
        return None
    return parts[1].decode("latin-1").partition("?")[0]
