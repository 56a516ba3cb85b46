"""The task endpoints' one fetcher (relay/utility/fetch.py) against real servers on loopback: ``relay
mock-upstream`` (its fixture documents, its redirects) and, for the timeout, a socket that never answers.

Loopback is refused unless ``[utility]`` lets a host through, so every test names what it allows: the SSRF
refusals (loopback, 10.x, link-local and the metadata address, IPv6 and IPv4-mapped forms, redirects into them)
are checked with the mock's own port allowed, so a refusal is the address check's and not a refusal of loopback
as such."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
import trio

from relay.config import ConfigError, UtilityConfig, loads
from relay.errors import RelayError
from relay.utility.documents import MEDIA_TYPES
from relay.utility.fetch import checked, fetch
from tests.conftest import process
from tests.helpers import MOCK_ARGS


@pytest.fixture(scope="module")
def mock() -> Iterator[str]:
    """The mock upstream's ``HOST:PORT``."""
    with process(*MOCK_ARGS) as (_, address):
        yield address


def allowing(host: str, **limits: object) -> UtilityConfig:
    return UtilityConfig(allow_hosts=(host,), **limits)  # type: ignore[arg-type]


async def refused(config: UtilityConfig, url: str, status: int, code: str) -> RelayError:
    with pytest.raises(RelayError) as caught:
        await fetch(config, url, accept=MEDIA_TYPES)
    assert (caught.value.status, caught.value.code) == (status, code), caught.value.message
    assert caught.value.param == "url"
    return caught.value


async def test_an_allowed_host_is_fetched_with_its_type_and_name(mock: str) -> None:
    got = await fetch(allowing(mock), f"http://{mock}/fixtures/doc.pdf", accept=MEDIA_TYPES)
    assert got.content_type == "application/pdf"
    assert got.body.startswith(b"%PDF-") and got.filename == "doc.pdf"
    page = await fetch(allowing(mock), f"http://{mock}/fixtures/page.html", accept=("text/*",))
    assert page.content_type == "text/html" and b"Harbour Lighthouse" in page.body


async def test_loopback_is_refused_by_default(mock: str) -> None:
    error = await refused(UtilityConfig(), f"http://{mock}/fixtures/doc.pdf", 400, "url_refused")
    assert "127.0.0.1" in error.message
    await refused(UtilityConfig(), f"http://localhost:{mock.rsplit(':', 1)[1]}/fixtures/doc.pdf", 400, "url_refused")


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/secret",
        "http://10.255.1.2:8080/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://100.64.0.1/",  # shared address space (CGNAT)
        "http://0.0.0.0:80/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",  # loopback mapped into IPv6
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://2130706433/",  # 127.0.0.1 written as one number
    ],
)
async def test_private_addresses_are_refused_before_any_connection(mock: str, url: str) -> None:
    with trio.fail_after(2):  # none of these is reachable: a refusal comes at once, no connection is tried
        await refused(allowing(mock), url, 400, "url_refused")


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/admin", "http://127.0.0.1:1/", "http://[::1]:80/"],
)
async def test_a_redirect_into_a_private_address_is_refused(mock: str, target: str) -> None:
    url = f"http://{mock}/fixtures/redirect?to={quote(target, safe='')}"
    await refused(allowing(mock), url, 400, "url_refused")


async def test_redirects_are_followed_to_a_limit(mock: str) -> None:
    inner = f"http://{mock}/fixtures/doc.docx"
    once = f"http://{mock}/fixtures/redirect?to={quote(inner, safe='')}"
    got = await fetch(allowing(mock), once, accept=MEDIA_TYPES)
    assert got.url == inner and got.filename == "doc.docx" and got.body.startswith(b"PK")
    url = inner
    for _ in range(3):
        url = f"http://{mock}/fixtures/redirect?to={quote(url, safe='')}"
    assert (await fetch(allowing(mock, max_redirects=3), url, accept=MEDIA_TYPES)).url == inner
    error = await refused(allowing(mock, max_redirects=2), url, 502, "fetch_failed")
    assert "redirected more than 2 times" in error.message


async def test_too_large_is_413(mock: str) -> None:
    config = allowing(mock, max_fetch_bytes=1000)
    assert len((await fetch(config, f"http://{mock}/fixtures/large.txt?bytes=1000", accept=("text/*",))).body) == 1000
    await refused(config, f"http://{mock}/fixtures/large.txt?bytes=1001", 413, "fetch_too_large")


async def test_a_type_the_endpoint_does_not_read_is_415(mock: str) -> None:
    error = await refused(allowing(mock), f"http://{mock}/fixtures/archive.zip", 415, "unsupported_media_type")
    assert "application/zip" in error.message


async def test_an_error_status_or_nothing_listening_is_502(mock: str) -> None:
    await refused(allowing(mock), f"http://{mock}/fixtures/missing.pdf", 502, "fetch_failed")
    await refused(allowing("127.0.0.1:9"), "http://127.0.0.1:9/doc.pdf", 502, "fetch_failed")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/doc.pdf", "gopher://x/", "http://", "not a url", "http://u:p@x/"]
)
async def test_only_http_urls_with_a_host_and_no_credentials(url: str) -> None:
    await refused(UtilityConfig(), url, 400, "invalid_url")


async def test_a_server_that_never_answers_is_a_504() -> None:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    accepted: list[trio.SocketStream] = []

    async def hold() -> None:
        while True:
            accepted.append(await listener.accept())  # and never a byte back

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hold)
        with trio.fail_after(5):
            await refused(
                allowing(f"127.0.0.1:{port}", fetch_timeout=0.3), f"http://127.0.0.1:{port}/", 504, "fetch_timeout"
            )
        nursery.cancel_scope.cancel()
    assert accepted  # it did connect: the time ran out waiting for the answer
    await listener.aclose()


def test_the_limits_are_checked_when_relay_toml_is_read() -> None:
    with pytest.raises(ConfigError) as caught:
        loads('[utility]\nmax_fetch_bytes = 0\nfetch_timeout = -1\nmax_redirects = -1\nallow_hosts = ["http://x/"]\n')
    for problem in ("max_fetch_bytes", "fetch_timeout", "max_redirects", "allow_hosts"):
        assert f"utility.{problem}" in str(caught.value)
    assert loads('[utility]\nallow_hosts = ["10.1.0.0/16", "docs.internal", "127.0.0.1:9000"]\n').utility.allow_hosts


async def test_the_operator_may_let_private_hosts_through() -> None:
    """A network, a host with its port, or every address: the check passes and the connection goes to the address
    that was checked, the Host header staying the URL's."""
    target = await checked(UtilityConfig(allow_hosts=("10.0.0.0/8",)), "http://10.1.2.3:8080/a?b=c")
    assert (target.connect_url, target.host_header) == ("http://10.1.2.3:8080/a?b=c", "10.1.2.3:8080")
    await refused(UtilityConfig(allow_hosts=("10.0.0.0/8",)), "http://192.168.0.1/", 400, "url_refused")
    await refused(UtilityConfig(allow_hosts=("127.0.0.1:9000",)), "http://127.0.0.1:9001/", 400, "url_refused")
    local = await checked(UtilityConfig(allow_hosts=("localhost",)), "http://localhost/doc")
    assert local.host_header == "localhost" and local.address.is_loopback
    assert (await checked(UtilityConfig(allow_private_urls=True), "https://[::1]:8443/x")).host_header == "[::1]:8443"
