"""Anonymous requests cannot grow the panel's audit log or its passkey challenges without bound."""

from __future__ import annotations

import json

import pytest

from padlab.panel import audit, passkeys


def lines(home) -> list[dict]:
    text = (home / "logs" / "panel-audit.log").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_a_flood_of_anonymous_refusals_writes_one_line_that_counts_them(client, panel_home, monkeypatch):
    for _ in range(300):  # well within EVERY_S (a minute), however slow this machine is
        assert client.get("/api/workstations").status_code == 401
    [first] = lines(panel_home)
    assert first["what"] == "api-refused" and "left_out" not in first
    monkeypatch.setattr(audit, "EVERY_S", 0.0)  # the next one is due: it says how many were left out
    client.get("/api/workstations")
    assert [entry.get("left_out") for entry in lines(panel_home)] == [None, 299]


def test_the_audit_log_rotates_at_its_size_limit(panel_home, monkeypatch):
    monkeypatch.setattr(audit, "MAX_BYTES", 20_000, raising=False)
    for i in range(2000):  # each from its own address: nothing to aggregate
        audit.record("api-refused", f"198.51.{i // 250}.{i % 250}", ok=False, path="/api/workstations")
    log = panel_home / "logs" / "panel-audit.log"
    assert log.stat().st_size <= 20_000
    assert log.with_name("panel-audit.log.1").stat().st_size <= 20_000
    assert sorted(p.name for p in log.parent.glob("panel-audit*")) == ["panel-audit.log", "panel-audit.log.1"]
    assert audit.tail(3)[-1]["from"] == "198.51.7.249"  # the newest line is still read


def test_the_aggregation_forgets_addresses_beyond_its_cap(panel_home, monkeypatch):
    monkeypatch.setattr(audit, "MAX_KEYS", 50)
    monkeypatch.setattr(audit, "_quiet", {})
    for i in range(500):
        audit.record("csrf-refused", f"203.0.113.{i % 250}-{i}", ok=False)
    assert len(audit._quiet) == 50


def test_sign_in_challenges_are_capped_per_address_and_in_all(client, monkeypatch):
    store = passkeys.Challenges()
    monkeypatch.setattr(passkeys, "_challenges", store)
    for i in range(50):  # a script asking for challenges with made-up login tokens
        token = f"made-up-{i}"
        headers = {"X-CSRF-Token": token, "Cookie": f"__Host-padlab-login={token}"}
        assert client.post("/passkeys/login/options", headers=headers).status_code == 200
    assert len(store._items) == 8  # passkeys.PER_CLIENT
    # the newest is kept: a person's open sign-in page still works
    assert store.take("auth:made-up-49") is not None and store.take("auth:made-up-0") is None


@pytest.mark.parametrize("addresses", [1, 400])
def test_the_challenge_store_never_holds_more_than_its_total(addresses):
    store = passkeys.Challenges(per_client=4, total=100)
    for i in range(2000):
        store.put(f"auth:{i}", b"x" * 32, f"addr-{i % addresses}")
    assert len(store) == (4 if addresses == 1 else 100)
