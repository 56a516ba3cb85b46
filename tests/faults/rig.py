"""The rig of the fault tests: a served Relay (a SQLite store, a quota key, prices) whose three channels go to
the fault-injecting upstream; the routes a request takes through it; the client's requests in each dialect;
what a well-formed answer (or error) looks like to each client; and the billing and log invariants.

Routes: the client's dialect and the channel's API. Passthrough when they are the same, conversion when not.
The model name picks the channel (``oa-`` openai, ``an-`` anthropic, ``ge-`` gemini) and the fault
(``-fault-<kind>``, see ``tests.faults.upstream``).
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from relay.config import loads
from relay.store.records import LogRecord, read_logs
from tests.conftest import KEY, Served, serve_relay
from tests.faults.upstream import CUT, INPUT, OUTPUT, UPSTREAM_TEXT, Dialect, FaultUpstream, Frame, fault_upstream
from tests.faults.upstream import stream_frames as upstream_frames
from tests.gateway_e2e.conftest import key_entry, read, relay_toml, settled, sql
from tests.gateway_e2e.ledger import check_ledger
from tests.helpers import RawResponse, assert_openai_error, raw_request

#: Micro-credits per token of every model here.
INPUT_PRICE = 1000
OUTPUT_PRICE = 2000
#: The key's grant, credits; each request holds far less (``MAX_TOKENS`` at most).
QUOTA = 1000
MAX_TOKENS = 1000
#: The upstream's key: it must reach neither Relay's client nor (unmasked) the request log.
UPSTREAM_KEY = "sk-upstream-Zq8v3NwK4pLm7RtY2xB9cD"
SECRET_TAIL = "Zq8v3NwK4pLm7RtY2xB9cD"
#: Seconds of the channels' timeouts that the stall faults run into.
FIRST_BYTE = 0.3
IDLE = 0.3

#: Every end a request that reached an upstream may have.
ENDS = {
    "completed",
    "client_closed",
    "upstream_truncated",
    "upstream_malformed",
    "upstream_error",
    "timeout",
    "shutdown",
}

PREFIX = {"openai": "oa", "anthropic": "an", "gemini": "ge"}
FAMILY_DIALECT: dict[str, Dialect] = {"anthropic": "anthropic", "gemini": "gemini"}


@attrs.frozen
class Route:
    """A client dialect and a channel: ``sse`` False for Gemini's streamed JSON array."""

    client: Dialect
    family: str
    sse: bool = True

    @property
    def id(self) -> str:
        client = self.client + ("" if self.sse else "[array]")
        return f"{client}>{self.family}"

    @property
    def channel(self) -> str:
        return f"faulty-{self.family}"

    @property
    def upstream(self) -> Dialect:
        """The dialect the upstream is asked in."""
        if self.family == "openai":
            return "openai_responses" if self.client == "openai_responses" else "openai_chat"
        return FAMILY_DIALECT[self.family]

    @property
    def passthrough(self) -> bool:
        return self.client == self.upstream

    def model(self, fault: str) -> str:
        return f"{PREFIX[self.family]}-fault-{fault}" if fault != "ok" else f"{PREFIX[self.family]}-model"


PASSTHROUGH = (
    Route("openai_chat", "openai"),
    Route("openai_responses", "openai"),
    Route("anthropic", "anthropic"),
    Route("gemini", "gemini"),
)
CONVERTED = (Route("openai_chat", "anthropic"), Route("openai_responses", "gemini"), Route("anthropic", "openai"))
WHOLE_ROUTES = PASSTHROUGH + CONVERTED
STREAM_ROUTES = (*PASSTHROUGH, Route("gemini", "gemini", sse=False), *CONVERTED)


def channels(url: str) -> str:
    timeouts = f"[channels.timeouts]\nconnect = 2.0\nfirst_byte = {FIRST_BYTE}\nidle = {IDLE}\ntotal = 20.0\n"
    out = []
    for family, base in (("openai", f"{url}/v1"), ("anthropic", url), ("gemini", url)):
        out.append(
            f'[[channels]]\nname = "faulty-{family}"\ntype = "{family}"\nbase_url = "{base}"\n'
            f'api_key = "{UPSTREAM_KEY}"\nmodels = ["{PREFIX[family]}-*"]\n{timeouts}'
        )
    return "\n".join(out)


PRICES = f'[[prices]]\nmodel = "*"\ninput = {INPUT_PRICE}\noutput = {OUTPUT_PRICE}\n'
# Faults are provoked on purpose: no breaker may open, and no upstream key rest, between them.
ROUTING = "key_rest = 0.001\nkey_set_aside = 0.001\nbreaker_failures = 1000"


