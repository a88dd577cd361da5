"""From zero with only an iPad (issue #21, Tests): a fresh testbed machine is the always-on
host, and `padlab panel install --on` (the one command, run from the "computer" before the flow)
installs the panel there as a system service with a pebble certificate. Then Chromium at iPad
size, trusting only pebble's root (what an iPad trusts for a public certificate), taps through
it all: signs in, copies the panel's own ssh key (added in Paperspace's console, as a user
does), adds the fake Paperspace's key, creates a workstation that a second testbed machine
backs, starts it (a generated Jupyter password, shown once), installs padlab's CA from the
panel's /ca page (what the iPad does for a workstation without a public certificate), opens
JupyterLab from the panel's link, runs a cell, and stops it. No padlab command runs on the
host during the flow: only taps and typing.

The fake Paperspace listens on the host's end of the panel host's link (198.18.X.1), over
plain HTTP inside the testbed network; the install allows its URL (`--allow-api-url`), the
only way a session may send the stored key anywhere but Paperspace's own API; it also allows
padlab's CA (`--allow-padlab-ca`), which a public panel otherwise keeps off.
The time from "the host is up" to "a notebook runs" is printed (`-s`) and recorded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakePaperspace
from tests.fakes.testbed_backend import TestbedBackend
from tests.helpers import padlab
from tests.panel.live import ipad_context
from tests.panel.test_browser import run_code_in_jupyterlab, shot
from tests.test_acme_testbed import Pebble
from tests.test_browser import CHROMIUM, browser_home, launch

pytestmark = [
    pytest.mark.testbed,
    pytest.mark.timeout(2400),
    pytest.mark.skipif(
        not (shutil.which("pebble") and CHROMIUM) and not os.environ.get("CI"),
        reason="needs Debian's pebble, chromium and libnss3-tools (scripts/run-tests installs them)",
    ),
]

PS_KEY = "ps-from-zero-secret-1a2b3c4d5e6f"
PORT = 8443
# The first start bootstraps a bare machine (Jupyter's venv, mosh, the agent): minutes.
FIRST_START_MS = 900_000
ACTION_MS = 300_000
AUDIT = "/var/lib/padlab-panel/logs/panel-audit.log"


@pytest.fixture
def always_on_panel(testbed, tmp_path) -> Iterator[dict[str, Any]]:
    """A fresh testbed machine with the panel installed by the one command, and the fake
    Paperspace (its machines: testbed machines) it reaches. Keys: url, root (pebble's root, all
    the iPad trusts), password, fake, backend, up_at (when the host took ssh logins), audit."""
    machine = testbed.machine(f"pz{os.getpid() % 100000}")
    up_at = time.monotonic()  # the host is up: sshd takes logins
    link = machine.ip.rsplit(".", 1)[0] + ".1"
    work = tmp_path / "host"
    work.mkdir()
    pebble = Pebble(link, work)
    try:
        root = pebble.start()
        bundle = work / "acme-ca.pem"
        bundle.write_bytes(pebble.listener_ca.read_bytes() + root.read_bytes())
        # Paperspace puts the account's ssh keys on its new machines; the user adds the panel's
        # key in the console during the flow (account_keys).
        backend = TestbedBackend(testbed, login_user="paperspace")
        with backend, FakePaperspace(api_key=PS_KEY, backend=backend, host=link) as fake:
            home = work / "computer"
            padlab(home, "init", "panelhost", "--provider", "ssh", "--host", f"{machine.user}@{machine.ip}",
                   "--identity", str(machine.identity), "--tls", "letsencrypt",
                   "--acme-directory", pebble.directory, "--acme-ca", str(bundle))  # fmt: skip
            # The workstation's box (198.18.X.2, not a public address) gets no public certificate:
            # the admin allows padlab's CA on this public panel at install (docs/panel.md).
            out = padlab(home, "panel", "install", "--on", "panelhost", "--allow-api-url", fake.url,
                         "--allow-padlab-ca").stdout  # fmt: skip
            found = re.search(r"Panel password \(shown once, write it down\): (\S.*)$", out, re.M)
            assert found and "TLS: public certificate from Pebble" in out, out

            def audit() -> list[dict[str, Any]]:
                import json

                text = machine.exec(f"cat {AUDIT}").stdout
                return [json.loads(line) for line in text.splitlines()]

            yield {
                "url": f"https://{machine.ip}:{PORT}/",
                "root": str(root),
                "password": found.group(1).strip(),
                "fake": fake,
                "backend": backend,
                "up_at": up_at,
                "installed_s": time.monotonic() - up_at,
                "machine": machine,
                "audit": audit,
            }
    finally:
        pebble.stop()
        machine.destroy()


def trust(browser_profile: Path, pem: Path, nickname: str) -> None:
    """What the iPad's Settings does with an installed, fully trusted profile."""
    nssdb = browser_profile / ".pki" / "nssdb"
    subprocess.run(
        ["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", nickname, "-i", str(pem)], check=True
    )


