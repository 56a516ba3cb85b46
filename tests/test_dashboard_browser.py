"""The web dashboard in a real headless browser: Debian's chromium driven by Playwright, against ``relay serve`` in
front of ``relay mock-upstream``. Sign in and out, create a key (its secret shown once) and see its request appear in
the log with its details, disable a channel, stream a playground reply billed to a chosen key, and a viewer without
write buttons; no page error and no Content-Security-Policy violation on the way."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import process
from tests.helpers import MOCK_ARGS
from tests.test_dashboard_http import ADMIN, VIEWER, relay_toml

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed: apt-get install -y chromium (.ci/run does it)", allow_module_level=True
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is missing: pip install -e '.[test]'")
Page = Any  # playwright.sync_api.Page, imported only when chromium is there


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("dashboard_browser")
    with process(*MOCK_ARGS) as (_, upstream):
        path = root / "relay.toml"
        spare = (
            f'\n[[channels]]\nname = "spare"\ntype = "openai"\nbase_url = "http://{upstream}/v1"\nmodels = ["chat-*"]\n'
        )
        path.write_text(relay_toml(f"http://{upstream}", f"sqlite:///{root}/relay.db") + spare)
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, base: str) -> Iterator[Page]:
    """A fresh tab (its own sessionStorage); the test fails on any page error or console error (a CSP violation is
    one), but the browser's notes of HTTP error statuses, which the tests cause on purpose."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=base)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on(
        "console",
        lambda message: (
            message.type == "error"
            and not message.text.startswith("Failed to load resource")
            and problems.append(f"console: {message.text}")
        ),
    )
    yield tab
    context.close()
    assert problems == []


def sign_in(page: Page, key: str = ADMIN) -> None:
    page.goto("/")
    assert page.url.endswith("/dashboard")
    page.fill("#admin-key", key)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#top:not([hidden])")


def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_sign_in_shows_the_overview_and_sign_out_forgets_the_session(page: Page) -> None:
    page.goto("/dashboard")
    page.fill("#admin-key", "sk-not-an-admin-key-0000")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#signin-error:has-text('Invalid admin key')")
    page.fill("#admin-key", ADMIN)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("h2:has-text('Overview')")
    assert page.inner_text("#who") == "root (admin)"
    # uPlot drew four charts (polled from here: the page's Content-Security-Policy refuses the evaluation
    # wait_for_function uses)
    until(lambda: page.evaluate("document.querySelectorAll('.chart canvas').length") == 4, "no charts")
    token = page.evaluate("sessionStorage.getItem('relay.session')")
    assert token.startswith("rs1.") and ADMIN not in page.content()
    page.reload()  # the tab keeps its session
    page.wait_for_selector("h2:has-text('Overview')")
    page.click("#sign-out")
    page.wait_for_selector("#signin:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('relay.session')") is None


def test_create_a_key_and_see_its_request_in_the_log(page: Page, base: str) -> None:
    sign_in(page)
    page.click("nav a[data-page=keys]")
    page.fill("#create-key input[name=name]", "browser-key")
    page.fill("#create-key input[name=quota]", "2")
    page.click("#create-key button[type=submit]")
    secret = page.inner_text("#secret-value")
    assert secret.startswith("sk-")
    page.wait_for_selector("td:has-text('browser-key')")
    deadline = time.monotonic() + 10
    while (
        reply := httpx.post(
            base + "/v1/chat/completions",
            headers={"authorization": f"Bearer {secret}"},
            json={"model": "chat-1", "messages": [{"role": "user", "content": "from the browser test"}]},
        )
    ).status_code != 200:
        assert time.monotonic() < deadline, reply.text
        time.sleep(0.1)
    request_id = reply.headers["x-request-id"]
    page.click("nav a[data-page=requests]")
    page.fill("input[name=key]", "browser-key")

    def listed() -> bool:
        page.click("form.toolbar button[type=submit]")
        page.wait_for_selector("table, p.empty")
        return page.locator(f"a.request-link:has-text('{request_id}')").count() == 1

    until(listed, "the request never showed in the log")
    page.click(f"a.request-link:has-text('{request_id}')")
    page.wait_for_selector(f"h2:has-text('Request {request_id}')")
    assert page.inner_text("dd[data-field=key_name]") == "browser-key"
    assert page.inner_text("dd[data-field=status]") == "200"
    assert page.inner_text("dd[data-field=requested_model]") == "chat-1"
    # Disable it from the keys page: its requests are refused (within the key refresh).
    page.click("nav a[data-page=keys]")
    page.locator("tr:has-text('browser-key') button:has-text('Disable')").click()
    page.wait_for_selector("tr:has-text('browser-key') .status.disabled")
    until(
        lambda: httpx.get(base + "/v1/models", headers={"authorization": f"Bearer {secret}"}).status_code == 401,
        "the disabled key still works",
    )


