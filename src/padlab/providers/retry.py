"""Retries and waits for cloud APIs: backoff with jitter, always under a deadline.

Clouds throttle and hiccup; a retried call must not turn one failure into a
hammering, and a wait must end with a message that says where it got stuck.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Callable, TypeVar

from padlab.errors import PadlabError

T = TypeVar("T")

# Module-level so tests can make polling instant without a knob users would see.
POLL_FIRST = 2.0
POLL_MAX = 15.0
RETRY_FIRST = 1.0
RETRY_MAX = 30.0
RETRY_ATTEMPTS = 6
# The longest a server's own "retry after" is honoured for; a longer one ends the command with the time.
RATE_WAIT_MAX = 120.0
sleep = time.sleep
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class Transient(Exception):
    """A failure worth retrying; ``retry_after`` is the server's hint in seconds, if it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def delays(first: float, cap: float) -> Iterator[float]:
    """Exponential backoff with 'equal jitter': never zero, never in lockstep with another client."""
    step = first
    while True:
        yield step / 2 + random.uniform(0, step / 2)
        step = min(step * 2, cap)


def call(fn: Callable[[], T], what: str, attempts: int | None = None) -> T:
    """Run fn, retrying ``Transient`` failures; the last one becomes a PadlabError naming ``what``."""
    attempts = attempts or RETRY_ATTEMPTS
    waits = delays(RETRY_FIRST, RETRY_MAX)
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Transient as exc:
            if attempt == attempts:
                raise PadlabError(
                    f"{what} kept failing ({exc}) after {attempts} tries",
                    "the provider is throttling or having trouble; wait a minute and run the command again",
                ) from None
            pause = next(waits)
            if exc.retry_after is not None:
                # The server said when it will answer: earlier is wasted, so wait at least that long.
                pause = max(pause, min(exc.retry_after, RATE_WAIT_MAX))
            sleep(pause)
    raise AssertionError("unreachable")


def wait_for(
    check: Callable[[], tuple[bool, str]],
    what: str,
    timeout: float,
    fix: str,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Poll ``check`` (done?, current state) with backoff until done or ``timeout`` seconds pass.

    A timeout raises a PadlabError that names the last state seen and ``fix``.
    """
    deadline = time.monotonic() + timeout
    waits = delays(POLL_FIRST, POLL_MAX)
    last = "unknown"
    while True:
        done, last = check()
        if done:
            return
        if progress:
            progress(f"{what} (now {last})")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PadlabError(f"gave up after {timeout:.0f}s {what}: the machine is still {last}", fix)
        sleep(min(next(waits), remaining))
