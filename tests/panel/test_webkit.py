"""The panel's iPad flow in WebKit, the engine of every iPad browser: WebKitGTK's MiniBrowser
driven by WebKitWebDriver and Selenium under Xvfb.

WebKitGTK reads only the system CA bundle (it ignores SSL_CERT_FILE), so the driver runs in a
private mount namespace (`unshare -m`) where a copy of the bundle with padlab's CA appended is
bind-mounted over the system one; nothing outside that namespace changes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import PASSWORD, free_port
from tests.panel.live import IPAD, jupyter_log, panel_server, stopped_workstation

DRIVER = shutil.which("WebKitWebDriver")
MINIBROWSER = next(iter(sorted(Path("/usr/lib").glob("*/webkit2gtk-4.*/MiniBrowser"))), None)
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
ACTION_S = 300

pytestmark = pytest.mark.skipif(
    not (DRIVER and MINIBROWSER and shutil.which("Xvfb") and os.geteuid() == 0) and not os.environ.get("CI"),
    reason="needs root (unshare -m), Xvfb and Debian's webkit2gtk-driver (scripts/run-tests installs them)",
)


@contextlib.contextmanager
def xvfb() -> Iterator[str]:
    """A private X server on a free display number (Xvfb picks it and tells us through -displayfd)."""
    read, write = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1400x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as fh:
        display = fh.readline().strip()
    try:
        assert display, "Xvfb did not start"
        yield f":{display}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.contextmanager
def webkit(ca_file: str | None, tmp_path: Path) -> Iterator[object]:
    """A Selenium session on MiniBrowser at iPad size, trusting padlab's CA when ca_file is given."""
    from selenium import webdriver

    bundle = tmp_path / "ca-certificates.crt"
    bundle.write_bytes(SYSTEM_BUNDLE.read_bytes() + (Path(ca_file).read_bytes() if ca_file else b""))
    port = free_port()
    script = (
        "mount --make-rprivate / && "
        f"mount --bind {bundle} {SYSTEM_BUNDLE} && exec {DRIVER} --host=127.0.0.1 --port={port}"
    )
    with xvfb() as display:
        driver_proc = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", script],
            env=dict(os.environ, DISPLAY=display),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            options = webdriver.WebKitGTKOptions()
            options.binary_location = str(MINIBROWSER)
            options.add_argument("--automation")
            options.add_argument(f"--user-agent={IPAD['user_agent']}")
            session = _connect(webdriver, port, options, driver_proc)
            try:
                session.set_window_size(IPAD["width"], IPAD["height"])
                yield session
            finally:
                session.quit()
        finally:
            driver_proc.terminate()
            driver_proc.wait(timeout=30)


def _connect(webdriver, port: int, options, proc, timeout: float = 60.0):
    """The driver takes a moment to listen on a loaded machine: retry until it answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return webdriver.Remote(command_executor=f"http://127.0.0.1:{port}", options=options)
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    ws = stopped_workstation(tmp_path_factory.mktemp("panel-webkit"))
    with panel_server(ws) as server:
        yield server


def _state(driver):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, "article#w-lab [data-role=state]").text


def _wait_state(driver, wanted: str, timeout: float) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.5, ignored_exceptions=(Exception,)).until(
        lambda d: _state(d) == wanted
    )


def _button(driver, label: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.XPATH, f"//article[@id='w-lab']//button[normalize-space()='{label}']")


def _run_code_in_jupyterlab(driver, home: Path) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 180, poll_frequency=0.5, ignored_exceptions=(Exception,))
    editor = ".jp-Notebook .jp-Cell .cm-content"

    def retry(action) -> None:
        """JupyterLab renders in steps: retry an interaction until the element takes it."""
        wait.until(lambda d: action(d) or True)

    def output(d) -> bool:
        return any(
            "42 from webkit" in e.text for e in d.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output")
        )

    retry(lambda d: d.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(PASSWORD))
    retry(lambda d: d.find_element(By.CSS_SELECTOR, "#login_submit, button[type=submit]").click())
    wait.until(lambda d: d.find_element(By.ID, "jp-main-dock-panel"))
    retry(lambda d: d.find_element(By.CSS_SELECTOR, ".jp-LauncherCard[data-category='Notebook']").click())
    # Run the cell once its kernel is ready: on a loaded machine a Shift+Enter sent while the
    # notebook is still connecting can be lost.
    wait.until(
        lambda d: d.find_element(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']")
    )
    retry(lambda d: d.find_element(By.CSS_SELECTOR, editor).click())
    retry(lambda d: d.find_element(By.CSS_SELECTOR, editor).send_keys("print(6 * 7, 'from webkit')"))
    wait.until(lambda d: "from webkit" in d.find_element(By.CSS_SELECTOR, editor).text)
    for _ in range(3):
        ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
        try:
            WebDriverWait(driver, 60, poll_frequency=0.5, ignored_exceptions=(Exception,)).until(output)
            return
        except TimeoutException:
            # Still nothing: put the cursor back in the first cell and run it again.
            driver.find_element(By.CSS_SELECTOR, editor).click()
    cells = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")]
    indicator = driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator")
    status = [e.get_attribute("data-status") for e in indicator]
    raise AssertionError(
        f"the cell printed nothing in 3 minutes; cells {cells!r}, kernel status {status!r}; "
        f"Jupyter's log:\n{jupyter_log(home)}"
    )


def test_webkit_ipad_signs_in_starts_runs_code_and_stops(live, tmp_path):
    from selenium.webdriver.common.by import By

    with webkit(live["ca"], tmp_path) as driver:
        driver.get(live["url"] + "login")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()
        _wait_state(driver, "stopped", 60)
        _button(driver, "Start").click()
        _wait_state(driver, "running", ACTION_S)
        panel_window = driver.current_window_handle
        driver.find_element(By.XPATH, "//article[@id='w-lab']//a[normalize-space()='JupyterLab']").click()
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, 60).until(lambda d: len(d.window_handles) > 1)
        driver.switch_to.window(next(h for h in driver.window_handles if h != panel_window))
        _run_code_in_jupyterlab(driver, live["home"])
        driver.close()
        driver.switch_to.window(panel_window)
        driver.get(live["url"])
        _button(driver, "Stop").click()
        _wait_state(driver, "stopped", ACTION_S)


def test_webkit_without_padlab_ca_does_not_load_the_panel(live, tmp_path):
    from selenium.webdriver.common.by import By

    with webkit(None, tmp_path) as driver:
        with contextlib.suppress(Exception):
            driver.get(live["url"] + "login")
        assert not driver.find_elements(By.ID, "password")
