"""Passkeys in a real Chromium with a virtual authenticator (CDP WebAuthn domain), on a DNS name
mapped to loopback; and the refusal with a reason when the panel is reached by IP address."""

from __future__ import annotations

import os

import pytest

from tests.helpers import PASSWORD, free_port, padlab
from tests.panel.live import ipad_context, panel_server
from tests.test_browser import CHROMIUM, FLAGS, browser_home, launch

pytestmark = pytest.mark.skipif(
    not CHROMIUM and not os.environ.get("CI"),
    reason="needs Debian's chromium and libnss3-tools (scripts/run-tests installs them)",
)
NAME = "panel.test"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    base = tmp_path_factory.mktemp("panel-passkeys")
    home = base / "padlab-home"
    padlab(
        home, "init", "lab", "--provider", "local", "--port", str(free_port()), "--root-dir", str(base / "nb")
    )
    with panel_server({"home": home}, NAME) as server:
        yield server


def test_register_a_passkey_then_sign_in_with_it(live, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    home = browser_home(tmp_path, live["ca"])
    url = f"https://{NAME}:{live['port']}/"
    flags = [*FLAGS, f"--host-resolver-rules=MAP {NAME} 127.0.0.1"]
    with sync_playwright() as p:
        browser = launch(p, home, flags)
        context = ipad_context(browser)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
        authenticator = cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    "automaticPresenceSimulation": True,
                }
            },
        )["authenticatorId"]
        page.goto(url + "login")
        expect(page.get_by_role("button", name="Sign in with a passkey")).to_have_count(0)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Workstations")).to_be_visible()
        page.goto(url + "passkeys")
        page.get_by_label("Name for this device").fill("test iPad")
        page.get_by_role("button", name="Add a passkey").click()
        expect(page.get_by_text("test iPad")).to_be_visible(timeout=30_000)
        creds = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
        assert len(creds) == 1 and creds[0]["rpId"] == NAME
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(url + "login")
        page.get_by_role("button", name="Sign in with a passkey").click()
        expect(page.get_by_role("heading", name="Workstations")).to_be_visible(timeout=30_000)
        # the same passkey again: its sign count moved on, the server kept up
        signature_count = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})[
            "credentials"
        ][0]
        assert signature_count["signCount"] >= 1
        browser.close()
    audit = (live["home"] / "logs" / "panel-audit.log").read_text()
    assert '"how": "passkey"' in audit and '"what": "passkey-add"' in audit


def test_by_ip_address_the_panel_says_passkeys_need_a_name(live):
    import ssl

    import httpx

    with httpx.Client(verify=ssl.create_default_context(cafile=live["ca"])) as client:
        page = client.get(live["url"] + "login")
        assert "cannot be an IP" in page.text
        options = client.post(
            live["url"] + "passkeys/login/options",
            headers={"X-CSRF-Token": page.cookies["__Host-padlab-login"]},
        )
        assert options.status_code == 400 and "DNS name" in options.json()["error"]
