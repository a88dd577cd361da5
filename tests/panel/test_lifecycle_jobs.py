"""The panel's long set-up jobs on a running local workstation, at iPad size in Chromium, by
touch: `get` a dataset (its bytes stream to the page; a dropped connection resumes) and build a
kernel (uv's stages stream to the page). The same functions as `padlab get` and `padlab
kernels create`, so the result is the same file and the same kernel."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.helpers import PASSWORD, free_port, padlab
from tests.panel.live import ipad_context, panel_server
from tests.panel.test_browser import shot
from tests.panel.test_webkit import pytestmark as webkit_needs
from tests.panel.test_webkit import webkit
from tests.rangeserver import RangeServer
from tests.test_browser import CHROMIUM, browser_home, launch

pytestmark = pytest.mark.skipif(
    not CHROMIUM and not os.environ.get("CI"),
    reason="needs Debian's chromium and libnss3-tools (scripts/run-tests installs them)",
)

MB = 1 << 20
JOB_MS = 600_000


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """A local workstation set up and left running by the CLI, before the flow; the panel in front."""
    base = tmp_path_factory.mktemp("panel-jobs")
    home = base / "padlab-home"
    padlab(
        home, "init", "lab", "--provider", "local", "--port", str(free_port()), "--root-dir", str(base / "nb")
    )
    padlab(home, "up", "--password-stdin", input=PASSWORD + "\n")
    with panel_server({"home": home}) as server:
        yield dict(server, nb=base / "nb")


def _signed_in_page(p, running, tmp_path):
    home = browser_home(tmp_path, running["ca"])
    browser = launch(p, home)
    page = ipad_context(browser).new_page()
    page.goto(running["url"] + "login")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").tap()
    page.get_by_role("heading", name="Workstations").wait_for()
    return browser, page


def test_get_streams_progress_and_resumes_a_dropped_download(running, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    data = os.urandom(6 * MB)
    with RangeServer() as server, sync_playwright() as p:
        url = server.add("/data.bin", data)
        server.drop_after["/data.bin"] = 2 * MB
        browser, page = _signed_in_page(p, running, tmp_path)
        page.locator("#w-lab").get_by_role("link", name="Get data").tap()
        page.get_by_label("URL of the file").fill(url)
        page.get_by_label("SHA-256 (optional)").fill(hashlib.sha256(data).hexdigest())
        page.get_by_role("button", name="Download on the box").tap()
        expect(page.get_by_role("heading", name="lab: download")).to_be_visible()
        expect(page.locator("[data-role=done], [data-role=error]")).to_be_visible(timeout=JOB_MS)
        assert page.locator("[data-role=error]").count() == 0, page.locator("[data-role=error]").inner_text()
        expect(page.locator("[data-role=progress-text]")).to_contain_text(f"of {len(data)} bytes")
        shot(page, tmp_path, "get-done")
        browser.close()
    assert (running["nb"] / "datasets" / "data.bin").read_bytes() == data
    first, second = server.requests_for("/data.bin")
    assert first["range"] is None and second["range"] == f"bytes={2 * MB}-"  # resumed, not restarted


def test_a_kernel_is_built_with_its_stages_on_the_page(running, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser, page = _signed_in_page(p, running, tmp_path)
        page.locator("#w-lab").get_by_role("link", name="Kernels").tap()
        page.get_by_label("Kernel name").fill("small")
        page.get_by_label("Packages").fill("six")
        page.get_by_role("button", name="Build the kernel").tap()
        expect(page.get_by_role("heading", name="lab: kernel")).to_be_visible()
        expect(page.locator("[data-role=done], [data-role=error]")).to_be_visible(timeout=JOB_MS)
        assert page.locator("[data-role=error]").count() == 0, page.locator("[data-role=error]").inner_text()
        expect(page.locator(".stages li", has_text="kernel small")).not_to_have_count(0)
        shot(page, tmp_path, "kernel-done")
        page.goto(running["url"] + "w/lab/kernels")
        expect(page.get_by_text("small: six")).to_be_visible()
        browser.close()
    spec = running["home"] / "boxes" / "lab" / "venv/share/jupyter/kernels/padlab-small/kernel.json"
    assert json.loads(spec.read_text())["argv"][0].endswith("kernels/small/bin/python")


@webkit_needs
def test_webkit_follows_a_download_to_its_end(running, tmp_path):
    """The job page's live stream (server-sent events, then the ending in place) in WebKit."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    data = os.urandom(3 * MB)
    with RangeServer() as server, webkit(running["ca"], tmp_path) as driver:
        server.rate = 1 * MB  # a few seconds: the page is open while the bytes arrive
        url = server.add("/webkit.bin", data)
        driver.get(running["url"] + "login")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "w-lab"))
        driver.get(running["url"] + "w/lab/get")
        driver.find_element(By.ID, "url").send_keys(url)
        driver.find_element(By.XPATH, "//button[normalize-space()='Download on the box']").click()
        WebDriverWait(driver, JOB_MS / 1000, poll_frequency=0.5, ignored_exceptions=(Exception,)).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "[data-role=done], [data-role=error]")
        )
        assert not driver.find_elements(By.CSS_SELECTOR, "[data-role=error]")
        progress = driver.find_element(By.CSS_SELECTOR, "[data-role=progress-text]").text
        assert f"of {len(data)} bytes" in progress
    assert (running["nb"] / "datasets" / "webkit.bin").read_bytes() == data
