"""Screenshots of the web dashboard for docs/dashboard.md: ``python tools/dashboard_screenshots.py``.

Starts ``relay mock-upstream`` and ``relay serve`` in a temporary folder, sends a few minutes of real traffic (chat
requests of two keys on two channels, some streamed, some slow, some failing, one refused), then drives Debian's
chromium with Playwright (the test extra) through every page and saves a PNG of each: overview, keys (with a new key's
secret shown once), channels, requests, one request, usage by day and the playground after a streamed reply.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

ADMIN = "sk-admin-screenshots-0123456789"
KEYS = {"web-app": "sk-relay-web-app-0000000001", "batch-jobs": "sk-relay-batch-jobs-00000002"}
CHROMIUM = "/usr/bin/chromium"


@contextmanager
def relay(*args: str) -> Iterator[str]:
    """``python -m relay ARGS`` until the block ends; its ``HOST:PORT`` once it listens."""
    proc = subprocess.Popen([sys.executable, "-m", "relay", *args], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"relay {' '.join(args)} did not start: {line!r}")
        yield line.split("listening on", 1)[1].split()[0]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def config(upstream: str, store: str) -> str:
    keys = "".join(f'\n[[keys]]\nname = "{name}"\nkey = "{secret}"\nquota = 25\n' for name, secret in KEYS.items())
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

[store]
url = "{store}"
key_refresh = 0.5
log_interval = 0.2

[[channels]]
name = "openai-main"
type = "openai"
base_url = "http://{upstream}/v1"
api_key = "sk-upstream-main"
models = ["gpt-4o-mini", "gpt-4o"]

[[channels]]
name = "openai-backup"
type = "openai"
base_url = "http://{upstream}/v1"
api_key = "sk-upstream-backup"
models = ["gpt-4o-mini"]
priority = 1

[[prices]]
model = "gpt-4o"
input = 2.5
output = 10

[[prices]]
model = "gpt-4o-mini"
input = 0.15
output = 0.6

[[admin_keys]]
name = "root"
key = "{ADMIN}"
{keys}"""


def traffic(base: str, seconds: float) -> None:
    """Waves of chat requests for ``seconds``: busier and slower at times, a few upstream errors, one refusal."""
    chance = random.Random(13)
    ends = time.monotonic() + seconds
    with httpx.Client(base_url=base, timeout=30) as client:
        while (now := time.monotonic()) < ends:
            phase = (ends - now) / seconds
            key = chance.choice(list(KEYS))
            model = "gpt-4o" if chance.random() < 0.3 else "gpt-4o-mini"
            slow = int(40 + 400 * phase * chance.random())
            words = " ".join(chance.choice(["route", "stream", "token", "relay", "quota"]) for _ in range(20))
            content = f"{words} mock:first_byte_ms={slow} mock:chunks=6 mock:delay_ms=15"
            if chance.random() < 0.06:
                content += " mock:status=503"
            client.post(
                "/v1/chat/completions",
                headers={"authorization": f"Bearer {KEYS[key]}"},
                json={
                    "model": model,
                    "stream": chance.random() < 0.5,
                    "messages": [{"role": "user", "content": content}],
                },
            )
            time.sleep(chance.uniform(0.05, 0.4) * (1.5 - phase))
        client.post("/v1/chat/completions", headers={"authorization": "Bearer sk-not-a-key"}, json={})


def shoot(base: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 860}, base_url=base)
        page.goto("/dashboard")
        page.fill("#admin-key", ADMIN)
        page.click("#signin-form button[type=submit]")
        page.wait_for_selector("h2:has-text('Overview')")
        page.click("button:has-text('Last 15m')")
        # Polled from here: the page's Content-Security-Policy refuses the evaluation wait_for_function uses.
        while page.evaluate("document.querySelectorAll('.chart canvas').length") < 4:
            page.wait_for_timeout(100)
        page.wait_for_timeout(500)
        page.screenshot(path=out / "overview.png", full_page=True)

        page.click("nav a[data-page=keys]")
        page.fill("#create-key input[name=name]", "new-team")
        page.fill("#create-key input[name=quota]", "10")
        page.fill("#create-key input[name=models]", "gpt-4o-mini")
        page.click("#create-key button[type=submit]")
        page.wait_for_selector("#secret-value")
        page.screenshot(path=out / "keys.png", full_page=True)

        page.click("nav a[data-page=channels]")
        page.locator("tr:has-text('openai-backup') button:has-text('Disable')").click()
        page.wait_for_selector("tr:has-text('openai-backup') .status.disabled")
        page.wait_for_selector("#flash", state="hidden")
        page.screenshot(path=out / "channels.png", full_page=True)

        page.click("nav a[data-page=requests]")
        page.wait_for_selector("a.request-link")
        page.screenshot(path=out / "requests.png")
        page.locator("tr:has-text('gpt-4o') a.request-link").first.click()
        page.wait_for_selector("dl.detail")
        page.screenshot(path=out / "request.png", full_page=True)

        page.click("nav a[data-page=usage]")
        page.wait_for_selector("table")
        page.wait_for_timeout(300)
        page.screenshot(path=out / "usage.png", full_page=True)

        page.click("nav a[data-page=playground]")
        page.select_option("#pg-key", "web-app")
        page.fill("#pg-model", "gpt-4o-mini")
        page.fill("#pg-system", "You answer in one sentence.")
        page.fill("#pg-prompt", "What does a relay do? mock:chunks=12 mock:delay_ms=40")
        page.click("#pg-send")
        page.wait_for_selector("#pg-request")
        page.screenshot(path=out / "playground.png", full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/dashboard"))
    parser.add_argument("--seconds", type=float, default=150.0, help="seconds of traffic before the screenshots")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        upstream = stack.enter_context(relay("mock-upstream", "--port", "0", "--quiet"))
        path = Path(folder) / "relay.toml"
        path.write_text(config(upstream, f"sqlite:///{folder}/relay.db"))
        base = "http://" + stack.enter_context(relay("serve", "--config", str(path)))
        traffic(base, args.seconds)
        time.sleep(1)  # the request log is written in batches
        shoot(base, args.out)
    print(f"screenshots in {args.out}")


if __name__ == "__main__":
    main()
