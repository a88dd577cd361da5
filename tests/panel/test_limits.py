"""The sign-in throttle under a burst: concurrent wrong guesses get at most MAX_FAILURES real checks.

Each check (password hash, passkey verification, API token lookup) is held at a gate until
either more checks than the limit have started (the old bug) or every other request has been
refused: the outcome depends on what the app counts, never on how fast this machine is.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from padlab.panel.limits import MAX_FAILURES
from tests.panel.conftest import csrf_of

N = 60


class Gate:
    """Wraps a check: counts the calls and holds each until `open`, then lets the real check run."""

    def __init__(self, real: Callable[..., Any], hold: bool = True) -> None:
        self.real = real
        self.hold = hold
        self.entered = 0
        self._lock = threading.Lock()
        self._open = threading.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.entered += 1
        assert not self.hold or self._open.wait(120), "the gate was never opened"
        return self.real(*args, **kwargs)

    def open(self) -> None:
        self._open.set()


def burst(app: Any, gate: Gate, send: Callable[[httpx.AsyncClient, int], Any]) -> list[int]:
    """N requests at once from one address; the gate opens when the outcome is decided."""

    async def main() -> list[int]:
        refused = 0

        async def one(c: httpx.AsyncClient, i: int) -> int:
            nonlocal refused
            response = await send(c, i)
            if response.status_code == 429:
                refused += 1
            return response.status_code

        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as c:
            tasks = [asyncio.ensure_future(one(c, i)) for i in range(N)]
            while gate.entered <= MAX_FAILURES and gate.entered + refused < N:
                await asyncio.sleep(0.01)
            gate.open()
            return list(await asyncio.gather(*tasks))

    return asyncio.run(main())


@pytest.fixture
def app(panel_home):
    from padlab.panel.app import create_app
    from padlab.panel.web import Panel

    return create_app(Panel(cache_s=0))


def test_a_burst_of_wrong_passwords_gets_at_most_the_limit_of_hash_checks(app, monkeypatch):
    from starlette.testclient import TestClient

    from padlab.panel import store

    with TestClient(app, base_url="https://testserver") as tc:
        page = tc.get("/login")
    cookie, csrf = page.cookies["__Host-padlab-login"], csrf_of(page.text)
    gate = Gate(store.check_password)
    monkeypatch.setattr(store, "check_password", gate)

    def send(c: httpx.AsyncClient, i: int) -> Any:
        return c.post(
            "/login",
            data={"csrf": csrf, "password": f"wrong-guess-{i}", "next": "/"},
            headers={"Cookie": f"__Host-padlab-login={cookie}"},
        )

    codes = burst(app, gate, send)
    assert gate.entered == MAX_FAILURES
    assert sorted(set(codes)) == [401, 429] and codes.count(401) == MAX_FAILURES


def test_a_burst_of_wrong_passwords_minting_tokens_gets_at_most_the_limit_of_hash_checks(app, monkeypatch):
    """`padlab remote login`'s path: the panel password for a token is throttled like the form."""
    from starlette.testclient import TestClient

    from padlab.panel import store

    with TestClient(app, base_url="https://testserver") as tc:  # another address than the burst's
        wrong = tc.post("/api/tokens", json={"password": "wrong", "scope": "read", "label": "cli-0"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "wrong panel password"
    gate = Gate(store.check_password)
    monkeypatch.setattr(store, "check_password", gate)

    def send(c: httpx.AsyncClient, i: int) -> Any:
        return c.post(
            "/api/tokens", json={"password": f"wrong-guess-{i}", "scope": "admin", "label": f"cli-{i}"}
        )

    codes = burst(app, gate, send)
    assert gate.entered == MAX_FAILURES
    assert codes.count(401) == MAX_FAILURES and codes.count(429) == N - MAX_FAILURES
    assert store.list_tokens() == []


def test_a_burst_of_made_up_api_tokens_gets_at_most_the_limit_of_checks(app, monkeypatch):
    from padlab.panel import store

    # The token lookup runs on the event loop (a SHA-256, no thread), so it is never held.
    gate = Gate(store.token_entry, hold=False)
    monkeypatch.setattr(store, "token_entry", gate)

    def send(c: httpx.AsyncClient, i: int) -> Any:
        return c.get("/api/workstations", headers={"Authorization": f"Bearer padlab_made-up-{i:040d}"})

    codes = burst(app, gate, send)
    assert gate.entered == MAX_FAILURES
    assert codes.count(401) == MAX_FAILURES and codes.count(429) == N - MAX_FAILURES


def test_a_burst_of_passkey_sign_ins_gets_at_most_the_limit_of_verifications(app, panel_home, monkeypatch):
    import webauthn

    from padlab.panel import passkeys

    # One stored passkey (its key never verifies: every attempt here is a failure).
    passkeys._write(
        {
            "cred-1": {
                "rp_id": "testserver",
                "public_key": "AAAA",
                "sign_count": 0,
                "label": "iPad",
                "created_at": 0,
            }
        }
    )
    # room for every request's challenge: here the limit under test is the throttle's, not the store's
    monkeypatch.setattr(passkeys, "_challenges", passkeys.Challenges(per_client=N))
    gate = Gate(webauthn.verify_authentication_response)
    monkeypatch.setattr(webauthn, "verify_authentication_response", gate)

    async def send(c: httpx.AsyncClient, i: int) -> Any:
        token = f"login-token-{i}"  # each sign-in page has its own challenge
        headers = {"X-CSRF-Token": token, "Cookie": f"__Host-padlab-login={token}"}
        options = await c.post("/passkeys/login/options", headers=headers)
        assert options.status_code == 200, options.text
        return await c.post(
            "/passkeys/login", headers=headers, json={"credential": {"id": "cred-1"}}
        )

    codes = burst(app, gate, send)
    assert gate.entered == MAX_FAILURES
    assert codes.count(401) == MAX_FAILURES and codes.count(429) == N - MAX_FAILURES