@attrs.define
class Rig:
    """A served Relay on a store, its fault-injecting upstream, and every request sent through it."""

    relay: Served
    upstream: FaultUpstream
    store_url: str
    #: Requests sent (the request log must hold exactly as many rows).
    sent: int = 0

    @property
    def url(self) -> str:
        return self.relay.url

    async def ask(self, route: Route, fault: str, *, stream: bool) -> RawResponse:
        """One request along ``route`` asking for ``fault``, read to its end."""
        target, headers, body = request_for(route, route.model(fault), stream=stream)
        self.sent += 1
        with trio.fail_after(15):
            return await raw_request(self.url, "POST", target, headers=headers, body=body)

    async def row(self, request_id: str, timeout: float = 5.0) -> LogRecord:
        """The request log's row of ``request_id``, once written."""
        deadline = trio.current_time() + timeout
        while True:
            rows = await read(self.store_url, lambda tx: read_logs(tx, limit=100_000))
            found = [r for r in rows if r.request_id == request_id]
            if found or trio.current_time() > deadline:
                assert len(found) == 1, f"{len(found)} rows for {request_id}"
                return found[0]
            await trio.sleep(0.05)


def config_text(store_url: str, upstream_url: str) -> str:
    return relay_toml(
        store_url,
        channels=channels(upstream_url),
        keys=key_entry("test", KEY, quota=QUOTA),
        routing=ROUTING,
        prices=PRICES,
    )


@asynccontextmanager
async def rig(tmp_path: Path, *, access_log: bool = False) -> AsyncIterator[Rig]:
    """The rig for the body of the ``async with``; once Relay has stopped (everything it recorded
    written), the invariants are checked on the store."""
    store_url = f"sqlite:///{tmp_path}/relay.db"
    async with fault_upstream() as upstream:
        config = loads(config_text(store_url, upstream.url))
        config = attrs.evolve(config, server=attrs.evolve(config.server, access_log=access_log))
        async with serve_relay(config) as relay:
            served = Rig(relay, upstream, store_url)
            yield served
        await check_invariants(store_url, served.sent)


# ---- the invariants ---------------------------------------------------------------------------------------


async def check_invariants(store_url: str, sent: int) -> None:
    """The billing and log invariants, on the store:

    - every request id has exactly one hold and exactly one settle or release (holds = settles + releases),
      no balance ever negative, balance = granted - Σ settled = granted - Σ logged cost (``check_ledger``);
    - every request sent is in the request log exactly once;
    - every request that reached an upstream (it has attempts) has an end kind among ``ENDS``, and a request
      refused before (no attempt) has none.
    """
    entries = await settled(store_url, quiet=0)  # Relay has stopped: everything it recorded is written
    holds = [e[1] for e in entries if e[2] == "hold"]
    closes = [e[1] for e in entries if e[2] in ("settle", "release")]
    assert sorted(holds) == sorted(set(holds)), "a request held twice"
    assert sorted(closes) == sorted(holds), f"holds {sorted(holds)} != settles + releases {sorted(closes)}"
    await read(store_url, lambda tx: check_ledger(tx, "test"))
    rows = await read(store_url, lambda tx: read_logs(tx, limit=100_000))
    ids = [r.request_id for r in rows]
    assert len(ids) == len(set(ids)) == sent, f"{len(ids)} log rows ({len(set(ids))} ids) for {sent} requests"
    [(negative,)] = await read(store_url, sql("SELECT count(*) FROM keys WHERE quota_micros < 0"))
    assert negative == 0
    for r in rows:
        if r.attempts:
            assert r.end_kind in ENDS, (r.request_id, r.end_kind, r.attempts)
        else:
            assert r.end_kind is None, (r.request_id, r.end_kind)


# ---- the client's requests ----------------------------------------------------------------------------------


