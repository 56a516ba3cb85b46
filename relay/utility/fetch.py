"""The one fetcher of the task endpoints' ``url`` fields: a document from the web, safely.

Every hop (the URL, then each redirect) is checked before anything is sent: ``http`` or ``https`` only, the host
resolved here and every address it resolves to refused when it is not a global one (loopback, the private
networks, link-local with the clouds' metadata service at 169.254.169.254, CGNAT, multicast, reserved, IPv4 mapped
into IPv6), unless ``[utility] allow_private_urls`` or ``allow_hosts`` lets it through; the connection then goes to
the address that was checked (the ``Host`` header and TLS name stay the URL's), so a second resolution cannot
point it elsewhere (DNS rebinding). Redirects are followed by hand, at most ``max_redirects``; the body is read to
``max_fetch_bytes`` at most (a declared or actual larger one is a 413); the whole fetch is bounded by
``fetch_timeout`` (a 504); the content type must be one the endpoint reads (a 415).
"""

from __future__ import annotations

import ipaddress
import mimetypes
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit

import attrs
import httpx
import trio

from relay.config import UtilityConfig
from relay.errors import RelayError

if TYPE_CHECKING:
    from relay.app import Relay

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: What a fetch says it is: a plain agent, asking for the types the endpoint reads.
USER_AGENT = "Relay-fetch/1 (+https://github.com/relay)"


@attrs.frozen
class Fetched:
    """A fetched document: the URL it came from at last (after redirects), its media type (lower-case, without
    parameters), its bytes, and a file name (Content-Disposition's, else the path's last segment, else None)."""

    url: str
    content_type: str
    body: bytes
    filename: str | None


async def fetch_url(relay: Relay, url: str, *, accept: tuple[str, ...]) -> Fetched:
    """The document at ``url``, fetched under ``[utility]``'s limits; ``accept``: the media types the caller
    reads (``text/*`` and ``*/*`` match any of their kind). RelayError: 400 (not an http(s) URL, or an address
    refused), 413 (too large), 415 (another type), 502 (unreachable, too many redirects, an error status),
    504 (out of time)."""
    return await fetch(relay.config.utility, url, accept=accept)


async def fetch(config: UtilityConfig, url: str, *, accept: tuple[str, ...]) -> Fetched:
    """``fetch_url`` with the limits given (the same checks; for callers without a Relay, and the tests)."""
    with trio.move_on_after(config.fetch_timeout) as scope:
        return await _fetch(config, url, accept)
    assert scope.cancelled_caught
    raise RelayError(
        504, "timeout", f"fetching the url took more than {config.fetch_timeout:g} s", param="url", code="fetch_timeout"
    )


