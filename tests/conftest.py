"""Shared fixtures: a private PADLAB_HOME per test and a running local workstation."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import PASSWORD, free_port, padlab, padlab_json

pytest_plugins = ["tests.testbed.fixtures"]

# A run started in the background (`cmd &` in a script) inherits SIGINT ignored, and so would
# every padlab the tests start; the tests that press Ctrl-C need it delivered.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Playwright's expect() polls for 5 s by default: a page that answers a form on a 2-core machine
# running the rest of the suite can take longer (CI saw a panel page's POST still navigating after
# 5 s). It still fails, only later, where the page never gets there.
with contextlib.suppress(ImportError):
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)


@pytest.fixture
def steady_addresses() -> Iterator[None]:
    """This host's addresses stay as they are for the test (see host_addresses_fixed)."""
    from tests.testbed.network import host_addresses_fixed

    with host_addresses_fixed():
        yield


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (--dist loadgroup), tests that share a module-scoped fixture stay together.

    Such a fixture (a workstation, a set-up box, the autostop scenarios) is made once per
    worker that runs its tests; grouping them by module makes it once, and keeps their
    order. Every other test goes to whichever worker is free.
    """
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        defs = info.name2fixturedefs.values() if info else ()
        if any(d and d[-1].scope in ("module", "package", "class") for d in defs):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a grouped test that pytest-xdist could not group, rather than run it ungrouped."""
    if (
        item.config.getoption("loadgroup", default=False)  # set in xdist's workers
        and item.get_closest_marker("xdist_group")
        and "@" not in item.nodeid
    ):
        pytest.fail(
            "pytest-xdist did not group this test (pytest-xdist#1386): install pytest<9.2 as "
            "pyproject.toml asks",
            pytrace=False,
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Figures that tests record (`record_property("figure", text)`), on every run, pass or fail.

    User properties travel with the reports, so this works in pytest-xdist's controller too.
    """
    shown: dict[str, None] = {}  # in order, once each (a test's reports share its properties)
    for reports in list(terminalreporter.stats.values()):
        for report in reports:
            for key, value in getattr(report, "user_properties", ()):
                if key == "figure":
                    shown[str(value)] = None
    if shown:
        terminalreporter.section("figures")
        for figure in shown:
            terminalreporter.write_line(figure)


@pytest.fixture(autouse=True)
def _no_jupyter_left_behind(tmp_path: Path):
    """A test that fails between `up` and `down` must not leave its Jupyter running."""
    yield
    for pidfile in tmp_path.glob("*/boxes/*/run/jupyter-*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text())
            if b"jupyter" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PADLAB_HOME for this test, also for in-process calls."""
    path = tmp_path / "padlab-home"
    monkeypatch.setenv("PADLAB_HOME", str(path))
    return path


@pytest.fixture(scope="module")
def workstation(tmp_path_factory: pytest.TempPathFactory):
    """One real local workstation (Jupyter over HTTPS) shared by a module's read-only tests."""
    home = tmp_path_factory.mktemp("ws") / "padlab-home"
    port = free_port()
    padlab(
        home, "init", "ws", "--provider", "local", "--port", str(port), "--root-dir", str(home.parent / "nb")
    )
    card = padlab_json(home, "up", "--password-stdin", input=PASSWORD + "\n")
    yield {"home": home, "port": port, "card": card}
    padlab(home, "down", check=False)
