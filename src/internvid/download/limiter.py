"""Politeness: one token bucket shared by the download workers, and jittered exponential backoff."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter", "backoff_delay"]


class RateLimiter:
    """A token bucket shared by all workers (GCRA form): `rate` requests/s, `burst` at once.

    `acquire()` reserves the next slot under a lock and sleeps outside it, so waiting workers
    queue fairly. `pause(s)` holds every request back for `s` seconds (after a 429).
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate  # requests per second; 0 or less: unlimited
        self.interval = 1.0 / rate if rate > 0 else 0.0  # seconds between two requests
        self.tolerance = (max(1, burst) - 1) * self.interval  # how far ahead a burst may run
        self._clock, self._sleep = clock, sleep
        self._tat = clock()  # theoretical arrival time of the next request
        self._lock = threading.Lock()
        self.requests = 0  # requests let through so far
        self.waited = 0.0  # seconds spent waiting, all workers together

    def acquire(self) -> float:
        """Wait for a slot; returns the seconds waited."""
        with self._lock:
            self.requests += 1
            now = self._clock()
            self._tat = max(self._tat, now)
            delay = max(0.0, self._tat - self.tolerance - now)
            self._tat += self.interval
            self.waited += delay
        if delay > 0:
            self._sleep(delay)
        return delay

    def pause(self, seconds: float) -> None:
        """Let no request through for `seconds` from now (all workers)."""
        with self._lock:
            self._tat = max(self._tat, self._clock() + seconds + self.tolerance)


def backoff_delay(
    attempt: int,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed try number `attempt` (1, 2...): exponential, jittered.

    Equal jitter: half of min(cap, base * 2**(attempt-1)) plus a random part up to the other
    half, so workers that failed together do not retry together. A server's Retry-After wins
    when longer (still capped).
    """
    rng = rng or random
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    delay = delay / 2 + rng.uniform(0, delay / 2)
    if retry_after is not None:
        delay = max(delay, min(cap, retry_after))
    return delay
