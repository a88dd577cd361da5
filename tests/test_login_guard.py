"""Jupyter's HTTPS hardening on a real local workstation: HSTS, a Secure _xsrf cookie, and a
per-address backoff after failed logins (padlab.box.setup.login_guard, run inside Jupyter)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from padlab.box.setup import jupyter
from padlab.notebook_api import ssl_context
from tests.helpers import PASSWORD

# login_guard.FIRST_DELAY: that module imports jupyter_server, so it loads only in Jupyter's venv.
FIRST_DELAY = 1.0


def url(ws: dict) -> str:
    return f"https://127.0.0.1:{ws['port']}"


@contextmanager
def browser(ws: dict, source: str = "127.0.0.1") -> Iterator[httpx.Client]:
    """A client that connects from `source` (any loopback address), trusting padlab's CA."""
    verify = ssl_context(ws["card"]["ca_cert"])
    verify.check_hostname = False  # the certificate names 127.0.0.1, which is where it connects
    transport = httpx.HTTPTransport(verify=verify, local_address=source)
    with httpx.Client(base_url=url(ws), transport=transport, timeout=60) as client:
        yield client


def attempt(client: httpx.Client, password: str) -> tuple[bool, float]:
    """One login form post: (accepted, seconds it took)."""
    client.get("/login")  # the _xsrf cookie (a logged-in client is redirected, and keeps its cookie)
    started = time.monotonic()
    resp = client.post("/login", data={"password": password, "_xsrf": client.cookies.get("_xsrf") or ""})
    return resp.status_code in (302, 303), time.monotonic() - started


def test_hsts_and_a_secure_xsrf_cookie(workstation) -> None:
    with browser(workstation) as client:
        resp = client.get("/login")
    assert resp.headers["strict-transport-security"] == jupyter.HSTS
    [xsrf] = [c for c in resp.headers.get_list("set-cookie") if c.startswith("_xsrf=")]
    assert "secure" in [part.strip().lower() for part in xsrf.split(";")], xsrf


def test_failed_logins_slow_down_that_address_only(workstation) -> None:
    first = FIRST_DELAY
    with browser(workstation, "127.0.0.2") as guesser, browser(workstation, "127.0.0.3") as owner:
        assert attempt(guesser, "wrong guess one")[0] is False
        waits = []
        for guess in ("wrong guess two", "wrong guess three"):
            accepted, took = attempt(guesser, guess)
            assert not accepted
            waits.append(took)
        assert waits[0] >= first and waits[1] >= 2 * first, waits
        # Three failures in a row: the next attempt waits 4 s, even with the right password.
        accepted, took = attempt(guesser, PASSWORD)
        assert accepted and took >= 4 * first, took
        # Another address is not held up (the guesser's next wait would be 8 s), and the
        # success cleared the guesser's delay. Bounds are loose: a loaded machine is slow.
        accepted, took = attempt(owner, PASSWORD)
        assert accepted and took < 4 * first, took
        accepted, took = attempt(guesser, "wrong again")
        assert not accepted and took < 4 * first, took
