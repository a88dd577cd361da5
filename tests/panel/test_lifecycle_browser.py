"""Each set-up page at iPad size in Chromium (Playwright, touch: tap, never click): new
workstation, keys and API tokens, the first start's password, kernels, get, destroy.

The panel is a real `padlab panel` process over HTTPS on a home with one local profile that
was never started; the fake Paperspace checks the key the page stores.
"""

from __future__ import annotations

import os

import pytest

from tests.fakes import FakePaperspace, MemoryBackend
from tests.helpers import PASSWORD, free_port, padlab
from tests.panel.live import ipad_context, panel_server
from tests.panel.test_browser import shot
from tests.test_browser import CHROMIUM, browser_home, launch

pytestmark = pytest.mark.skipif(
    not CHROMIUM and not os.environ.get("CI"),
    reason="needs Debian's chromium and libnss3-tools (scripts/run-tests installs them)",
)

PS_KEY = "ps-browser-key-7c6b5a4d3e2f1"


@pytest.fixture(scope="module")
def live(tmp_path_factory, fake_paperspace):
    base = tmp_path_factory.mktemp("panel-lifecycle")
    home = base / "padlab-home"
    padlab(
        home, "init", "lab", "--provider", "local", "--port", str(free_port()), "--root-dir", str(base / "nb")
    )
    with panel_server({"home": home}, allow_api_urls=(fake_paperspace.url,)) as server:
        yield server


@pytest.fixture(scope="module")
def fake_paperspace():
    with FakePaperspace(api_key=PS_KEY, backend=MemoryBackend(boot_seconds=0.05)) as fake:
        yield fake


def fits_ipad(page, heading: str) -> None:
    """On the page titled `heading`: nothing wider than the screen (no sideways scrolling) and
    every button big enough to tap."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    page.wait_for_load_state()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} scrolls sideways ({width} px)"
    small = page.evaluate(
        """() => [...document.querySelectorAll('main button, main .button, main select')]
              .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 40)
              .map(e => e.textContent.trim())"""
    )
    assert not small, f"{page.url}: controls under 40 px tall: {small}"


def test_every_setup_page_works_by_touch_at_ipad_size(live, fake_paperspace, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    home = browser_home(tmp_path, live["ca"])
    url = live["url"]
    with sync_playwright() as p:
        browser = launch(p, home)
        page = ipad_context(browser).new_page()
        page.goto(url + "login")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").tap()
        expect(page.get_by_role("heading", name="Workstations")).to_be_visible()

        # New workstation: the provider, then its own machine types and regions.
        page.get_by_role("link", name="New workstation").tap()
        fits_ipad(page, "New workstation")
        shot(page, tmp_path, "new")
        page.get_by_role("link", name="Paperspace").tap()
        expect(page.get_by_label("Machine type")).to_have_value("A4000")
        fits_ipad(page, "New workstation on Paperspace")
        page.get_by_label("Name").fill("gpu")
        page.get_by_label("Machine type").select_option("A6000")
        page.get_by_label("Region").select_option("ams1")
        page.get_by_label("Autostop after idle for").fill("soon")
        page.get_by_role("button", name="Create").tap()
        expect(page.get_by_role("alert")).to_contain_text("cannot read 'soon' as a duration")  # the form kept
        expect(page.get_by_label("Machine type")).to_have_value("A6000")
        page.get_by_label("Autostop after idle for").fill("45m")
        page.get_by_label("Monthly budget (USD)").fill("20")
        shot(page, tmp_path, "new-paperspace")
        page.get_by_role("button", name="Create").tap()
        gpu = page.locator("article", has=page.get_by_role("heading", name="gpu"))
        expect(gpu).to_be_visible()
        fits_ipad(page, "Workstations")

        # Keys: the provider's key, checked and stored, never shown; then API tokens.
        page.get_by_role("navigation").get_by_role("link", name="Keys", exact=True).tap()
        fits_ipad(page, "Keys")
        form = page.locator("#key-paperspace")
        form.get_by_label("Paperspace API key").fill(PS_KEY)
        form.locator("summary").tap()
        form.get_by_label("Check it against this API URL").fill(fake_paperspace.url)
        form.get_by_role("button", name="Store the Paperspace key").tap()
        expect(page.get_by_role("status")).to_contain_text("It is not shown again")
        assert PS_KEY not in page.content()
        expect(page.locator("#key-paperspace [data-role=key-state]")).to_have_text("key stored")
        page.get_by_label("New token's label").fill("shortcuts")
        page.get_by_role("button", name="Make a token").tap()
        expect(page.get_by_role("status")).to_contain_text("shown only this once")
        first = page.locator("[data-role=token]").inner_text()
        assert first.startswith("padlab_")
        shot(page, tmp_path, "keys-token")
        fits_ipad(page, "Keys")
        page.get_by_role("button", name="Rotate shortcuts").tap()
        expect(page.get_by_role("status")).to_contain_text("the old one no longer works")
        second = page.locator("[data-role=token]").inner_text()
        assert second.startswith("padlab_") and second != first
        page.get_by_role("button", name="Revoke shortcuts").tap()
        expect(page.get_by_role("status")).to_contain_text("revoked")
        expect(page.get_by_role("button", name="Revoke shortcuts")).to_have_count(0)

        # The first start asks for the Jupyter password; a mismatch is one line, and nothing starts.
        page.goto(url)
        lab = page.locator("article", has=page.get_by_role("heading", name="lab"))
        lab.get_by_role("button", name="Start").tap()
        fits_ipad(page, "lab: first start")
        shot(page, tmp_path, "password")
        page.get_by_label("Or type one (12+ characters)").fill("correct horse battery")
        page.get_by_label("Repeat it").fill("correct horse battery staple")
        page.get_by_role("button", name="Use this password and start").tap()
        expect(page.get_by_role("alert")).to_have_text("the two passwords differ")

        # Kernels, get and destroy: their forms, and bad input refused in one line.
        page.goto(url + "w/lab/kernels")
        fits_ipad(page, "lab: kernels")
        page.get_by_label("Kernel name").fill("fastai")
        page.get_by_role("button", name="Build the kernel").tap()
        expect(page.get_by_role("alert")).to_have_text("nothing to install")
        shot(page, tmp_path, "kernels")
        page.goto(url + "w/lab/get")
        fits_ipad(page, "lab: get a dataset")
        page.get_by_label("URL of the file").fill("https://example.com/")
        page.get_by_role("button", name="Download on the box").tap()
        expect(page.get_by_role("alert")).to_contain_text("does not end with a file name")
        shot(page, tmp_path, "get")
        page.goto(url + "w/gpu/destroy")
        fits_ipad(page, "Destroy gpu")
        page.get_by_label("Type the name, gpu, to confirm").fill("gpx")
        page.get_by_role("button", name="Destroy gpu").tap()
        expect(page.get_by_role("alert")).to_have_text("the name did not match; nothing was deleted")
        shot(page, tmp_path, "destroy")
        browser.close()
