"""From zero with only an iPad (issue #21, Tests, steps 2-4): Chromium at iPad size, trusting
only padlab's CA (what the iPad installs from the panel's /ca page), signs in to a panel with
no profile, adds the fake Paperspace's key, creates a workstation that a testbed machine backs,
starts it (a generated Jupyter password, shown once), opens JupyterLab from the panel's link,
runs a cell, and stops it. No padlab command runs during the flow: only taps and typing.

`always_on_panel` is the panel under test. Here it is `padlab panel` on this machine with an
empty home; a fixture that installs the panel as a system service on a testbed host can
replace it, yielding the same keys (url, ca, password, home).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakePaperspace
from tests.fakes.testbed_backend import TestbedBackend
from tests.helpers import PASSWORD
from tests.panel.live import panel_server
from tests.panel.test_browser import ipad_context, run_code_in_jupyterlab, shot
from tests.test_browser import CHROMIUM, browser_home, launch

pytestmark = [
    pytest.mark.testbed,
    pytest.mark.timeout(1500),
    pytest.mark.skipif(
        not CHROMIUM and not os.environ.get("CI"),
        reason="needs Debian's chromium and libnss3-tools (scripts/run-tests installs them)",
    ),
]

PS_KEY = "ps-from-zero-secret-1a2b3c4d5e6f"
# The first start bootstraps a bare machine (Jupyter's venv, mosh, the agent): minutes.
FIRST_START_MS = 900_000
ACTION_MS = 300_000


@pytest.fixture
def always_on_panel(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The panel on the always-on host, fresh: no profile, no key.

    Keys: url, ca (the CA file the iPad trusts), password, home (for Jupyter's log on a
    failure), audit (a callable: the audit log's entries).
    """
    home = tmp_path / "panel-home"
    with panel_server({"home": home}) as server:
        yield dict(server, password=PASSWORD, audit=lambda: audit_lines(home))


@pytest.fixture
def paperspace_cloud(testbed) -> Iterator[dict[str, Any]]:
    """The fake Paperspace; its machines are testbed machines that trust the account's ssh key."""
    public = testbed.identity.with_name(testbed.identity.name + ".pub").read_text().strip()
    backend = TestbedBackend(testbed, login_user="paperspace", account_keys=[public])
    with backend, FakePaperspace(api_key=PS_KEY, backend=backend) as fake:
        yield {"fake": fake, "backend": backend, "identity": str(testbed.identity)}


def audit_lines(home: Path) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in (Path(home) / "logs" / "panel-audit.log").read_text().splitlines()]


def test_from_zero_an_ipad_makes_starts_uses_and_stops_a_cloud_workstation(
    always_on_panel, paperspace_cloud, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

    panel, cloud = always_on_panel, paperspace_cloud
    fake, backend = cloud["fake"], cloud["backend"]
    url = panel["url"]
    browser_profile = browser_home(tmp_path, panel["ca"])
    t0 = time.monotonic()
    with sync_playwright() as p:
        browser = launch(p, browser_profile)
        context = ipad_context(browser)
        page = context.new_page()

        # 2. sign in
        page.goto(url)
        page.get_by_label("Password").fill(panel["password"])
        page.get_by_role("button", name="Sign in").tap()
        expect(page.get_by_text("No workstations yet.")).to_be_visible()

        # 3. the provider's key, then a workstation
        page.get_by_role("navigation").get_by_role("link", name="Keys", exact=True).tap()
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
        page.get_by_label("API URL").fill(fake.url)
        # The panel host's ssh key, which Paperspace puts on the account's new machines.
        page.get_by_label("ssh key on the panel's machine").fill(cloud["identity"])
        page.get_by_role("button", name="Create").tap()
        card = page.locator("article", has=page.get_by_role("heading", name="ps"))
        expect(card).to_be_visible()
        assert backend.machine_ids() == []  # nothing is made before the first start

        # 4. start (the first start asks for the Jupyter password), open Jupyter, run a cell, stop
        card.get_by_role("button", name="Start").tap()
        page.get_by_role("button", name="Generate a password and start").tap()
        jupyter_password = page.locator("[data-role=password]").inner_text().strip()
        assert len(jupyter_password) >= 12
        outcome = page.locator("[data-role=done], [data-role=error]")
        expect(outcome).to_be_visible(timeout=FIRST_START_MS)
        assert page.locator("[data-role=error]").count() == 0, page.locator("[data-role=error]").inner_text()
        expect(page.locator("[data-role=password]")).to_have_text(jupyter_password)  # still there to copy
        shot(page, tmp_path, "from-zero-started")
        [machine_id] = backend.machine_ids()
        page.reload()
        expect(page.locator("[data-role=done]")).to_be_visible()
        expect(page.locator("[data-role=password]")).to_have_count(0)  # shown once

        page.get_by_role("link", name="Back to the workstations").tap()
        expect(card.locator("[data-role=state]")).to_have_text("running", timeout=60_000)
        starts = [e for e in panel["audit"]() if e["what"] == "start"]
        assert len(starts) == 1, starts  # one tap, one start: no reload ever sent it again
        with context.expect_page() as opened:
            card.get_by_role("link", name="JupyterLab").tap()
        lab = opened.value
        assert backend.machine(machine_id).ip in lab.url
        run_code_in_jupyterlab(lab, panel["home"], jupyter_password)
        notebook_runs_s = time.monotonic() - t0
        lab.close()

        card.get_by_role("button", name="Stop").tap()
        expect(card.locator("[data-role=state]")).to_have_text("stopped", timeout=ACTION_MS)
        assert backend.machine(machine_id).state() == "off"
        browser.close()
    print(f"from sign-in to a notebook cell's output: {notebook_runs_s:.0f} s")
