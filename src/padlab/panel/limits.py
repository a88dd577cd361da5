"""Failed sign-ins and bad tokens per client address: after a few, HTTP 429 with Retry-After."""

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
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> list[float]:
        times = [t for t in self._seen.get(client, []) if now - t < self.window_s]
        self._seen[client] = times
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds to wait when the client is blocked, else None."""
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            if len(times) < self.max_failures:
                return None
            return max(1, math.ceil(times[-self.max_failures] + self.window_s - now))

    def fail(self, client: str) -> None:
        with self._lock:
            self._recent(client, time.monotonic()).append(time.monotonic())
