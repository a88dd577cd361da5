"""The Bearer-token API: 401 without a valid token, tokens from `padlab panel token add`."""

from __future__ import annotations

import os
import stat

from tests.helpers import padlab
from tests.panel.conftest import sign_in


def _token(home, label="shortcuts"):
    proc = padlab(home, "panel", "token", "add", label)
    return proc.stdout.strip()


def test_anonymous_api_gets_401(client):
    response = client.get("/api/workstations")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "token add" in response.json()["fix"]
    assert client.post("/api/workstations/lab/start").status_code == 401


def test_a_token_from_the_cli_works_and_a_made_up_one_does_not(client, panel_home):
    token = _token(panel_home)
    ok = client.get("/api/workstations", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    [lab] = ok.json()["workstations"]
    assert lab["name"] == "lab" and lab["provider"] == "local" and lab["state"] == "new"
    fake = "padlab_" + "A" * 43
    assert client.get("/api/workstations", headers={"Authorization": f"Bearer {fake}"}).status_code == 401
    # a session cookie is no API credential
    assert client.get("/api/workstations/lab").status_code == 401


def test_tokens_are_stored_as_hashes_in_a_private_file(panel_home):
    token = _token(panel_home)
    path = panel_home / "panel" / "tokens.json"
    assert token not in path.read_text()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    listed = padlab(panel_home, "panel", "token", "list").stdout
    assert "shortcuts" in listed and token not in listed


def test_a_revoked_token_stops_working(client, panel_home):
    token = _token(panel_home)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/workstations/lab", headers=headers).status_code == 200
    padlab(panel_home, "panel", "token", "revoke", "shortcuts")
    assert client.get("/api/workstations/lab", headers=headers).status_code == 401


def test_bad_input_gets_clear_errors(client, panel_home):
    headers = {"Authorization": f"Bearer {_token(panel_home)}"}
    missing = client.get("/api/workstations/nope", headers=headers)
    assert missing.status_code == 404 and "lab" in missing.json()["fix"]
    bad = client.post("/api/workstations/lab/keep", headers=headers, json={"duration": "two hours"})
    assert bad.status_code == 400 and bad.json()["error"]
    endless = client.post("/api/workstations/lab/keep", headers=headers, json={"duration": "99999999999d"})
    assert endless.status_code == 400 and "at most 7 d" in endless.json()["error"]
    assert client.post("/api/workstations/lab/keep", headers=headers, content=b"{").status_code == 400
    assert client.post("/api/workstations/lab/explode", headers=headers).status_code == 404


def test_start_without_a_jupyter_password_says_how_to_set_one(client, panel_home):
    headers = {"Authorization": f"Bearer {_token(panel_home)}"}
    response = client.post("/api/workstations/lab/start", headers=headers)
    assert response.status_code == 409
    assert "padlab up lab" in response.json()["fix"]


def test_made_up_tokens_count_toward_the_rate_limit(client):
    for _ in range(5):
        assert client.get("/api/workstations", headers={"Authorization": "Bearer guess"}).status_code == 401
    blocked = client.get("/api/workstations", headers={"Authorization": "Bearer guess"})
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0


def test_keep_and_logs_reach_the_box_through_workstation(client, panel_home):
    """The same path as `padlab keep` and `padlab logs`: the box answers (here: not set up yet)."""
    headers = {"Authorization": f"Bearer {_token(panel_home)}"}
    kept = client.post("/api/workstations/lab/keep", headers=headers, json={"duration": "2h"})
    assert kept.status_code in (200, 409), kept.text
    assert kept.status_code == 200 or "padlab up" in kept.json()["fix"]
    sign_in(client)
    assert client.get("/w/lab/logs").status_code == 200


def test_tokens_from_before_scopes_keep_start_and_stop_and_nothing_more(client, panel_home):
    """A tokens.json entry without a scope (made by an older padlab) is a start-stop token."""
    import hashlib
    import json

    token = "padlab_legacy-" + "x" * 30
    path = panel_home / "panel" / "tokens.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"sha256": hashlib.sha256(token.encode()).hexdigest(), "created_at": 0}
    path.write_text(json.dumps({"old-shortcut": entry}))
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/workstations", headers=headers).status_code == 200
    assert client.get("/api/home/whoami", headers=headers).json() == {
        "label": "old-shortcut",
        "scope": "start-stop",
    }
    moved_in = client.post("/api/home/profiles", headers=headers, json={})
    assert moved_in.status_code == 403 and "needs admin" in moved_in.json()["error"]


def test_a_moved_in_profile_cannot_point_the_stored_key_at_another_api(client, panel_home):
    """The forms' rule holds for `padlab remote push` too: the key goes only to the provider's API."""
    from padlab import profiles

    token = padlab(panel_home, "panel", "token", "add", "mover", "--scope", "admin").stdout.strip()
    bundle = {
        "format": 1,
        "name": "elsewhere",
        "move_id": "m1",
        "profile": {"provider": "paperspace", "options": {"api_url": "https://keys.example.net/api/v1"}},
    }
    moved = client.post("/api/home/profiles", headers={"Authorization": f"Bearer {token}"}, json=bundle)
    assert moved.status_code == 409, moved.text  # refused, as the panel answers any PadlabError here
    assert "only to Paperspace's own API" in moved.json()["error"]
    assert not profiles.exists("elsewhere")
