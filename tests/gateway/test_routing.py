"""Router: model names (aliases, default), plans (priority, weights, groups, pins), health (breakers, keys)."""

import random
import textwrap
from collections import Counter

import pytest

from relay.config import loads
from relay.errors import RelayError
from relay.gateway.routing import Candidate, Router, listed_models, resolve


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


CHANNELS = """
[routing]
breaker_failures = 2
breaker_cooldown = 30
key_rest = 10
key_set_aside = 600

[aliases]
smart = "gpt-4o"
cheap = "gpt-4o-mini"

[[channels]]
name = "primary"
type = "openai"
models = ["gpt-*"]
priority = 10
api_keys = ["pk1", "pk2"]

[[channels]]
name = "backup-a"
type = "openai"
models = ["gpt-*"]
weight = 3
api_key = "ba"

[[channels]]
name = "backup-b"
type = "anthropic"
models = []
weight = 1
[channels.model_map]
gpt-4o = "claude-sonnet-4"

[[channels]]
name = "vip-only"
type = "openai"
models = ["gpt-4o", "o3"]
priority = 20
group = "vip"

[[channels]]
name = "shared"
type = "mock"
models = ["mock-*"]
group = "default, vip"
"""


def router(extra: str = "", clock: Clock | None = None, seed: int = 7, channels: str = CHANNELS) -> Router:
    config = loads(textwrap.dedent(extra) + channels)
    return Router(config, rng=random.Random(seed), clock=clock or Clock())


def names(plan: list[Candidate]) -> list[str]:
    return [candidate.channel.name for candidate in plan]


def error_of(call, *args) -> RelayError:
    with pytest.raises(RelayError) as caught:
        call(*args)
    return caught.value


# ---- model names --------------------------------------------------------------------------------


def test_a_named_model_passes_through_aliases_one_level():
    r = router()
    assert r.model("gpt-4o") == "gpt-4o"
    assert r.model("smart") == "gpt-4o"
    assert r.model("cheap") == "gpt-4o-mini"
    assert r.model("unknown-model") == "unknown-model"  # plan() is what says 404


def test_the_default_model_serves_requests_that_name_none():
    r = router('[server]\ndefault_model = "smart"\n')
    assert r.model(None) == "gpt-4o"  # the default may be an alias
    assert r.model("") == "gpt-4o"
    assert r.model("o3") == "o3"


@pytest.mark.parametrize("requested", [None, ""])
def test_no_model_and_no_default_is_a_400(requested):
    error = error_of(router().model, requested)
    assert (error.status, error.kind, error.param) == (400, "invalid_request", "model")


# ---- plans: priority, weights, groups ------------------------------------------------------------


def test_higher_priority_comes_first():
    plan = router().plan("gpt-4o", "default")
    assert names(plan)[0] == "primary"
    assert sorted(names(plan)[1:]) == ["backup-a", "backup-b"]
    assert [c.upstream_model for c in plan if c.channel.name == "backup-b"] == ["claude-sonnet-4"]
    assert [c.upstream_model for c in plan if c.channel.name != "backup-b"] == ["gpt-4o", "gpt-4o"]


def test_weights_are_the_share_of_first_picks():
    channels = "".join(f'[[channels]]\nname = "c{w}"\ntype = "mock"\nmodels = ["m"]\nweight = {w}\n' for w in (1, 2, 7))
    r = router(channels=channels, seed=2024)
    runs = 10_000
    firsts: Counter[str] = Counter()
    seconds_after_c7: Counter[str] = Counter()
    for _ in range(runs):
        plan = names(r.plan("m", "default"))
        assert sorted(plan) == ["c1", "c2", "c7"]  # every channel, each once
        firsts[plan[0]] += 1
        if plan[0] == "c7":
            seconds_after_c7[plan[1]] += 1
    expected = {"c1": 0.1 * runs, "c2": 0.2 * runs, "c7": 0.7 * runs}
    chi_square = sum((firsts[name] - e) ** 2 / e for name, e in expected.items())
    assert chi_square < 13.8, firsts  # 2 degrees of freedom, p = 0.001
    # Without replacement: after c7, c2 comes before c1 two times in three.
    share = seconds_after_c7["c2"] / sum(seconds_after_c7.values())
    assert share == pytest.approx(2 / 3, abs=0.03)


