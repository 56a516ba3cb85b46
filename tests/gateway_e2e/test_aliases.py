"""Aliases, ``[server] default_model`` and the model list by key group, through the official OpenAI SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import openai
import pytest
import trio

from relay.config import loads
from tests.conftest import KEY, Served, serve_relay
from tests.gateway_e2e.conftest import key_entry, logs, mock_channel, relay_toml

VIP = "sk-relay-vip-key"
ALIASES = '[aliases]\nsmart = "mock-2"\npremium = "mock-vip"\n'
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def relay(sqlite_url: str) -> AsyncIterator[Served]:
    channels = mock_channel("public", models=("mock-1", "mock-2")) + mock_channel(
        "private", models=("mock-vip",), group="vip"
    )
    keys = key_entry("test", KEY) + key_entry("vip", VIP, group="vip")
    text = relay_toml(sqlite_url, channels=channels, keys=keys, server='default_model = "mock-1"', top=ALIASES)
    async with serve_relay(loads(text)) as served:
        yield served


@pytest.fixture
def sdk(relay: Served) -> Iterator[Callable[..., openai.OpenAI]]:
    """OpenAI clients of Relay, by key; closed before Relay stops (an open keep-alive connection would make its
    graceful shutdown linger)."""
    made: list[openai.OpenAI] = []

    def client(key: str = KEY) -> openai.OpenAI:
        made.append(openai.OpenAI(base_url=f"{relay.url}/v1", api_key=key, max_retries=0))
        return made[-1]

    yield client
    for one in made:
        one.close()


async def in_thread(fn: Any) -> Any:
    """The synchronous SDK off the event loop that serves Relay."""
    return await trio.to_thread.run_sync(fn)


async def test_an_alias_and_the_default_model_through_the_openai_sdk(
    sdk: Callable[..., openai.OpenAI], sqlite_url: str
) -> None:
    client = sdk()
    aliased = await in_thread(lambda: client.chat.completions.create(model="smart", messages=HI))
    assert aliased.model == "smart"  # the client's name for it comes back
    assert aliased.choices[0].message.content == "Echo: hi"
    unnamed = await in_thread(lambda: client.chat.completions.create(model=openai.omit, messages=HI))
    assert unnamed.model == "mock-1"
    streamed = await in_thread(
        lambda: [c.model for c in client.chat.completions.create(model="smart", messages=HI, stream=True)]
    )
    assert streamed and set(streamed) == {"smart"}
    records = await logs(sqlite_url, 3)
    assert [(r.requested_model, r.upstream_model, r.channel, r.status) for r in records] == [
        ("mock-2", "mock-2", "public", 200),
        ("mock-1", "mock-1", "public", 200),
        ("mock-2", "mock-2", "public", 200),
    ]


async def test_the_model_list_follows_the_keys_group(sdk: Callable[..., openai.OpenAI]) -> None:
    listed = await in_thread(lambda: [m.id for m in sdk().models.list()])
    assert listed == ["mock-1", "mock-2", "smart"]
    vip = sdk(VIP)
    assert await in_thread(lambda: [m.id for m in vip.models.list()]) == ["mock-vip", "premium"]
    # An alias of another group's model is not this key's: the channel behind it is not in its group.
    with pytest.raises(openai.NotFoundError) as raised:
        await in_thread(lambda: vip.chat.completions.create(model="smart", messages=HI))
    assert raised.value.code == "model_not_found"
    premium = await in_thread(lambda: vip.chat.completions.create(model="premium", messages=HI))
    assert premium.model == "premium"


async def test_retrieving_a_model_of_another_group_is_a_404(sdk: Callable[..., openai.OpenAI]) -> None:
    assert await in_thread(lambda: sdk(VIP).models.retrieve("premium").id) == "premium"
    with pytest.raises(openai.NotFoundError):
        await in_thread(lambda: sdk().models.retrieve("premium"))


async def test_an_empty_model_gets_the_default_model(sdk: Callable[..., openai.OpenAI]) -> None:
    client = sdk()
    reply = await in_thread(lambda: client.chat.completions.create(model="", messages=HI))
    assert reply.model == "mock-1"
