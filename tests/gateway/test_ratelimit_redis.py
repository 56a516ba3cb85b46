"""relay.gateway.ratelimit on a real Redis: exact boundaries, sliding windows, races across clients and processes."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from relay.gateway.ratelimit import RateLimitUnavailable, RedisLimiter, Verdict, retry_after, window_key
from relay.gateway.resp import RedisClient

ROOT = Path(__file__).resolve().parents[2]
#: The start of a minute window, far from the real clock: each test's ``now`` is under its control.
T0 = 60.0 * 28_000_000


def test_retry_after_is_the_rest_of_the_window() -> None:
    assert retry_after(T0) == 60.0
    assert retry_after(T0 + 12.5) == 48.0
    assert retry_after(T0 + 59.0) == 1.0
    assert retry_after(T0 + 59.5) == 1.0
    assert retry_after(T0 + 59.999) == 1.0


def test_window_keys_share_a_cluster_hash_tag() -> None:
    assert window_key("alice", 7) == "relay:rl:{alice}:7"


async def test_no_limits_cost_no_round_trip() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    limiter = RedisLimiter(f"redis://127.0.0.1:{port}/0")
    assert await limiter.admit("k", None, None, T0) == Verdict(True)


async def test_unreachable_redis_raises_rate_limit_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there
    limiter = RedisLimiter(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    start = trio.current_time()
    with pytest.raises(RateLimitUnavailable, match=f"127.0.0.1:{port}"):
        await limiter.admit("k", 10, None, T0)
    with pytest.raises(RateLimitUnavailable):
        await limiter.add_tokens("k", 5, T0)
    assert trio.current_time() - start < 0.5
    await limiter.aclose()


# --- real Redis ---------------------------------------------------------------------------------------------


@pytest.fixture
async def key_name(redis: RedisClient) -> AsyncIterator[str]:
    """A key name of this test's own; its windows are deleted afterwards (nothing else is)."""
    name = f"test-{uuid.uuid4().hex}"
    yield name
    keys = await redis.call("KEYS", window_key(name, 0)[:-1] + "*")
    if keys:
        await redis.call("DEL", *keys)


@pytest.fixture
async def limiter(redis_url: str) -> AsyncIterator[RedisLimiter]:
    limiter = RedisLimiter(redis_url)
    yield limiter
    await limiter.aclose()


async def admitted(limiter: RedisLimiter, name: str, rpm: int | None, tpm: int | None, now: float, n: int) -> int:
    return sum([(await limiter.admit(name, rpm, tpm, now)).allowed for _ in range(n)])