def test_weights_follow_the_channels_not_the_file_order():
    channels = "".join(
        f'[[channels]]\nname = "{n}"\ntype = "mock"\nmodels = ["m"]\nweight = {w}\n' for n, w in (("x", 9), ("y", 1))
    )
    r = router(channels=channels, seed=1)
    firsts = Counter(names(r.plan("m", "default"))[0] for _ in range(2000))
    assert 0.86 < firsts["x"] / 2000 < 0.94


def test_a_seeded_rng_gives_the_same_plans():
    r1, r2 = router(seed=5), router(seed=5)
    assert [names(r1.plan("gpt-4o", "default")) for _ in range(50)] == [
        names(r2.plan("gpt-4o", "default")) for _ in range(50)
    ]


def test_groups_decide_which_channels_a_key_sees():
    r = router()
    assert "vip-only" not in names(r.plan("gpt-4o", "default"))
    vip = names(r.plan("gpt-4o", "vip"))
    assert vip == ["vip-only"]  # the other gpt channels serve only "default"
    assert names(r.plan("mock-1", "vip")) == ["shared"]  # "default, vip": spaces around commas are fine
    assert names(r.plan("mock-1", "default")) == ["shared"]


def test_a_model_no_channel_serves_is_a_404():
    error = error_of(router().plan, "nope", "default")
    assert (error.status, error.kind, error.code, error.param) == (404, "not_found", "model_not_found", "model")
    assert error.message == "The model 'nope' does not exist or no channel serves it"


def test_a_model_only_another_group_serves_is_a_404_for_this_key():
    error = error_of(router().plan, "o3", "default")
    assert (error.status, error.code) == (404, "model_not_found")
    assert names(router().plan("o3", "vip")) == ["vip-only"]


# ---- pins ----------------------------------------------------------------------------------------


def test_a_pin_gives_only_that_channel():
    r = router()
    assert names(r.plan("gpt-4o", "default", pin="backup-b")) == ["backup-b"]
    assert r.plan("gpt-4o", "default", pin="backup-b")[0].upstream_model == "claude-sonnet-4"
    assert names(r.plan("gpt-4o", "vip", pin="vip-only")) == ["vip-only"]


def test_a_pin_to_a_channel_of_another_group_is_refused_like_an_unknown_channel():
    error = error_of(router().plan, "gpt-4o", "default", "vip-only")
    assert (error.status, error.kind, error.code) == (404, "not_found", "channel_not_found")
    assert error.message == error_of(router().plan, "gpt-4o", "default", "nowhere").message


def test_a_pin_to_an_unknown_channel_is_a_404():
    error = error_of(router().plan, "gpt-4o", "default", "nowhere")
    assert (error.status, error.kind, error.code) == (404, "not_found", "channel_not_found")


def test_a_pin_to_a_channel_that_does_not_serve_the_model_is_a_404():
    error = error_of(router().plan, "mock-1", "default", "primary")
    assert (error.status, error.kind, error.code) == (404, "not_found", "channel_not_found")


def test_a_pinned_channel_that_is_unfit_is_a_503():
    clock = Clock()
    r = router(clock=clock)
    r.breaker("backup-a").failure()
    r.breaker("backup-a").failure()
    error = error_of(r.plan, "gpt-4o", "default", "backup-a")
    assert (error.status, error.code) == (503, "no_healthy_channel")
    assert error.headers == ((b"retry-after", b"30"),)


# ---- health: breakers and key pools ---------------------------------------------------------------


