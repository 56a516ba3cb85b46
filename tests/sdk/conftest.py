"""The official SDKs through ``relay serve`` to ``relay mock-upstream``, one pair of subprocesses per session.

Relay has four channels, all pointing at the same mock upstream, each speaking its own dialect and serving
its own models, so a test picks the upstream dialect by the model it asks for:

=============  ====================================  ==========================
model          channel                               upstream API
=============  ====================================  ==========================
``chat-1``     ``openai``                            Chat Completions
``resp-1``     ``openai``, ``api = "responses"``     Responses
``claude-1``   ``anthropic``                         Messages
``gemini-1``   ``gemini``                            generateContent
=============  ====================================  ==========================

Every test takes ``model`` (one of the four) and runs once per upstream dialect.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import KEY, process
from tests.helpers import MOCK_ARGS

#: The one model of each upstream dialect the tests ask for.
MODELS = ("chat-1", "resp-1", "claude-1", "gemini-1")
#: Served by no channel, but the key may use it: a 404 from routing.
UNKNOWN = "ghost-1"
#: Served by a channel, but the key may not use it: a 403.
FORBIDDEN = "chat-secret"

CHANNELS = (
    # (name, type, base_url suffix, extra keys, model patterns)
    ("chat", "openai", "/v1", "", "chat"),
    ("resp", "openai", "/v1", 'api = "responses"\n', "resp"),
    ("claude", "anthropic", "", "", "claude"),
    ("gemini", "gemini", "", "", "gemini"),
)


def relay_toml(upstream: str) -> str:
    """Four channels on the mock at ``upstream`` (``http://host:port``) and one key."""
    channels = "".join(
        f"""
[[channels]]
name = "{name}"
type = "{kind}"
base_url = "{upstream}{suffix}"
api_key = "sk-upstream-{name}"
{extra}models = ["{prefix}-1", "{prefix}-*"]
[channels.timeouts]
first_byte = 10
idle = 10
"""
        for name, kind, suffix, extra, prefix in CHANNELS
    )
    return f"""
[server]
listen = "127.0.0.1:0"
access_log = false

# The tests provoke upstream errors on purpose (429s, 500s): keys must not rest nor breakers open here.
[routing]
key_rest = 0.001
breaker_failures = 1000
{channels}
[[keys]]
name = "sdk"
key = "{KEY}"
models = ["chat-1", "resp-*", "claude-*", "gemini-*", "ghost-*"]
"""


@pytest.fixture(scope="session")
def relay_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://host:port`` of ``relay serve`` in front of ``relay mock-upstream``, both subprocesses."""
    with process(*MOCK_ARGS) as (_, upstream):
        path = tmp_path_factory.mktemp("sdk") / "relay.toml"
        path.write_text(relay_toml(f"http://{upstream}"))
        with process("serve", "--config", str(path), "--listen", "127.0.0.1:0") as (_, address):
            yield f"http://{address}"


@pytest.fixture(params=MODELS)
def model(request: pytest.FixtureRequest) -> str:
    """The model of one upstream dialect: every test that takes it runs for the four."""
    return request.param
