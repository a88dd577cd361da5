"""The panel in a real browser at iPad size: sign in, Start a stopped local workstation, open
JupyterLab from its link and run code there, Stop it. Chromium (Playwright) trusts padlab's
CA through an NSS store, as in tests/test_browser.py.

PADLAB_SCREENSHOTS=DIR also saves each page's screenshot there (docs/ keeps them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.helpers import PASSWORD
from tests.panel.live import ipad_context, jupyter_log, panel_server, stopped_workstation
from tests.test_browser import CHROMIUM, browser_home, launch

pytestmark = pytest.mark.skipif(
    not CHROMIUM and not os.environ.get("CI"),
    reason="needs Debian's chromium and libnss3-tools (scripts/run-tests installs them)",
)

# Generous: a start installs nothing (the workstation was set up once) but the machine may be loaded.
ACTION_MS = 300_000


def shot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    target = os.environ.get("PADLAB_SCREENSHOTS")
    if target:
        page.screenshot(path=str(Path(target) / f"panel-{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    ws = stopped_workstation(tmp_path_factory.mktemp("panel-ws"))
    with panel_server(ws) as server:
        yield server


def run_code_in_jupyterlab(page, home: Path, password: str = PASSWORD) -> None:
    """Log in to Jupyter with its password, open a notebook and run a cell; wait for its output."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    page.wait_for_selector("input[type=password]", timeout=60_000)
    page.fill("input[type=password]", password)
    page.keyboard.press("Enter")
    page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
    page.locator(".jp-LauncherCard[data-category='Notebook']").first.click(timeout=120_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=180_000)
    cell = page.locator(".jp-Notebook .jp-Cell .cm-content").first
    cell.click(timeout=120_000)
    page.keyboard.type("print(6 * 7, 'from the panel')")
    expect(cell).to_contain_text("from the panel")
    output = page.locator(".jp-OutputArea-output", has_text="42 from the panel")
    # On a loaded machine a Shift+Enter sent while the notebook still connects to its kernel can
    # be lost: after a minute with nothing, put the cursor back in the cell and run it again.
    for _ in range(3):
        page.keyboard.press("Shift+Enter")
        try:
            output.wait_for(timeout=60_000)
            return
        except PlaywrightTimeout:
            cell.click()
    cells = page.locator(".jp-Notebook .jp-Cell").all_inner_texts()
    status = page.locator(".jp-Notebook-ExecutionIndicator").first.get_attribute("data-status")
    raise AssertionError(
        f"the cell printed nothing in 3 minutes; cells {cells!r}, kernel status {status!r}; "
        f"Jupyter's log:\n{jupyter_log(home)}"
    )


def test_ipad_signs_in_starts_runs_code_and_stops(live, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    home = browser_home(tmp_path, live["ca"])
    with sync_playwright() as p:
        browser = launch(p, home)
        context = ipad_context(browser)
        page = context.new_page()
        page.goto(live["url"] + "login")
        shot(page, tmp_path, "login")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").tap()
        card = page.locator("article", has=page.get_by_role("heading", name="lab"))
        state = card.locator("[data-role=state]")
        expect(state).to_have_text("stopped", timeout=60_000)
        shot(page, tmp_path, "workstations-stopped")

        start = card.get_by_role("button", name="Start")
        expect(start).to_have_class(re.compile(r"\bprimary\b"))  # the one thing to do now
        start.tap()
        expect(state).to_have_text("starting", timeout=60_000)
        expect(state).to_have_text("running", timeout=ACTION_MS)
        expect(card.locator(".error")).to_be_hidden()
        shot(page, tmp_path, "workstations-running")
        expect(start).to_be_disabled()
        expect(start).not_to_have_class(re.compile(r"\bprimary\b"))

        with context.expect_page() as opened:
            card.get_by_role("link", name="JupyterLab").tap()
        lab = opened.value
        run_code_in_jupyterlab(lab, live["home"])
        shot(lab, tmp_path, "jupyterlab")
        lab.close()

        page.goto(live["url"] + "w/lab/card")
        expect(page.locator("figure.qr svg")).to_be_visible()
        shot(page, tmp_path, "card")
        page.goto(live["url"] + "w/lab/logs")
        shot(page, tmp_path, "logs")
        page.goto(live["url"] + "w/lab/settings")
        shot(page, tmp_path, "settings")
        page.get_by_label("Autostop after idle for").fill("45m")
        page.get_by_role("button", name="Save").tap()
        expect(page.get_by_role("status")).to_contain_text("applied on the box", timeout=60_000)
        expect(page.get_by_label("Autostop after idle for")).to_have_value(re.compile("45"))
        page.goto(live["url"] + "ca")
        shot(page, tmp_path, "ca")

        page.goto(live["url"])
        card.get_by_role("button", name="Keep 2 h").tap()  # autostop is on now (45m)
        expect(card.locator("dd", has_text="held until")).to_be_visible(timeout=60_000)
        card.get_by_role("button", name="Stop").tap()
        expect(state).to_have_text("stopped", timeout=ACTION_MS)
        shot(page, tmp_path, "workstations-stopped-again")
        browser.close()
    audit = (live["home"] / "logs" / "panel-audit.log").read_text()
    assert '"what": "start"' in audit and '"what": "stop"' in audit
