"""The circuit breaker: closed, open, half-open with one probe, abandonment; a fake clock, no sleeps."""

import pytest

from relay.gateway.breaker import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def opened(clock: Clock, failures: int = 3, cooldown: float = 30.0) -> Breaker:
    breaker = Breaker(failures, cooldown, clock)
    for _ in range(failures):
        breaker.failure()
    assert breaker.state == "open"
    return breaker


def test_closed_allows_everyone_and_opens_after_consecutive_failures(clock):
    breaker = Breaker(3, 30.0, clock)
    assert breaker.state == "closed"
    assert all(breaker.allow() for _ in range(10))
    assert breaker.retry_in() == 0.0
    breaker.failure()
    breaker.failure()
    assert breaker.state == "closed"
    assert breaker.allow()
    breaker.failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    assert not breaker.available()


def test_a_success_resets_the_consecutive_count(clock):
    breaker = Breaker(3, 30.0, clock)
    breaker.failure()
    breaker.failure()
    breaker.success()
    assert breaker.failures == 0
    breaker.failure()
    breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open"


def test_open_refuses_until_the_cooldown_is_over(clock):
    breaker = opened(clock)
    assert breaker.retry_in() == pytest.approx(30.0)
    clock.now += 29.5
    assert breaker.state == "open"
    assert not breaker.allow()
    assert breaker.retry_in() == pytest.approx(0.5)
    clock.now += 0.5
    assert breaker.state == "half_open"
    assert breaker.retry_in() == 0.0
    assert breaker.available()


def test_half_open_lets_exactly_one_probe_through(clock):
    breaker = opened(clock)
    clock.now += 30
    assert breaker.available()
    assert breaker.available()  # looking takes nothing
    assert breaker.allow()  # the probe
    assert not breaker.allow()
    assert not breaker.allow()
    assert not breaker.available()
    assert breaker.state == "half_open"
    assert breaker.retry_in() == pytest.approx(30.0)  # when the probe would count as lost


def test_the_probes_success_closes_it(clock):
    breaker = opened(clock)
    clock.now += 30
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed"
    assert breaker.failures == 0
    assert all(breaker.allow() for _ in range(5))
    breaker.failure()  # the count starts again from zero
    breaker.failure()
    assert breaker.state == "closed"


def test_the_probes_failure_opens_it_for_another_cooldown(clock):
    breaker = opened(clock)
    clock.now += 40
    assert breaker.allow()
    clock.now += 5
    breaker.failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    assert breaker.retry_in() == pytest.approx(30.0)  # from the probe's failure, not the first opening
    clock.now += 29.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()
    assert not breaker.allow()


def test_an_abandoned_probe_lets_another_through(clock):
    breaker = opened(clock)
    clock.now += 30
    assert breaker.allow()
    assert not breaker.allow()
    breaker.abandon()
    assert breaker.state == "half_open"
    assert breaker.allow()  # the second probe
    assert not breaker.allow()
    breaker.success()
    assert breaker.state == "closed"


def test_a_probe_that_never_reports_is_lost_after_a_cooldown(clock):
    breaker = opened(clock)
    clock.now += 30
    assert breaker.allow()
    clock.now += 29
    assert not breaker.allow()
    clock.now += 1
    assert breaker.available()
    assert breaker.allow()  # the first probe counts as lost
    assert not breaker.allow()


def test_reports_while_open_are_ignored(clock):
    breaker = opened(clock)
    clock.now += 10
    breaker.failure()  # a request that started before the breaker opened
    assert breaker.retry_in() == pytest.approx(20.0)  # the cool-down is not extended
    breaker.success()
    assert breaker.state == "open"  # nor cut short
    breaker.abandon()
    assert breaker.state == "open"


def test_abandon_when_closed_changes_nothing(clock):
    breaker = Breaker(2, 5.0, clock)
    breaker.failure()
    breaker.abandon()
    assert breaker.failures == 1
    assert breaker.state == "closed"


def test_one_failure_threshold(clock):
    breaker = Breaker(1, 1.0, clock)
    breaker.failure()
    assert breaker.state == "open"
    clock.now += 1
    assert breaker.allow()


@pytest.mark.parametrize(("failures", "cooldown"), [(0, 1.0), (1, 0.0)])
def test_bad_settings_are_refused(failures, cooldown):
    with pytest.raises(ValueError):
        Breaker(failures, cooldown)