def test_channels_with_an_open_breaker_are_left_out_until_half_open():
    clock = Clock()
    r = router(clock=clock)
    r.breaker("primary").failure()
    r.breaker("primary").failure()
    assert r.breaker("primary").state == "open"
    assert "primary" not in names(r.plan("gpt-4o", "default"))
    clock.now += 30
    assert names(r.plan("gpt-4o", "default"))[0] == "primary"  # half-open: offered to be probed
    assert r.breaker("primary").allow()  # the failover loop takes the probe
    assert "primary" not in names(r.plan("gpt-4o", "default"))  # while it is out, nobody else gets it
    r.breaker("primary").success()
    assert names(r.plan("gpt-4o", "default"))[0] == "primary"


def test_planning_takes_no_probe():
    clock = Clock()
    r = router(clock=clock)
    for _ in range(2):
        r.breaker("primary").failure()
    clock.now += 30
    for _ in range(3):
        assert names(r.plan("gpt-4o", "default"))[0] == "primary"
    assert r.breaker("primary").allow()
    assert not r.breaker("primary").allow()


def test_channels_whose_keys_all_rest_are_left_out():
    clock = Clock()
    r = router(clock=clock)
    pool = r.keys("primary")
    assert [pool.take() for _ in range(3)] == ["pk1", "pk2", "pk1"]
    pool.refused("pk1")
    assert names(r.plan("gpt-4o", "default"))[0] == "primary"  # pk2 still serves
    pool.rest("pk2", 4)
    assert "primary" not in names(r.plan("gpt-4o", "default"))
    clock.now += 4
    assert names(r.plan("gpt-4o", "default"))[0] == "primary"
    assert pool.take() == "pk2"


def test_a_channel_without_keys_is_always_usable_as_far_as_keys_go():
    r = router()
    assert r.keys("backup-b").take() == ""
    assert r.keys("backup-b").usable()


def test_all_unfit_is_a_503_with_the_soonest_retry_after():
    clock = Clock()
    r = router(clock=clock)
    for _ in range(2):
        r.breaker("primary").failure()  # back in 30 s
    r.keys("backup-a").rest("ba", 12.2)  # back in 12.2 s
    clock.now += 5
    r.breaker("backup-b").failure()
    r.breaker("backup-b").failure()  # back in 30 s
    error = error_of(r.plan, "gpt-4o", "default")
    assert (error.status, error.kind, error.code) == (503, "upstream", "no_healthy_channel")
    assert error.headers == ((b"retry-after", b"8"),)  # 12.2 - 5 = 7.2, rounded up
    clock.now += 7.2
    assert names(r.plan("gpt-4o", "default")) == ["backup-a"]


def test_the_retry_after_waits_for_both_breaker_and_keys():
    clock = Clock()
    r = router(clock=clock)
    for name in ("primary", "backup-b"):
        r.breaker(name).failure()
        r.breaker(name).failure()
    r.keys("backup-a").refused("ba")  # 600 s
    r.keys("primary").rest("pk1", 100)
    r.keys("primary").rest("pk2", 50)
    r.breaker("backup-a").failure()
    r.breaker("backup-a").failure()
    error = error_of(r.plan, "gpt-4o", "default")
    assert error.headers == ((b"retry-after", b"30"),)  # backup-b: breaker 30 s, no keys
    r.breaker("backup-b").success()  # ignored while open
    clock.now += 29.9
    error = error_of(r.plan, "gpt-4o", "default")
    assert error.headers == ((b"retry-after", b"1"),)  # 0.1 s, at least 1


def test_unavailable_without_candidates_still_says_retry_after():
    error = router().unavailable("m", [])
    assert error.headers == ((b"retry-after", b"1"),)


# ---- the simple resolver and model lists ----------------------------------------------------------


def test_resolve_and_listed_models_still_work():
    config = loads(CHANNELS)
    route = resolve(config.channels, "gpt-4o")
    assert (route.channel.name, route.upstream_model) == ("primary", "gpt-4o")
    assert listed_models(config.channels) == ["gpt-4o", "o3"]
    with pytest.raises(RelayError):
        resolve(config.channels, "nope")
