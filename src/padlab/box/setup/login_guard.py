"""Jupyter's login form with a per-address backoff after failed logins.

It runs inside Jupyter's own environment (installed there as ``padlab_login_guard``
and named by ``PasswordIdentityProvider.login_handler_class``), not in the
stdlib-only box program. Each failed password from an address makes that
address's next attempt wait: 1 s, then 2, 4, 8, at most MAX_DELAY, forgotten after
FORGET_AFTER of quiet or at the next success. Attempts from one address are taken
one at a time, so parallel guesses queue behind the delay; the wait is an
``asyncio.sleep``, so other users and running kernels are never held up.
"""

import asyncio
import time

from jupyter_server.auth.login import LoginFormHandler

try:  # jupyter_server >= 2.13 asks handlers to say they serve anonymous users
    from jupyter_server.auth.decorator import allow_unauthenticated
except ImportError:  # pragma: no cover - older jupyter_server serves them anyway

    def allow_unauthenticated(method):
        return method


FIRST_DELAY = 1.0
MAX_DELAY = 16.0
FORGET_AFTER = 900.0

_failures = {}  # address -> (failed attempts in a row, monotonic time of the last one)
_locks = {}  # address -> asyncio.Lock: one attempt at a time per address


def delay_for(address: str, now: float) -> float:
    """How long this address's next attempt waits."""
    count, last = _failures.get(address, (0, 0.0))
    if not count or now - last > FORGET_AFTER:
        return 0.0
    return min(FIRST_DELAY * 2 ** (count - 1), MAX_DELAY)


def _forget_old(now: float) -> None:
    for address, (_, last) in list(_failures.items()):
        if now - last > FORGET_AFTER:
            del _failures[address]
            lock = _locks.get(address)
            if lock is not None and not lock.locked():
                del _locks[address]


class LoginHandler(LoginFormHandler):
    """LoginFormHandler's post, after the address's delay; the outcome updates the delay."""

    @allow_unauthenticated
    async def post(self) -> None:
        address = self.request.remote_ip or "unknown"
        lock = _locks.setdefault(address, asyncio.Lock())
        async with lock:
            wait = delay_for(address, time.monotonic())
            if wait:
                await asyncio.sleep(wait)
            super().post()
            now = time.monotonic()
            _forget_old(now)
            if self.get_status() == 401:
                count = _failures.get(address, (0, 0.0))[0]
                _failures[address] = (count + 1, now)
                self.log.warning(
                    "failed login from %s; its next attempt waits %.0f s", address, delay_for(address, now)
                )
            else:
                _failures.pop(address, None)
