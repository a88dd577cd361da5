"""The touch flows of tests/test_touch.py in WebKit, the engine of every iPad browser: WebKitGTK's
MiniBrowser at iPad size, driven by WebKitWebDriver (tests/panel/test_webkit.py), against padlab's
own HTTPS Jupyter.

What WebKitWebDriver cannot send: touch. It accepts W3C actions from a "touch" pointer, and every
tap here is one, but WebKitGTK delivers them as a mouse would (pointerdown/mousedown/click with
pointerType "mouse", never touchstart/touchend; without a touch screen WebKitGTK has no touch
events: no `ontouchstart`, maxTouchPoints 0). So this test shows the flows work in WebKit's engine
at iPad size; whether a finger works is tests/test_touch.py's question (Chromium, real touch
events), and only that one fails on JupyterLab 4.6.0-4.6.6 (jupyterlab/jupyterlab#19124).
"""

from __future__ import annotations

import json
import time

from tests.helpers import PASSWORD
from tests.panel.test_webkit import pytestmark as webkit_marks
from tests.panel.test_webkit import webkit
from tests.test_touch import CLASSIC_SETTLED, CODE, notebook

pytestmark = webkit_marks
WAIT_S = 120


def tap(driver, element) -> None:
    """A tap as WebKitWebDriver takes one: a "touch" pointer down and up on the element's centre."""
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    actions = ActionBuilder(driver, mouse=PointerInput(interaction.POINTER_TOUCH, "finger"))
    actions.pointer_action.move_to(element).pointer_down().pointer_up()
    actions.perform()


def wait_for(driver, css: str, text: str = "", timeout: float = WAIT_S):
    """The first visible element matching css (and containing text), once there is one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def found(d):
        for element in d.find_elements(By.CSS_SELECTOR, css):
            if element.is_displayed() and text in element.text:
                return element
        return False

    return WebDriverWait(driver, timeout, poll_frequency=0.5, ignored_exceptions=(Exception,)).until(found)


def tap_until(driver, css: str, text: str, then: str, then_text: str = "", tries: int = 3):
    """Tap the element, retrying while JupyterLab is still drawing, until `then` shows."""
    from selenium.common.exceptions import TimeoutException

    for _ in range(tries):
        tap(driver, wait_for(driver, css, text))
        try:
            return wait_for(driver, then, then_text, timeout=30)
        except TimeoutException:
            continue
    raise AssertionError(f"tapping {text or css!r} never showed {then_text or then!r}")


def test_webkit_taps_menu_file_browser_run_button_and_classic_save(workstation, tmp_path, record_property):
    from selenium.webdriver.common.by import By

    root = workstation["home"].parent / "nb"
    for name in ("open-me", "classic"):
        (root / f"{name}.ipynb").write_text(notebook(CODE))
    url = f"https://127.0.0.1:{workstation['port']}"
    with webkit(workstation["card"]["ca_cert"], tmp_path) as driver:
        driver.get(f"{url}/lab/workspaces/webkit?reset")
        wait_for(driver, "input[type=password]").send_keys(PASSWORD)
        tap(driver, wait_for(driver, "#login_submit, button[type=submit]"))
        wait_for(driver, ".jp-LauncherCard")
        assert len(launchers(driver)) == 1
        driver.execute_script(
            "window.padlabEvents = [];"
            "for (const t of ['pointerdown', 'touchstart', 'mousedown', 'click'])"
            "  document.addEventListener(t, e => padlabEvents.push(t + ':' + (e.pointerType || '')), true);"
        )

        # File > New Launcher: a second Launcher tab.
        tap_until(driver, ".lm-MenuBar-item", "File", ".lm-Menu .lm-Menu-itemLabel", "New Launcher")
        events = driver.execute_script("return padlabEvents")
        record_property("figure", f"WebKitGTK: a tap from a touch pointer arrives as {events}")
        tap(driver, wait_for(driver, ".lm-Menu .lm-Menu-itemLabel", "New Launcher"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(launchers(driver)) < 2:
            time.sleep(0.5)
        assert len(launchers(driver)) == 2

        # One tap on a notebook in the file browser opens it; its toolbar's run button runs the cell.
        tap_until(
            driver, ".jp-DirListing-item", "open-me.ipynb", ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell"
        )
        wait_for(driver, "#jp-main-statusbar", "| Idle")
        tap_until(
            driver,
            ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Toolbar-item [data-command='notebook:run-cell-and-select-next']",
            "",
            ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output",
            "42 by touch",
        )

        # The classic UI (Juno Connect's): run the cell, then File > Save and Checkpoint.
        driver.get(f"{url}/notebooks/classic.ipynb")
        wait_for(driver, "#kernel_indicator_icon.kernel_idle_icon")
        classic_header_settled(driver)
        tap(driver, wait_for(driver, "#notebook-container .cell .input_prompt"))
        tap_until(
            driver,
            "#run_int button[data-jupyter-action$='run-cell-and-select-next']",
            "",
            "#notebook-container .output_area",
            "42 by touch",
        )
        classic_header_settled(driver)
        tap_until(driver, "#filelink", "", "#save_checkpoint > a", "Save and Checkpoint")
        tap(driver, driver.find_element(By.CSS_SELECTOR, "#save_checkpoint > a"))
        wait_for(driver, "#notification_notebook", "Checkpoint created", timeout=30)
    saved = json.loads((root / "classic.ipynb").read_text())
    assert "42 by touch" in json.dumps(saved["cells"][0]["outputs"])


def classic_header_settled(driver) -> None:
    """The classic UI's header without a passing notification (tests/test_touch.py says why)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(
        lambda d: d.execute_script(f"return ({CLASSIC_SETTLED})()")
    )


def launchers(driver) -> list:
    from selenium.webdriver.common.by import By

    labels = driver.find_elements(By.CSS_SELECTOR, "#jp-main-dock-panel .lm-TabBar-tabLabel")
    return [label for label in labels if label.get_attribute("textContent").strip() == "Launcher"]
