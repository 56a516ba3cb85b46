"""relay.toml: every problem is a ``path: problem`` line; ${VAR}; ``check-config`` and ``serve`` on bad files."""

import textwrap

import pytest

from relay.config import ConfigError, loads
from tests.conftest import ROOT
from tests.helpers import relay_cli, write

GOOD = """
[server]
listen = "127.0.0.1:0"

[[channels]]
name = "up"
type = "openai"
base_url = "http://127.0.0.1:9000/v1"
api_key = "${UP_KEY:-sk-none}"
models = ["gpt-*"]
[channels.model_map]
fast = "gpt-4o-mini"
[channels.timeouts]
connect = 1
first_byte = 2.5

[[keys]]
name = "dev"
key = "${DEV_KEY}"
models = ["gpt-*"]
"""
ENV = {"DEV_KEY": "sk-dev-12345"}


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        loads(textwrap.dedent(text), ENV if environ is None else environ)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def channel(**fields: str) -> str:
    base = {"name": '"c"', "type": '"openai"', "base_url": '"http://h/v1"', "models": '["m"]'}
    base.update(fields)
    return "[[channels]]\n" + "".join(f"{k} = {v}\n" for k, v in base.items() if v)


def test_good_config_loads_with_environment_and_defaults():
    config = loads(GOOD, {**ENV, "UP_KEY": "sk-from-env"})
    (up,) = config.channels
    assert up.api_key == "sk-from-env"
    assert config.keys[0].key == "sk-dev-12345"
    assert up.timeouts.connect == 1.0 and isinstance(up.timeouts.connect, float)
    assert up.timeouts.first_byte == 2.5
    assert up.timeouts.idle == 120.0  # default kept
    assert up.model_map == {"fast": "gpt-4o-mini"}


def test_default_is_used_when_the_variable_is_unset():
    assert loads(GOOD, ENV).channels[0].api_key == "sk-none"


def test_missing_variable_is_an_error_naming_it():
    assert problems(GOOD, {}) == ["keys[0].key: environment variable DEV_KEY is not set"]


def test_unknown_keys_are_reported_with_their_path():
    text = "surprise = 1\n" + GOOD + "\n[limits]\nmax_head = 5\n"
    assert problems(text) == ["limits.max_head: unknown key", "surprise: unknown key"]
    assert problems(channel(colour='"red"')) == ["channels[0].colour: unknown key"]


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("[server]\nworkers = true", "server.workers: expected an integer, got a boolean (True)"),
        ("[server]\nworkers = 1.5", "server.workers: expected an integer, got a number (1.5)"),
        ('[server]\naccess_log = "yes"', "server.access_log: expected true or false, got a string ('yes')"),
        ("[limits]\nhead_timeout = true", "limits.head_timeout: expected a number, got a boolean (True)"),
        ("server = 5", "server: expected a table, got an integer (5)"),
        ("channels = 5", "channels: expected an array, got an integer (5)"),
        ("channels = [1]", "channels[0]: expected a table, got an integer (1)"),
        (channel(models='"m"'), "channels[0].models: expected an array, got a string ('m')"),
        (channel(models='["a", 2]'), "channels[0].models[1]: expected a string, got an integer (2)"),
        (channel() + "timeouts = 3\n", "channels[0].timeouts: expected a table, got an integer (3)"),
        (
            channel() + '[channels.timeouts]\nidle = "x"\n',
            "channels[0].timeouts.idle: expected a number, got a string ('x')",
        ),
        (
            channel() + "[channels.model_map]\nx = 1\n",
            "channels[0].model_map: expected string values, got an integer (1) for 'x'",
        ),
    ],
)
def test_wrong_types(snippet, expected):
    assert problems(snippet) == [expected]


def test_missing_fields():
    assert problems('[[channels]]\nname = "c"\n') == [
        "channels[0].type: required key missing",
        "channels[0].models: required key missing",
    ]
    assert problems('[[keys]]\nname = "k"\n') == ["keys[0].key: required key missing"]


