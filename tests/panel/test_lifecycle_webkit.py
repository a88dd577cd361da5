"""The set-up pages' main flow in WebKit (WebKitGTK's MiniBrowser through WebKitWebDriver, as in
test_webkit.py): sign in, store the provider's key, create a workstation from the provider's
lists, make an API token, and reach the first start's password, kernels, get and destroy pages."""

from __future__ import annotations

import pytest

from tests.fakes import FakePaperspace, MemoryBackend
from tests.helpers import PASSWORD, free_port, padlab
from tests.panel.live import panel_server
from tests.panel.test_webkit import pytestmark as webkit_needs
from tests.panel.test_webkit import webkit

pytestmark = webkit_needs

PS_KEY = "ps-webkit-key-0f1e2d3c4b5a"


@pytest.fixture(scope="module")
def fake():
    with FakePaperspace(api_key=PS_KEY, backend=MemoryBackend()) as fake:
        yield fake


@pytest.fixture(scope="module")
def live(tmp_path_factory, fake):
    base = tmp_path_factory.mktemp("panel-lifecycle-webkit")
    home = base / "padlab-home"
    padlab(
        home, "init", "lab", "--provider", "local", "--port", str(free_port()), "--root-dir", str(base / "nb")
    )
    with panel_server({"home": home}, allow_api_urls=(fake.url,)) as server:
        yield server


def _wait(driver, check, timeout: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.3, ignored_exceptions=(Exception,)).until(check)


def _text(driver, css: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css).text


def _button(driver, label: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.XPATH, f"//button[normalize-space()='{label}']")


def test_webkit_sets_up_a_workstation_and_keys(live, fake, tmp_path, monkeypatch):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with webkit(live["ca"], tmp_path) as driver:
        url = live["url"]
        driver.get(url + "login")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        _button(driver, "Sign in").click()
        _wait(driver, lambda d: "New workstation" in d.page_source)

        driver.get(url + "keys")
        driver.find_element(By.ID, "paperspace-part0").send_keys(PS_KEY)
        driver.find_element(By.CSS_SELECTOR, "#key-paperspace summary").click()
        driver.find_element(By.ID, "paperspace-api_url").send_keys(fake.url)
        _button(driver, "Store the Paperspace key").click()
        _wait(driver, lambda d: "It is not shown again" in d.page_source)
        assert PS_KEY not in driver.page_source
        assert _text(driver, "#key-paperspace [data-role=key-state]") == "key stored"

        driver.find_element(By.ID, "label").send_keys("shortcuts")
        _button(driver, "Make a token").click()
        _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "[data-role=token]"))
        assert _text(driver, "[data-role=token]").startswith("padlab_")

        driver.find_element(By.XPATH, "//nav//a[normalize-space()='New']").click()
        # WebKitWebDriver's click returns before the next page loads: wait for its link
        _wait(driver, lambda d: d.find_elements(By.XPATH, "//a[normalize-space()='Paperspace']"))[0].click()
        _wait(driver, lambda d: d.find_elements(By.ID, "machine_type"))
        driver.find_element(By.ID, "name").send_keys("gpu")
        Select(driver.find_element(By.ID, "machine_type")).select_by_value("H100")
        Select(driver.find_element(By.ID, "region")).select_by_value("ca1")
        driver.find_element(By.ID, "budget").send_keys("30")
        _button(driver, "Create").click()
        _wait(driver, lambda d: d.find_elements(By.ID, "w-gpu"))

        driver.find_element(By.XPATH, "//article[@id='w-lab']//button[normalize-space()='Start']").click()
        _wait(driver, lambda d: "lab: first start" in d.page_source)
        driver.get(url + "w/gpu/destroy")
        driver.find_element(By.ID, "confirm").send_keys("gpx")
        _button(driver, "Destroy gpu").click()
        _wait(driver, lambda d: "the name did not match; nothing was deleted" in d.page_source)

    from padlab import money, profiles

    monkeypatch.setenv("PADLAB_HOME", str(live["home"]))
    profile = profiles.load("gpu")
    assert (profile.options["machine_type"], profile.options["region"]) == ("H100", "ca1")
    assert money.budgets()["gpu"] == 30