def request_for(route: Route, model: str, *, stream: bool) -> tuple[str, dict[str, str], bytes]:
    """(target, headers, body) of a request in the route's client dialect."""
    json_head = {"content-type": "application/json"}
    question = "Say something in pieces."
    if route.client == "openai_chat":
        payload: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": question}],
            "max_tokens": MAX_TOKENS,
        }
        target, headers = "/v1/chat/completions", {**json_head, "authorization": f"Bearer {KEY}"}
    elif route.client == "openai_responses":
        payload = {"model": model, "input": question, "max_output_tokens": MAX_TOKENS}
        target, headers = "/v1/responses", {**json_head, "authorization": f"Bearer {KEY}"}
    elif route.client == "anthropic":
        payload = {"model": model, "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": question}]}
        target = "/v1/messages"
        headers = {**json_head, "x-api-key": KEY, "anthropic-version": "2023-06-01"}
    else:
        payload = {
            "contents": [{"role": "user", "parts": [{"text": question}]}],
            "generationConfig": {"maxOutputTokens": MAX_TOKENS},
        }
        method = ("streamGenerateContent" + ("?alt=sse" if route.sse else "")) if stream else "generateContent"
        return f"/v1beta/models/{model}:{method}", {**json_head, "x-goog-api-key": KEY}, json.dumps(payload).encode()
    if stream:
        payload["stream"] = True
    return target, headers, json.dumps(payload).encode()


# ---- what the client got ----------------------------------------------------------------------------------


@attrs.frozen
class Answer:
    """A client's answer, checked well-formed in its dialect."""

    status: int
    #: The text it received (whole, or streamed before the end).
    text: str
    #: The error object it ended with (an error status's body, or a stream's last event), if any.
    error: dict[str, Any] | None
    #: A stream ended with its terminal event (a whole answer: a 2xx).
    finished: bool
    request_id: str


def assert_no_leak(body: bytes, status: int = 200) -> None:
    """Nothing of the upstream's reaches the client: its key, its HTML, Relay's channel names, and its text,
    but for the validation message of a 400 the client caused (passed on redacted: clients such as Claude
    Code read the provider's wording; docs/security.md)."""
    text = body.decode(errors="replace")
    secrets = (SECRET_TAIL, "sk-upstream", "faulty-", "<html", "nginx", "Traceback")
    for secret in (*secrets, UPSTREAM_TEXT) if status != 400 else secrets:
        assert secret not in text, f"{secret!r} reached the client: {text[:400]}"


def error_shape(client: Dialect, payload: Any, status: int | None = None) -> dict[str, Any]:
    """The error object of an error in ``client``'s dialect, checked for its shape."""
    if client in ("openai_chat", "openai_responses"):
        return assert_openai_error(payload)
    if client == "anthropic":
        assert isinstance(payload, dict) and payload.get("type") == "error", payload
        error = payload["error"]
        assert isinstance(error.get("type"), str) and isinstance(error.get("message"), str) and error["message"], error
        return error
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    error = payload["error"]
    assert isinstance(error.get("code"), int) and isinstance(error.get("message"), str), error
    assert isinstance(error.get("status"), str), error
    if status is not None:
        assert error["code"] == status, (error, status)
    return error


def whole_text(client: Dialect, payload: Any) -> str:
    """The text of a whole answer in ``client``'s dialect."""
    if client == "openai_chat":
        return payload["choices"][0]["message"]["content"]
    if client == "openai_responses":
        assert payload["status"] == "completed", payload
        return "".join(p["text"] for item in payload["output"] for p in item.get("content") or ())
    if client == "anthropic":
        assert payload["type"] == "message", payload
        return "".join(block["text"] for block in payload["content"] if block["type"] == "text")
    return "".join(part.get("text", "") for part in payload["candidates"][0]["content"]["parts"])


def sse_events(body: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) of every event of a server-sent-events body."""
    out = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        name, data = None, []
        for line in block.decode().split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        if data:
            out.append((name, "\n".join(data)))
    return out


def read_answer(route: Route, raw: RawResponse, *, stream: bool) -> Answer:
    """The client's answer, asserted well-formed in its dialect: a whole answer or an error body with the
    right content-type, or a stream whose every event parses, that ends with its terminal event or with one
    error event, whose body ends properly; nothing of the upstream's in it."""
    assert raw.complete, f"the answer did not end properly: {raw.body[-300:]!r}"
    assert_no_leak(raw.body, raw.status)
    request_id = raw.headers.get(b"x-request-id", b"").decode()
    assert request_id, raw.headers
    content_type = raw.headers.get(b"content-type", b"")
    if raw.status >= 300 or not stream:
        assert content_type.startswith(b"application/json"), (raw.status, content_type, raw.body[:300])
        payload = json.loads(raw.body)
        if raw.status >= 300:
            return Answer(raw.status, "", error_shape(route.client, payload, raw.status), False, request_id)
        return Answer(raw.status, whole_text(route.client, payload), None, True, request_id)
    assert raw.status == 200, raw.status
    if not route.sse:
        assert content_type.startswith(b"application/json"), content_type
        return _array_answer(route, raw.body, request_id)
    assert content_type.startswith(b"text/event-stream"), content_type
    events = sse_events(raw.body)
    assert events, raw.body
    text, error, finished = [], None, False
    for index, (name, data) in enumerate(events):
        last = index == len(events) - 1
        if route.client == "openai_chat" and data == "[DONE]":
            assert last, "events after [DONE]"
            finished = True
            continue
        payload = json.loads(data)
        if _is_error(route.client, name, payload):
            assert last, f"events after the error event: {events[index + 1 :]}"
            error = _stream_error(route.client, payload)
            continue
        text.append(_event_text(route.client, name, payload))
        if _is_terminal(route.client, name, payload):
            assert last, f"events after the terminal event: {events[index + 1 :]}"
            finished = True
    assert finished != (error is not None), f"a stream ends with its terminal event or one error: {events[-1]}"
    return Answer(200, "".join(text), error, finished, request_id)


