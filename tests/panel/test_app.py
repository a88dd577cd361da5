"""Sign-in, sessions, CSRF and the rate limit of the panel's pages."""

from __future__ import annotations

import json

from tests.panel.conftest import csrf_of, sign_in


def test_login_form_has_the_password_field_and_sign_in_button(client):
    page = client.get("/login")
    assert page.status_code == 200
    assert 'name="password"' in page.text and ">Password</label>" in page.text
    assert ">Sign in</button>" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in page.text


def test_pages_need_a_session(client):
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_right_password_sets_a_strict_expiring_cookie_and_shows_workstations(client):
    response = sign_in(client)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    for flag in ("Secure", "HttpOnly", "SameSite=strict", "Max-Age=", "__Host-padlab-session="):
        assert flag in cookie
    page = client.get("/")
    assert page.status_code == 200
    assert '<article class="card" id="w-lab"' in page.text
    assert "<h2>lab</h2>" in page.text
    for label in (">Start</button>", ">Stop</button>", ">Keep 2 h</button>"):
        assert label in page.text


def test_wrong_password_is_refused(client):
    response = sign_in(client, "not-the-password-at-all")
    assert response.status_code == 401
    assert "Wrong password" in response.text
    assert "__Host-padlab-session" not in response.headers.get("set-cookie", "")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_form_post_without_its_csrf_token_is_refused(client):
    sign_in(client)
    assert client.post("/w/lab/keep", data={}).status_code == 403
    assert client.post("/w/lab/keep", data={"csrf": "forged"}).status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    # the session is still good: only the forged request was refused
    assert client.get("/").status_code == 200


def test_login_itself_needs_its_csrf_token(client):
    client.get("/login")
    assert client.post("/login", data={"password": "x", "csrf": "nope"}).status_code == 403


def test_repeated_wrong_passwords_get_429_with_retry_after(client):
    for _ in range(5):
        assert sign_in(client, "wrong-password-guess").status_code == 401
    blocked = sign_in(client)  # even the right password waits now
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


def test_sign_out_ends_the_session(client):
    sign_in(client)
    page = client.get("/")
    assert (
        client.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False).status_code == 303
    )
    assert client.get("/", follow_redirects=False).status_code == 303


def test_expired_sessions_are_refused(client, panel_home):
    sign_in(client)
    path = panel_home / "panel" / "sessions.json"
    sessions = json.loads(path.read_text())
    for entry in sessions.values():
        entry["expires"] = 0
    path.write_text(json.dumps(sessions))
    assert client.get("/", follow_redirects=False).status_code == 303


def test_unknown_workstation_and_action(client):
    sign_in(client)
    csrf = csrf_of(client.get("/").text)
    assert client.post("/w/nope/start", data={"csrf": csrf}).status_code == 404
    assert client.post("/w/lab/explode", data={"csrf": csrf}).status_code == 404
    assert client.get("/w/nope/card").status_code == 404


def test_audit_log_records_actions_without_secrets(client, panel_home):
    from tests.helpers import PASSWORD

    sign_in(client, "wrong-password-guess")
    sign_in(client)
    text = (panel_home / "logs" / "panel-audit.log").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(e["what"], e["ok"]) for e in lines] == [("sign-in", False), ("sign-in", True)]
    assert all(e["from"] and e["at"] for e in lines)
    assert PASSWORD not in text and "wrong-password-guess" not in text
    assert oct((panel_home / "logs" / "panel-audit.log").stat().st_mode & 0o777) == "0o600"


def test_ca_page_and_profile_are_public(client):
    page = client.get("/ca")
    assert page.status_code == 200
    assert "Certificate Trust Settings" in page.text
    profile = client.get("/ca/padlab-ca.mobileconfig")
    assert profile.headers["content-type"] == "application/x-apple-aspen-config"
    import plistlib

    assert plistlib.loads(profile.content)["PayloadContent"][0]["PayloadType"] == "com.apple.security.root"


def test_manifest_makes_a_standalone_home_screen_app(client):
    manifest = client.get("/manifest.webmanifest").json()
    assert manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        assert client.get(icon["src"]).status_code == 200