def test_disable_a_channel(page: Page, base: str) -> None:
    sign_in(page)
    page.click("nav a[data-page=channels]")
    row = page.locator("tr:has-text('spare')")
    row.locator("text=enabled").wait_for()
    row.locator("button:has-text('Disable')").click()
    page.wait_for_selector("tr:has-text('spare') .status.disabled")
    shown = httpx.get(base + "/admin/v1/channels/spare", headers={"authorization": f"Bearer {ADMIN}"}).json()
    assert shown["enabled"] is False
    page.locator("tr:has-text('spare') button:has-text('Enable')").click()
    page.wait_for_selector("tr:has-text('spare') .status.active")


def test_the_playground_streams_a_reply_billed_to_the_chosen_key(page: Page, base: str) -> None:
    made = httpx.post(
        base + "/admin/v1/keys", headers={"authorization": f"Bearer {ADMIN}"}, json={"name": "pg-browser", "quota": 1}
    )
    assert made.status_code == 201, made.text
    sign_in(page)
    page.click("nav a[data-page=playground]")
    page.select_option("#pg-key", "pg-browser")
    page.fill("#pg-model", "chat-1")
    page.fill("#pg-system", "You are terse.")
    page.fill("#pg-prompt", "Count slowly mock:chunks=12 mock:delay_ms=150")
    page.click("#pg-send")
    # Rendered as it arrives: part of the reply shows while the stream is still open.
    partial = (
        "(() => { const p = document.querySelector('.turn.assistant p');"
        " return p && p.classList.contains('streaming') ? p.textContent : ''; })()"
    )
    until(lambda: bool(page.evaluate(partial)), "no part of the reply showed while it streamed")
    page.wait_for_selector("#pg-request")
    answer = page.inner_text(".turn.assistant p")
    assert answer.startswith("Echo") and "streaming" not in (page.get_attribute(".turn.assistant p", "class") or "")
    request_id = page.inner_text("#pg-request").removeprefix("request ")
    until(
        lambda: (
            httpx.get(
                f"{base}/admin/v1/requests/{request_id}", headers={"authorization": f"Bearer {ADMIN}"}
            ).status_code
            == 200
        ),
        "the playground's request was not logged",
    )
    page.click("#pg-request")
    page.wait_for_selector(f"h2:has-text('Request {request_id}')")
    assert page.inner_text("dd[data-field=key_name]") == "pg-browser"
    assert page.inner_text("dd[data-field=route]") == "/pg/chat/completions"


def test_a_viewer_sees_no_write_buttons(page: Page) -> None:
    sign_in(page, VIEWER)
    assert page.inner_text("#who") == "auditor (viewer)"
    for view in ("keys", "channels"):
        page.click(f"nav a[data-page={view}]")
        page.wait_for_selector("table")
        assert page.locator("button.write").count() == 0, view
    assert page.locator("#create-key").count() == 0
    page.click("nav a[data-page=playground]")
    page.wait_for_selector("text=The playground needs the admin role.")