def test_bad_enum_value_lists_the_choices():
    assert problems(channel(type='"anthropix"')) == [
        "channels[0].type: must be one of 'openai', 'anthropic', 'gemini', 'mock', "
        "'tavily', 'exa', 'brave', 'searxng', got 'anthropix'"
    ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://h/v1", "must be an http:// or https:// URL with a host, got 'ftp://h/v1'"),
        ("h/v1", "must be an http:// or https:// URL with a host, got 'h/v1'"),
        ("http:///v1", "must be an http:// or https:// URL with a host, got 'http:///v1'"),
        ("", "must be an http:// or https:// URL without spaces, got ''"),
        ("http://h x/v1", "must be an http:// or https:// URL without spaces, got 'http://h x/v1'"),
        ("http://h:99999/v1", "port must be a number from 1 to 65535, got 'http://h:99999/v1'"),
        ("http://h:port/v1", "port must be a number from 1 to 65535, got 'http://h:port/v1'"),
        ("http://h/v1?x=1", "must have no query or fragment, got 'http://h/v1?x=1'"),
    ],
)
def test_bad_urls(url, problem):
    assert problems(channel(base_url=f'"{url}"')) == [f"channels[0].base_url: {problem}"]


def test_good_urls():
    for url in ("http://h/v1", "https://api.example.com/v1/", "http://127.0.0.1:8000", "http://[::1]:8000/v1"):
        assert loads(channel(base_url=f'"{url}"')).channels[0].base_url == url


def test_credentials_in_url_are_refused_without_being_printed():
    (problem,) = problems(channel(base_url='"http://user:s3cret@h/v1"'))
    assert problem.startswith("channels[0].base_url: must not hold credentials")
    assert "s3cret" not in problem


def test_mock_channel_needs_no_url():
    assert loads('[[channels]]\nname = "m"\ntype = "mock"\nmodels = ["m-*"]\n').channels[0].type == "mock"


def test_duplicate_names_and_secrets():
    text = (
        channel(name='"a"')
        + channel(name='"a"')
        + '[[keys]]\nname = "k"\nkey = "sk-secret-1"\n'
        + '[[keys]]\nname = "k"\nkey = "sk-secret-1"\n'
    )
    found = problems(text)
    assert found == [
        "channels[1].name: duplicate 'a', already used by channels[0]",
        "keys[1].name: duplicate 'k', already used by keys[0]",
        "keys[1].key: duplicate, already used by keys[0]",
    ]
    assert not any("sk-secret-1" in p for p in found)


def test_secret_of_the_wrong_type_is_not_printed():
    (problem,) = problems('[[keys]]\nname = "k"\nkey = 1234567890\n')
    assert problem == "keys[0].key: expected a string, got an integer"


def test_ranges():
    text = '[server]\nworkers = 0\nlisten = "nowhere"\n[limits]\nmax_body_bytes = 0\n' + channel()
    text += '[channels.timeouts]\ntotal = 0\n[[keys]]\nname = "k"\nkey = "short"\n'
    assert problems(text) == [
        "server.listen: expected HOST:PORT, got 'nowhere'",
        "server.workers: must be at least 1",
        "limits.max_body_bytes: must be greater than 0",
        "channels[0].timeouts.total: must be greater than 0",
        "keys[0].key: must be at least 8 characters",
    ]


def test_channel_needs_a_model_and_mock_a_chunk():
    text = (
        channel(models="[]") + '[[channels]]\nname = "m"\ntype = "mock"\nmodels = ["x"]\n[channels.mock]\nchunks = 0\n'
    )
    assert problems(text) == [
        "channels[0].models: list at least one model",
        "channels[1].mock.chunks: must be at least 1",
    ]
    aliases_only = channel(models="[]") + '[channels.model_map]\nfast = "gpt-4o"\n'
    assert loads(aliases_only).channels[0].model_map == {"fast": "gpt-4o"}


def test_every_problem_is_reported_in_one_run():
    text = channel(name='"a"', type='"nope"') + channel(name='"a"', base_url='"ftp://x"', extra="1")
    assert problems(text) == [
        "channels[0].type: must be one of 'openai', 'anthropic', 'gemini', 'mock', "
        "'tavily', 'exa', 'brave', 'searxng', got 'nope'",
        "channels[1].extra: unknown key",
        "channels[1].name: duplicate 'a', already used by channels[0]",
        "channels[1].base_url: must be an http:// or https:// URL with a host, got 'ftp://x'",
    ]


def test_toml_syntax_error():
    (problem,) = problems("[server\n")
    assert problem.startswith("toml: ")