def test_from_zero_an_ipad_makes_starts_uses_and_stops_a_cloud_workstation(
    always_on_panel, tmp_path, record_property
):
    from playwright.sync_api import expect, sync_playwright

    panel = always_on_panel
    fake, backend = panel["fake"], panel["backend"]
    url = panel["url"]
    browser_profile = browser_home(tmp_path, panel["root"])  # pebble's root only
    with sync_playwright() as p:
        browser = launch(p, browser_profile)
        context = ipad_context(browser)
        page = context.new_page()
        said: list[str] = []  # the browser's console and failed requests, for a failure's message
        page.on("console", lambda m: said.append(f"console {m.type}: {m.text}"))
        page.on("requestfailed", lambda r: said.append(f"failed {r.url}: {r.failure}"))

        # 2. sign in
        page.goto(url)
        page.get_by_label("Password").fill(panel["password"])
        page.get_by_role("button", name="Sign in").tap()
        expect(page.get_by_text("No workstations yet.")).to_be_visible()

        # 3. the panel's own ssh key (copied into Paperspace's console), the provider's key,
        # then a workstation
        page.get_by_role("navigation").get_by_role("link", name="Keys", exact=True).tap()
        public = page.locator("[data-role=ssh-public-key]").inner_text().strip()
        assert public.startswith("ssh-ed25519 "), public
        backend.account_keys = [public]  # Paperspace console: Account, SSH keys, Add
        key = page.locator("#key-paperspace")
        key.get_by_label("Paperspace API key").fill(PS_KEY)
        key.locator("summary").tap()
        key.get_by_label("Check it against this API URL").fill(fake.url)
        key.get_by_role("button", name="Store the Paperspace key").tap()
        expect(page.get_by_role("status")).to_contain_text("It is not shown again")

        page.get_by_role("navigation").get_by_role("link", name="New", exact=True).tap()
        page.get_by_role("link", name="Paperspace").tap()
        page.get_by_label("Name").fill("ps")
        page.get_by_label("Machine type").select_option("A4000")
        page.get_by_label("Region").select_option("ny2")
        page.locator("summary").tap()
        page.get_by_label("API URL").fill(fake.url)  # allowed at install; no ssh key typed
        page.get_by_role("button", name="Create").tap()
        card = page.locator("article", has=page.get_by_role("heading", name="ps"))
        expect(card).to_be_visible()
        assert backend.machine_ids() == []  # nothing is made before the first start

        # 4. start (the first start asks for the Jupyter password)
        card.get_by_role("button", name="Start").tap()
        page.get_by_role("button", name="Generate a password and start").tap()
        jupyter_password = page.locator("[data-role=password]").inner_text().strip()
        assert len(jupyter_password) >= 12
        outcome = page.locator("[data-role=done], [data-role=error]")
        try:
            expect(outcome).to_be_visible(timeout=FIRST_START_MS)
        except AssertionError:
            raise AssertionError("\n".join(said)) from None
        assert page.locator("[data-role=error]").count() == 0, page.locator("[data-role=error]").inner_text()
        expect(page.locator("[data-role=password]")).to_have_text(jupyter_password)  # still there to copy
        shot(page, tmp_path, "from-zero-started")
        [machine_id] = backend.machine_ids()
        page.reload()
        expect(page.locator("[data-role=done]")).to_be_visible()
        expect(page.locator("[data-role=password]")).to_have_count(0)  # shown once

        # The workstation has no public address, so padlab's CA, which the panel now offers:
        # the iPad downloads the profile and trusts it in Settings, then comes back.
        page.get_by_role("navigation").get_by_role("link", name="Trust padlab").tap()
        expect(page.get_by_role("link", name="Install the profile")).to_be_visible()
        pem = page.evaluate("fetch('/ca/padlab-ca.pem').then(r => r.text())")  # the browser's TLS
        assert pem.startswith("-----BEGIN CERTIFICATE-----"), pem
        ca = tmp_path / "padlab-ca.pem"
        ca.write_text(pem)
        signed_in = context.storage_state()
        browser.close()
        trust(browser_profile, ca, "padlab CA")
        browser = launch(p, browser_profile)
        context = ipad_context(browser, storage_state=signed_in)
        page = context.new_page()
        page.goto(url)
        card = page.locator("article", has=page.get_by_role("heading", name="ps"))
        expect(card.locator("[data-role=state]")).to_have_text("running", timeout=60_000)
        starts = [e for e in panel["audit"]() if e["what"] == "start"]
        assert len(starts) == 1, starts  # one tap, one start: no reload ever sent it again

        # open Jupyter from the panel's link, run a cell, stop
        with context.expect_page() as opened:
            card.get_by_role("link", name="JupyterLab").tap()
        lab = opened.value
        assert backend.machine(machine_id).ip in lab.url
        run_code_in_jupyterlab(lab, tmp_path / "no-local-home", jupyter_password)
        notebook_runs_s = time.monotonic() - panel["up_at"]
        lab.close()

        card.get_by_role("button", name="Stop").tap()
        expect(card.locator("[data-role=state]")).to_have_text("stopped", timeout=ACTION_MS)
        assert backend.machine(machine_id).state() == "off"
        browser.close()
    assert all(PS_KEY.encode() not in r.body for r in fake.requests)  # only ever in the header
    figure = (
        f"from zero: the host up to a notebook cell's output {notebook_runs_s:.0f} s, of which "
        f"`panel install --on` {panel['installed_s']:.0f} s"
    )
    record_property("figure", figure)
    print(figure)
