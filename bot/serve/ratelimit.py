"""A per-client rate limit for the questions a public bot answers.

:class:`RateLimiter` is a token bucket per client key (the client's IP
address, or its /64 network for IPv6: see :func:`bot.serve.guard.client_key`):
a client may ask ``per_minute`` questions in a burst, and then one more every
``60 / per_minute`` seconds. Memory stays bounded however many
clients come and go: idle clients are forgotten, and past ``max_clients`` the
least recently seen ones are dropped (which only ever errs towards letting a
client ask).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

#: Questions one client (IP address) may ask a minute, chat and API together,
#: unless ``bot serve --rate-limit`` (or ``BOT_RATE_LIMIT``) says otherwise.
DEFAULT_RATE_LIMIT = 30


class RateLimiter:
    """Allow each client ``per_minute`` questions a minute; 0 means no limit."""

    def __init__(self, per_minute: int, max_clients: int = 50_000, clock=time.monotonic):
        if per_minute < 0:
            raise ValueError("per_minute must be 0 (no limit) or more")
        self.per_minute = per_minute
        self.max_clients = max_clients
        self._clock = clock
        self._rate = per_minute / 60.0  # tokens per second
        # key -> (tokens left, time of last update); oldest first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def allow(self, key: str) -> bool:
        """Take one question from ``key``'s allowance; False when it has none left."""
        if not self.enabled:
            return True
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * self._rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)  # most recently seen last
            self._forget(now)
            return allowed

    def available(self, key: str) -> float:
        """Questions ``key`` may ask right now, without taking any (``inf`` when there is no limit)."""
        if not self.enabled:
            return float("inf")
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.per_minute), now))
        return min(float(self.per_minute), tokens + (now - last) * self._rate)

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may ask again (0 when it may ask now)."""
        if not self.enabled:
            return 0.0
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.per_minute), self._clock()))
        tokens = min(float(self.per_minute), tokens + (self._clock() - last) * self._rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self._rate

    @property
    def clients(self) -> int:
        """How many clients are remembered now."""
        return len(self._buckets)

    def _forget(self, now: float) -> None:
        """Drop clients whose bucket is full again, and the oldest past ``max_clients``."""
        full_after = 60.0  # an idle bucket refills completely within a minute
        while self._buckets:
            key, (_, last) = next(iter(self._buckets.items()))
            if now - last >= full_after or len(self._buckets) > self.max_clients:
                del self._buckets[key]
            else:
                break