def _array_answer(route: Route, body: bytes, request_id: str) -> Answer:
    elements = json.loads(body)
    assert isinstance(elements, list) and elements, body
    *chunks, last = elements
    error = None
    if "error" in last:
        error = error_shape("gemini", last)
    else:
        chunks.append(last)
        assert last["candidates"][0].get("finishReason"), last
    text = "".join(_event_text("gemini", None, chunk) for chunk in chunks)
    return Answer(200, text, error, error is None, request_id)


def _is_error(client: Dialect, name: str | None, payload: Any) -> bool:
    if client == "openai_responses":
        return name in ("error", "response.failed")
    if client == "anthropic":
        return name == "error"
    return isinstance(payload, dict) and "error" in payload


def _stream_error(client: Dialect, payload: Any) -> dict[str, Any]:
    if client == "openai_responses":
        error = payload.get("response", {}).get("error") if payload.get("type") == "response.failed" else payload
        assert isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"], payload
        return error
    return error_shape(client, payload)


def _event_text(client: Dialect, name: str | None, payload: Any) -> str:
    if client == "openai_chat":
        choices = payload.get("choices") or [{}]
        return choices[0].get("delta", {}).get("content") or ""
    if client == "openai_responses":
        assert name == payload.get("type"), (name, payload)
        return payload["delta"] if name == "response.output_text.delta" else ""
    if client == "anthropic":
        assert name == payload.get("type"), (name, payload)
        delta = payload.get("delta", {}) if name == "content_block_delta" else {}
        return delta.get("text", "") if delta.get("type") == "text_delta" else ""
    parts = (payload.get("candidates") or [{}])[0].get("content", {}).get("parts") or ()
    return "".join(part.get("text", "") for part in parts if not part.get("thought"))


def _is_terminal(client: Dialect, name: str | None, payload: Any) -> bool:
    if client == "openai_responses":
        return name in ("response.completed", "response.incomplete")
    if client == "anthropic":
        return name == "message_stop"
    if client == "gemini":
        return bool((payload.get("candidates") or [{}])[0].get("finishReason"))
    return False


# ---- what a request is charged ------------------------------------------------------------------------


@attrs.frozen
class Charge:
    """What a request is charged: its output tokens; its input tokens (None: estimated, so only > 0)."""

    input: int | None
    output: int

    def check(self, row: LogRecord) -> None:
        assert row.output_tokens == self.output, (row.output_tokens, self.output, row)
        if self.input is None:
            assert row.input_tokens > 0, row
        else:
            assert row.input_tokens == self.input, (row.input_tokens, self.input, row)
        assert row.cost_micros == row.input_tokens * INPUT_PRICE + row.output_tokens * OUTPUT_PRICE, row


COMPLETED = Charge(INPUT, OUTPUT)


def sent_frames(route: Route, fault: str) -> list[Frame]:
    """The frames of the upstream's stream that a mid-stream ``fault`` lets through whole."""
    frames = upstream_frames(route.upstream, route.model(fault), sse=route.sse, include_usage=True)
    if fault == "no_terminal":
        return [f for f in frames if not f.terminal]
    sent, texts = [], 0
    for frame in frames:
        if texts == CUT:
            break
        sent.append(frame)
        texts += frame.is_text
    return sent


def produced(route: Route, fault: str) -> Charge:
    """What a stream broken by ``fault`` is charged: the usage the upstream reported before the fault, what it
    did not report estimated (the output a token per four bytes of the text it sent, the input from the
    request)."""
    sent = sent_frames(route, fault)
    reported = [f.usage for f in sent if f.usage is not None]
    estimate = math.ceil(sum(len(f.text.encode()) for f in sent) / 4)
    if not reported:
        return Charge(None, estimate)
    return Charge(reported[-1][0], max(reported[-1][1], estimate))
