"""Failed sign-ins and bad tokens per client address: after a few, HTTP 429 with Retry-After.

A check (a ~50 ms password hash, a passkey signature) is reserved under the lock before it
runs and counts as a failure until it is settled: a burst of concurrent guesses gets at most
`max_failures` real checks, not as many as arrive before the first one fails.
"""

from __future__ import annotations

import math
import threading
import time

MAX_FAILURES = 5
WINDOW_S = 600.0


class Failures:
    """Failures in a sliding window per address; a success does not erase them (no reset oracle)."""

    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._seen: dict[str, list[float]] = {}
        self._pending: dict[str, int] = {}  # checks reserved and still running, per address
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> list[float]:
        times = [t for t in self._seen.get(client, []) if now - t < self.window_s]
        if times:
            self._seen[client] = times
        else:
            self._seen.pop(client, None)  # no entry kept for an address with nothing to count
        return times

    def _blocked(self, client: str, now: float) -> int | None:
        times = self._recent(client, now)
        if len(times) >= self.max_failures:
            return max(1, math.ceil(times[-self.max_failures] + self.window_s - now))
        if len(times) + self._pending.get(client, 0) >= self.max_failures:
            return 1  # checks in flight fill the allowance: their results come within a second
        return None

    def retry_after(self, client: str) -> int | None:
        """Seconds to wait when the client is blocked, else None."""
        with self._lock:
            return self._blocked(client, time.monotonic())

    def reserve(self, client: str) -> int | None:
        """Before a check: None, and the check counts as in flight until `settle`; or the seconds
        to wait when the client is blocked (then nothing is reserved and no check may run)."""
        with self._lock:
            retry = self._blocked(client, time.monotonic())
            if retry is None:
                self._pending[client] = self._pending.get(client, 0) + 1
            return retry

    def settle(self, client: str, ok: bool) -> None:
        """After a reserved check: a failure stays counted for the window, a success adds nothing."""
        with self._lock:
            left = self._pending.get(client, 0) - 1
            if left > 0:
                self._pending[client] = left
            else:
                self._pending.pop(client, None)
            if not ok:
                now = time.monotonic()
                self._seen[client] = [*self._recent(client, now), now]

    def fail(self, client: str) -> None:
        """A failure without a reserved check."""
        with self._lock:
            now = time.monotonic()
            self._seen[client] = [*self._recent(client, now), now]
