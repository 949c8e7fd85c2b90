"""The per-client rate limit, on a fake clock: a burst, then one question per interval, memory bounded."""

import threading

import pytest

from bot.serve.ratelimit import DEFAULT_RATE_LIMIT, RateLimiter


def test_rate_limiter_allows_a_burst_then_one_per_interval():
    now = [0.0]
    limiter = RateLimiter(6, clock=lambda: now[0])  # 6 a minute: one every 10 s after the burst
    assert [limiter.allow("a") for _ in range(7)] == [True] * 6 + [False]
    assert limiter.allow("b")  # another client has its own allowance
    assert limiter.retry_after("a") == pytest.approx(10.0)
    now[0] = 9.0
    assert not limiter.allow("a")
    now[0] = 10.5
    assert limiter.allow("a") and not limiter.allow("a")
    now[0] = 1000.0
    assert [limiter.allow("a") for _ in range(7)] == [True] * 6 + [False]  # refilled, never beyond the burst


def test_rate_limiter_off_and_memory_bounded():
    assert all(RateLimiter(0).allow("a") for _ in range(1000))
    now = [0.0]
    limiter = RateLimiter(10, max_clients=100, clock=lambda: now[0])
    for n in range(10_000):
        limiter.allow(f"10.0.{n // 256}.{n % 256}")
    assert limiter.clients <= 101
    now[0] = 61.0
    limiter.allow("late")
    assert limiter.clients == 1  # idle clients (full buckets again) are forgotten
    with pytest.raises(ValueError):
        RateLimiter(-1)


def test_retry_after_and_the_default():
    now = [0.0]
    limiter = RateLimiter(DEFAULT_RATE_LIMIT, clock=lambda: now[0])
    assert limiter.enabled and not RateLimiter(0).enabled
    assert limiter.retry_after("new") == 0.0 and RateLimiter(0).retry_after("x") == 0.0
    assert all(limiter.allow("a") for _ in range(DEFAULT_RATE_LIMIT)) and not limiter.allow("a")
    assert limiter.retry_after("a") == pytest.approx(60 / DEFAULT_RATE_LIMIT)
    now[0] = 60 / DEFAULT_RATE_LIMIT
    assert limiter.retry_after("a") == 0.0 and limiter.allow("a")


def test_the_oldest_clients_are_dropped_first():
    now = [0.0]
    limiter = RateLimiter(1, max_clients=2, clock=lambda: now[0])
    for key in ("a", "b", "c"):
        assert limiter.allow(key)
    assert limiter.clients == 2
    # "a" was dropped (the least recently seen), so it may ask again: the error is towards asking.
    assert limiter.allow("a")
    assert not limiter.allow("c")


def test_allowances_hold_across_threads():
    limiter = RateLimiter(50, clock=lambda: 0.0)
    allowed = []

    def ask():
        allowed.extend(limiter.allow("shared") for _ in range(20))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 50 and len(allowed) == 160