async def _fetch(config: UtilityConfig, url: str, accept: tuple[str, ...]) -> Fetched:
    transport = httpx.AsyncHTTPTransport(retries=0)
    async with httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False, timeout=None) as client:
        for _ in range(config.max_redirects + 1):
            target = await checked(config, url)
            request = client.build_request(
                "GET",
                target.connect_url,
                headers={
                    "host": target.host_header,
                    "user-agent": USER_AGENT,
                    "accept": ", ".join(accept),
                    "accept-encoding": "identity",
                },
                extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.HTTPError as error:
                raise _failed(f"the url could not be fetched: {type(error).__name__}: {error}") from None
            try:
                if response.status_code in _REDIRECTS and response.headers.get("location"):
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code >= 400:
                    raise _failed(f"the url answered {response.status_code}")
                kind = _media_type(response.headers.get("content-type"), url)
                if not accepts(accept, kind):
                    raise RelayError(
                        415,
                        "invalid_request",
                        f"the url's content type {kind or '(none)'} is not one this endpoint reads: "
                        + ", ".join(accept),
                        param="url",
                        code="unsupported_media_type",
                    )
                body = await _read(response, config.max_fetch_bytes)
            finally:
                await response.aclose()
            return Fetched(url, kind, body, _filename(response.headers.get("content-disposition"), url))
    raise _failed(f"the url redirected more than {config.max_redirects} times")


@attrs.frozen
class Target:
    """One hop, checked: where to connect (the checked address) and what to say the host is."""

    scheme: str
    host: str
    host_header: str
    connect_url: str
    address: IPAddress


async def checked(config: UtilityConfig, url: str) -> Target:
    """``url`` checked and resolved: a 400 when it is not an http(s) URL with a host, or when the host resolves to
    an address the configuration does not let a fetch reach (any of its addresses: a host must not mix them)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _bad_url("the url is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise _bad_url("the url must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise _bad_url("the url must not carry credentials")
    host = parts.hostname
    port = port or (443 if scheme == "https" else 80)
    addresses = await _resolve(host, port)
    allowed = _allowed(config, host, port)
    for address in addresses:
        if not allowed and not _public(address):
            raise RelayError(
                400,
                "invalid_request",
                f"the url's host {host} resolves to {address}, a private, loopback or link-local address that "
                "Relay does not fetch",
                param="url",
                code="url_refused",
            )
    address = addresses[0]
    shown = f"[{address}]" if address.version == 6 else str(address)
    path = parts.path or "/"
    connect_url = f"{scheme}://{shown}:{port}{path}" + (f"?{parts.query}" if parts.query else "")
    default = (scheme, port) in (("http", 80), ("https", 443))
    name = f"[{host}]" if ":" in host else host
    return Target(scheme, host, name if default else f"{name}:{port}", connect_url, address)


def _public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _allowed(config: UtilityConfig, host: str, port: int) -> bool:
    """Whether the operator lets fetches reach ``host`` (and ``port``) whatever it resolves to."""
    if config.allow_private_urls:
        return True
    for entry in config.allow_hosts:
        name, _, wanted = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if wanted and not wanted.isdigit():
            name, wanted = entry, ""
        if name.lower().strip("[]") == host.lower() and (not wanted or int(wanted) == port):
            return True
        try:
            network = ipaddress.ip_network(entry, strict=False)
            if ipaddress.ip_address(host) in network:
                return True
        except ValueError:
            continue
    return False


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise _failed(f"the url's host {host} could not be resolved: {error}") from None
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise _failed(f"the url's host {host} has no address")
    return found


def accepts(accept: Sequence[str], kind: str) -> bool:
    """Whether media type ``kind`` is one of ``accept`` (``text/*``: any text, ``*/*``: anything)."""
    major = kind.partition("/")[0]
    return any(a == kind or a == "*/*" or (a.endswith("/*") and a[:-2] == major) for a in accept)


def _media_type(header: str | None, url: str) -> str:
    kind = (header or "").split(";", 1)[0].strip().lower()
    if kind and kind != "application/octet-stream":
        return kind
    guessed = mimetypes.guess_type(urlsplit(url).path)[0]
    return guessed or kind


async def _read(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_raw():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except httpx.HTTPError as error:
        raise _failed(f"the url's body could not be read: {type(error).__name__}: {error}") from None
    data = b"".join(chunks)
    encoding = response.headers.get("content-encoding", "").lower()
    if encoding and encoding != "identity":
        raise _failed(f"the url's body came with content-encoding {encoding}, which Relay does not decode")
    return data


def _filename(disposition: str | None, url: str) -> str | None:
    if disposition:
        for part in disposition.split(";"):
            name, _, value = part.strip().partition("=")
            if name.lower() == "filename" and value:
                return value.strip('"') or None
    last = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return last or None


def _bad_url(message: str) -> RelayError:
    return RelayError(400, "invalid_request", message, param="url", code="invalid_url")


def _too_large(limit: int) -> RelayError:
    return RelayError(
        413,
        "request_too_large",
        f"the url's document is larger than {limit} bytes",
        param="url",
        code="fetch_too_large",
    )


def _failed(message: str) -> RelayError:
    return RelayError(502, "upstream", message, param="url", code="fetch_failed")