def test_check_config_accepts_the_shipped_file():
    result = relay_cli("check-config", str(ROOT / "relay.toml"))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_check_config_prints_every_problem_and_fails(tmp_path):
    path = write(tmp_path, channel(type='"nope"') + channel(base_url='"ftp://x"') + "[server]\nworkers = 0\n")
    result = relay_cli("check-config", str(path))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"{path}: channels[0].type: must be one of 'openai', 'anthropic', 'gemini', 'mock', "
        "'tavily', 'exa', 'brave', 'searxng', got 'nope'",
        f"{path}: server.workers: must be at least 1",
        f"{path}: channels[1].name: duplicate 'c', already used by channels[0]",
        f"{path}: channels[1].base_url: must be an http:// or https:// URL with a host, got 'ftp://x'",
    ]


def test_check_config_names_a_missing_variable(tmp_path):
    path = write(tmp_path, GOOD)
    assert relay_cli("check-config", str(path), env=ENV).returncode == 0
    result = relay_cli("check-config", str(path))
    assert result.returncode != 0
    assert result.stderr.strip() == f"{path}: keys[0].key: environment variable DEV_KEY is not set"


def test_check_config_on_a_missing_file(tmp_path):
    result = relay_cli("check-config", str(tmp_path / "absent.toml"))
    assert result.returncode != 0
    assert "cannot read" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_a_bad_config_exits_without_serving(tmp_path):
    path = write(tmp_path, channel(type='"nope"'))
    result = relay_cli("serve", "--config", str(path), "--listen", "127.0.0.1:0")
    assert result.returncode != 0
    assert "listening" not in result.stdout
    assert "channels[0].type: must be one of" in result.stderr
    assert "Traceback" not in result.stderr


def test_gateway_ranges_and_forms_are_all_reported_in_one_run():
    text = (
        '[store]\nurl = "mysql://h/db"\nkey_refresh = 0\nlog_batch = 0\n'
        '[ratelimit]\nurl = "http://redis"\n'
        "[routing]\nmax_attempts = 0\nbreaker_cooldown = 0\n"
        "[quota]\ndefault_max_output_tokens = 0\n"
        '[[prices]]\nmodel = "m*"\ninput = -1\noutput = 1\n'
        '[aliases]\na = "b"\nb = "m"\nself = "self"\n'
        + channel(weight="0", price_multiplier="-1", group='" , "')
        + '[[keys]]\nname = "k"\nkey = "sk-12345678#pin"\nquota = -1\nrpm = 0\n'
        + 'expires = "soon"\nips = ["10.0.0.0/33"]\n'
    )
    assert problems(text) == [
        "channels[0].weight: must be at least 1",
        "channels[0].price_multiplier: must be at least 0",
        "channels[0].group: name at least one group",
        "keys[0].key: must not contain '#' (it separates a key from a pinned channel)",
        "keys[0].quota: must be at least 0",
        "keys[0].rpm: must be at least 1",
        "keys[0].expires: expected YYYY-MM-DD or an ISO 8601 time, got 'soon'",
        "keys[0].ips[0]: expected an IP address or a CIDR, got '10.0.0.0/33'",
        "store.url: store url 'mysql://h/db' has scheme 'mysql'; Relay supports sqlite:///relative/path.db, "
        "sqlite:////absolute/path.db, sqlite://:memory: or postgresql://user@host/db",
        "store.key_refresh: must be greater than 0",
        "store.log_batch: must be at least 1",
        "ratelimit.url: expected redis://HOST:PORT/DB (or empty for the store), got 'http://redis'",
        "routing.max_attempts: must be at least 1",
        "routing.breaker_cooldown: must be greater than 0",
        "quota.default_max_output_tokens: must be at least 1",
        "prices[0].input: must be at least 0",
        "aliases.a: 'b' is itself an alias; name the model",
        "aliases.self: must name another model, got 'self'",
    ]


def test_a_relative_sqlite_store_is_taken_from_the_config_files_folder(tmp_path):
    from relay.config import load

    path = write(tmp_path, GOOD + '[store]\nurl = "sqlite:///data/relay.db"\n')
    assert load(path, ENV).store.url == f"sqlite:///{tmp_path.resolve()}/data/relay.db"