async def test_rpm_exact_at_the_boundary(limiter: RedisLimiter, redis: RedisClient, key_name: str) -> None:
    for _ in range(5):
        assert await limiter.admit(key_name, 5, None, T0 + 10) == Verdict(True)
    assert await limiter.admit(key_name, 5, None, T0 + 10) == Verdict(False, "rpm", 50.0)
    assert await limiter.admit(key_name, 5, None, T0 + 59.5) == Verdict(False, "rpm", 1.0)
    window = window_key(key_name, int(T0 // 60))
    assert await redis.call("HGETALL", window) == [b"requests", b"5"]  # refusals are not counted
    assert 0 < await redis.call("TTL", window) <= 120
    assert await limiter.admit(key_name, 0, None, T0) == Verdict(False, "rpm", 60.0)


async def test_window_slides(limiter: RedisLimiter, key_name: str) -> None:
    assert await admitted(limiter, key_name, 10, None, T0, 12) == 10
    # Half-way through the next window the previous one still counts for half: 10 * 0.5 = 5.
    assert await admitted(limiter, key_name, 10, None, T0 + 90, 8) == 5
    assert await limiter.admit(key_name, 10, None, T0 + 90) == Verdict(False, "rpm", 30.0)
    # At the start of the window after, the previous one (5 requests) counts in full.
    assert await admitted(limiter, key_name, 10, None, T0 + 120, 8) == 5
    # Three quarters through: 5 * 0.25 + 5 + 1 = 7.25 <= 10, 8.25, 9.25, 10.25 > 10.
    assert await admitted(limiter, key_name, 10, None, T0 + 165, 8) == 3
    # Two windows later nothing is left of those.
    assert await admitted(limiter, key_name, 10, None, T0 + 300, 12) == 10


async def test_tpm_counts_tokens_added_after_requests(limiter: RedisLimiter, key_name: str) -> None:
    assert await limiter.admit(key_name, None, 100, T0 + 1) == Verdict(True)
    await limiter.add_tokens(key_name, 99, T0 + 2)
    assert await limiter.admit(key_name, None, 100, T0 + 3) == Verdict(True)  # 99 < 100
    await limiter.add_tokens(key_name, 1, T0 + 4)
    await limiter.add_tokens(key_name, 0, T0 + 4)  # nothing to count
    assert await limiter.admit(key_name, None, 100, T0 + 20) == Verdict(False, "tpm", 40.0)
    assert await limiter.admit(key_name, 50, 100, T0 + 20) == Verdict(False, "tpm", 40.0)
    # Next window, a third in: 100 * (2/3) = 66.7 < 100.
    assert await limiter.admit(key_name, None, 100, T0 + 80) == Verdict(True)
    await limiter.add_tokens(key_name, 34, T0 + 80)  # 66.7 + 34 >= 100
    assert await limiter.admit(key_name, None, 100, T0 + 80) == Verdict(False, "tpm", 40.0)


async def test_rpm_is_checked_before_tpm(limiter: RedisLimiter, key_name: str) -> None:
    assert await limiter.admit(key_name, 1, 10, T0) == Verdict(True)
    await limiter.add_tokens(key_name, 10, T0)
    assert await limiter.admit(key_name, 1, 10, T0) == Verdict(False, "rpm", 60.0)
    assert await limiter.admit(key_name, 2, 10, T0) == Verdict(False, "tpm", 60.0)


async def test_redis_script_flush_is_survived(limiter: RedisLimiter, redis: RedisClient, key_name: str) -> None:
    assert await limiter.admit(key_name, 2, None, T0) == Verdict(True)
    await redis.call("SCRIPT", "FLUSH")
    assert await limiter.admit(key_name, 2, None, T0) == Verdict(True)
    assert await limiter.admit(key_name, 2, None, T0) == Verdict(False, "rpm", 60.0)


async def test_two_limiters_racing_from_many_tasks(redis_url: str, key_name: str) -> None:
    limiters = [RedisLimiter(redis_url), RedisLimiter(redis_url)]
    verdicts: list[Verdict] = []

    async def hammer(limiter: RedisLimiter) -> None:
        for _ in range(4):
            verdicts.append(await limiter.admit(key_name, 37, None, T0 + 30))

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(hammer, limiters[i % 2])
    for limiter in limiters:
        await limiter.aclose()
    assert len(verdicts) == 200
    assert sum(v.allowed for v in verdicts) == 37
    assert {v for v in verdicts if not v.allowed} == {Verdict(False, "rpm", 30.0)}


WORKER = textwrap.dedent(
    """
    import sys, trio
    from relay.gateway.ratelimit import RedisLimiter

    async def main(url, name, rpm, now, tasks, each):
        limiter = RedisLimiter(url)
        await limiter.admit(name + "-warm", 1, None, now)  # connected and the script loaded
        print("ready", flush=True)
        sys.stdin.readline()
        allowed = 0

        async def hammer():
            nonlocal allowed
            for _ in range(each):
                verdict = await limiter.admit(name, rpm, None, now)  # awaited before the += reads allowed
                allowed += verdict.allowed

        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(hammer)
        print(allowed, flush=True)
        await limiter.aclose()

    url, name, rpm, now, tasks, each = sys.argv[1:]
    trio.run(main, url, name, int(rpm), float(now), int(tasks), int(each))
    """
)


def redis_call(url: str, *command: str | int) -> object:
    """One Redis command from a synchronous test."""

    async def call() -> object:
        async with RedisClient(url) as client:
            return await client.call(*command)

    return trio.run(call)


def run_workers(args: list[str]) -> list[int]:
    """Two worker processes, started together once both are connected; what each admitted."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        counts = [int(proc.communicate(timeout=10)[0]) for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0]
        return counts
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_two_processes_hammering_one_key_admit_exactly_rpm(redis_url: str) -> None:
    name, rpm, now = f"test-{uuid.uuid4().hex}", 150, T0 + 7
    window = window_key(name, int(now // 60))
    try:
        counts = run_workers([redis_url, name, str(rpm), str(now), "20", "10"])  # 200 attempts in each
        assert sum(counts) == rpm, counts
        assert redis_call(redis_url, "HGET", window, "requests") == str(rpm).encode()
    finally:
        redis_call(redis_url, "DEL", window, window_key(name + "-warm", int(now // 60)))
