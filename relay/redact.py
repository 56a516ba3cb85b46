"""Text from outside (an upstream's error answer, a transport error) made fit for a log line.

``redact`` masks whatever looks like a credential, turns an HTML page into its text, collapses
whitespace and truncates. It errs on the side of masking: an upstream that echoes the key it was
sent (OpenAI echoes a masked one, some servers the whole ``Authorization`` header) must not put
that key in the request log, nor, through a careless message, in front of a client.

What is masked (each replaced by ``***``, the name before it kept so the line still reads):

- the exact secrets the caller names (the channel's upstream key);
- ``Bearer``/``Basic`` credentials; ``sk-…`` keys (OpenAI, Anthropic ``sk-ant-…``, masked or not);
  Google ``AIza…`` keys; JSON Web Tokens (``eyJ….….…``);
- the value after ``x-api-key``, ``x-goog-api-key``, ``api_key``, ``api-key``, ``apikey``,
  ``access_token``, ``auth_token``, ``token``, ``secret``, ``client_secret``, ``password`` (with ``:``
  or ``=``), and after ``key=`` (a query string's ``?key=``);
- the user information of a URL (``https://user:pass@host`` → ``https://***@host``);
- long opaque strings: 32 or more hex digits, or 32 or more base64/base64url characters mixing
  upper case, lower case and digits (ids with a known prefix such as ``req_`` or ``chatcmpl-`` kept).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

MASK = "***"
#: Characters read from a text before anything else is done with it: bounds the work on a huge body.
_READ = 64 * 1024

_HTML = re.compile(r"<\s*(?:!doctype|html|head|body|title|h1|center|pre)\b", re.I)
_HIDDEN = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]{0,2000}>")
_SPACE = re.compile(r"\s+")

_AUTH_SCHEME = re.compile(r"\b(Bearer(?=\s)|Basic(?=\s+[A-Za-z0-9+/]{8,}=*))(\s+)[^\s\"',;]+", re.I)
_SK = re.compile(r"\bsk-[A-Za-z0-9_*.\-]*[A-Za-z0-9_*]")
_GOOGLE = re.compile(r"\bAIza[A-Za-z0-9_\-]{10,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*")
_NAMED = re.compile(
    r"\b(x-api-key|x-goog-api-key|api[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret|token|secret"
    r"|password)([\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)[^\s\"'&,;<>]+",
    re.I,
)
_KEY_PARAM = re.compile(r"\b(key=)(?!\*\*\*)[^\s\"'&,;<>]+", re.I)
_USERINFO = re.compile(r"\b([a-z][a-z0-9+.\-]*://)[^/\s@\"']+@", re.I)
_OPAQUE = re.compile(r"[A-Za-z0-9+/_\-]{32,}={0,2}")
_HEX = re.compile(r"[0-9a-fA-F]{32,}")
#: Long ids that are not secrets: an operator quotes them to the provider's support.
_ID_PREFIXES = ("req_", "req-", "request-", "chatcmpl-", "msg_", "resp_", "toolu_", "call_", "batch_", "file-")


def redact(text: str, limit: int = 2000, *, secrets: Iterable[str] = ()) -> str:
    """``text`` without anything that looks like a credential (nor any of ``secrets``), as one line of
    at most ``limit`` characters; an HTML page becomes its text."""
    if len(text) > _READ:
        text = text[:_READ].rsplit(None, 1)[0]  # never a secret cut in half at the end
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    if _HTML.search(text):
        text = html.unescape(_TAG.sub(" ", _HIDDEN.sub(" ", text)))
    text = _USERINFO.sub(rf"\1{MASK}@", text)
    text = _AUTH_SCHEME.sub(rf"\1\2{MASK}", text)
    text = _JWT.sub(MASK, text)
    text = _SK.sub(f"sk-{MASK}", text)
    text = _GOOGLE.sub(f"AIza{MASK}", text)
    text = _NAMED.sub(rf"\1\2{MASK}", text)
    text = _KEY_PARAM.sub(rf"\1{MASK}", text)
    text = _OPAQUE.sub(_opaque, text)
    text = _SPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: max(0, limit - 1)].rstrip() + "…"
    return text


def _opaque(match: re.Match[str]) -> str:
    """A long run of base64 characters: masked when it looks random (hex, or mixed case and digits)."""
    word = match.group(0)
    if word.lower().startswith(_ID_PREFIXES):
        return word
    if _HEX.fullmatch(word):
        return MASK
    body = word.rstrip("=")
    if any(c.isdigit() for c in body) and any(c.islower() for c in body) and any(c.isupper() for c in body):
        return MASK
    return word
