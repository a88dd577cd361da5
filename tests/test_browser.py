"""A real browser (headless Chromium) that trusts padlab's CA logs in and gets JupyterLab."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import PASSWORD

CHROMIUM = shutil.which("chromium")
# Flags for a closed network: no background fetches, no QUIC, no sandbox as root.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and shutil.which("certutil")) and not os.environ.get("CI"),
    reason="needs Debian's chromium and libnss3-tools (scripts/run-tests installs them)",
)


def browser_home(tmp_path: Path, ca_file: str | None) -> Path:
    """A HOME whose NSS database trusts padlab's CA, as a user who installed it would have."""
    home = tmp_path / "browser-home"
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    if ca_file:
        subprocess.run(
            ["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "padlab", "-i", ca_file], check=True
        )
    return home


STEADY = str(Path(__file__).with_name("chromium_steady.py"))


def launch(playwright, home: Path, args: list[str] | None = None):
    """Chromium (Debian's, else Playwright's) with HOME's trust store, deaf to the host's address changes:
    the testbed adds and removes host veth addresses while other tests load pages (tests/chromium_steady.py)."""
    real = CHROMIUM or playwright.chromium.executable_path
    return playwright.chromium.launch(
        executable_path=STEADY,
        args=FLAGS if args is None else args,
        env=dict(os.environ, HOME=str(home), PADLAB_TEST_CHROMIUM=real),
    )


def test_browser_with_padlab_ca_logs_in_to_jupyterlab(workstation, tmp_path):
    from playwright.sync_api import sync_playwright

    home = browser_home(tmp_path, workstation["card"]["ca_cert"])
    url = f"https://127.0.0.1:{workstation['port']}/lab"
    with sync_playwright() as p:
        browser = launch(p, home)
        page = browser.new_page()
        page.goto(url)
        assert "/login" in page.url
        page.fill("input[type=password]", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
        assert page.url.startswith(url)
        page.screenshot(path=str(tmp_path / "jupyterlab.png"))
        browser.close()


def test_browser_refuses_a_wrong_password(workstation, tmp_path):
    from playwright.sync_api import sync_playwright

    home = browser_home(tmp_path, workstation["card"]["ca_cert"])
    with sync_playwright() as p:
        browser = launch(p, home)
        page = browser.new_page()
        page.goto(f"https://127.0.0.1:{workstation['port']}/lab")
        page.fill("input[type=password]", "not-the-right-password")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "/login" in page.url
        assert "Invalid credentials" in page.content()
        assert page.query_selector("#jp-main-dock-panel") is None
        browser.close()


def test_browser_without_the_ca_gets_a_certificate_error(workstation, tmp_path):
    from playwright.sync_api import Error, sync_playwright

    home = browser_home(tmp_path, None)
    with sync_playwright() as p:
        browser = launch(p, home)
        page = browser.new_page()
        with pytest.raises(Error, match="ERR_CERT_AUTHORITY_INVALID"):
            page.goto(f"https://127.0.0.1:{workstation['port']}/login")
        browser.close()
