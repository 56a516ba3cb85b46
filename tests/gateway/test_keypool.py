"""Upstream key pools: round robin, set aside on 401/403, rest on 429; a fake clock, no sleeps."""

import pytest

from relay.gateway.keypool import KeyPool


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def pool(clock: Clock, keys=("k1", "k2", "k3")) -> KeyPool:
    return KeyPool(keys, clock, set_aside=600.0, default_rest=10.0)


def test_keys_are_used_in_turn(clock):
    keys = pool(clock)
    assert [keys.take() for _ in range(7)] == ["k1", "k2", "k3", "k1", "k2", "k3", "k1"]
    assert keys.usable()
    assert keys.retry_in() == 0.0


def test_duplicates_and_empty_keys_are_dropped():
    keys = KeyPool(["a", "", "b", "a"], set_aside=1.0, default_rest=1.0)
    assert keys.keys == ("a", "b")


def test_a_pool_without_keys_gives_the_empty_key_and_never_rests(clock):
    keys = pool(clock, ())
    assert keys.take() == ""
    keys.refused("")
    keys.rest("", 100)
    assert keys.take() == ""
    assert keys.usable()
    assert keys.retry_in() == 0.0


def test_a_refused_key_is_set_aside(clock):
    keys = pool(clock)
    assert keys.take() == "k1"
    keys.refused("k1")
    assert [keys.take() for _ in range(4)] == ["k2", "k3", "k2", "k3"]
    clock.now += 599
    assert [keys.take() for _ in range(2)] == ["k2", "k3"]
    clock.now += 1
    assert [keys.take() for _ in range(3)] == ["k1", "k2", "k3"]


def test_a_rate_limited_key_rests_for_its_retry_after(clock):
    keys = pool(clock)
    keys.rest("k2", 3.0)
    assert [keys.take() for _ in range(3)] == ["k1", "k3", "k1"]
    clock.now += 3
    assert [keys.take() for _ in range(3)] == ["k2", "k3", "k1"]


def test_a_rate_limited_key_without_retry_after_rests_the_default(clock):
    keys = pool(clock)
    keys.rest("k1")
    clock.now += 9.9
    assert [keys.take() for _ in range(2)] == ["k2", "k3"]
    clock.now += 0.1
    assert keys.take() == "k1"


def test_the_longer_rest_wins(clock):
    keys = pool(clock, ("a",))
    keys.refused("a")
    keys.rest("a", 5)  # a 429 does not bring back a key the upstream refused
    assert keys.retry_in() == pytest.approx(600.0)
    keys.rest("a", 900)
    assert keys.retry_in() == pytest.approx(900.0)


def test_every_key_resting_gives_none_and_the_soonest_comeback(clock):
    keys = pool(clock)
    keys.rest("k1", 20)
    keys.refused("k2")
    keys.rest("k3", 7.5)
    assert keys.take() is None
    assert not keys.usable()
    assert keys.resting() == 3
    assert keys.retry_in() == pytest.approx(7.5)
    clock.now += 7.5
    assert keys.usable()
    assert keys.take() == "k3"
    assert keys.take() == "k3"


def test_unknown_keys_and_negative_rests_are_harmless(clock):
    keys = pool(clock)
    keys.refused("not-in-the-pool")
    keys.rest("k1", -5)
    assert keys.resting() == 0
    assert [keys.take() for _ in range(3)] == ["k1", "k2", "k3"]


def test_the_repr_shows_no_secret(clock):
    keys = pool(clock, ("sk-very-secret",))
    keys.refused("sk-very-secret")
    assert "secret" not in repr(keys)
    assert repr(keys) == "<KeyPool 1 keys, 1 resting>"
