"""padlab.box.service: the pidfile is the Jupyter user's to write, so root obeys it only for that user's Jupyter."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from padlab.box import service
from padlab.box.service import Layout
from padlab.box.system import Host

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a process as another user")


def layout_with_pidfile(base: Path, user: str, pid: int) -> Layout:
    layout = Layout("t", str(base / "box"), str(base / "etc"), user, False)
    os.makedirs(layout.run_dir)
    Path(layout.pidfile).write_text(f"{pid}\n")
    return layout


def kernel_thread() -> int | None:
    """A kernel thread's PID (kthreadd is 2), when this PID namespace shows any."""
    for pid in (2, *sorted(int(p) for p in os.listdir("/proc") if p.isdigit())):
        try:
            flags = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[6])
        except (OSError, IndexError, ValueError):
            continue
        if flags & service.PF_KTHREAD:
            return pid
    return None


def test_root_signals_only_the_jupyter_users_own_process(tmp_path: Path) -> None:
    # Another user's process that looks like Jupyter: a notebook could name it in the pidfile.
    other = subprocess.Popen(["jupyter-lab", "300"], executable="/bin/sleep", user="nobody")
    try:
        as_root = layout_with_pidfile(tmp_path / "root", "root", other.pid)
        assert service.read_pid(Host(sudo=False), as_root) is None
        assert service.stop_process(Host(sudo=False), as_root) is False
        assert other.poll() is None, "root killed a process that was not its Jupyter"
        # The same process is Jupyter when it runs as the workstation's user.
        as_nobody = layout_with_pidfile(tmp_path / "nobody", "nobody", other.pid)
        assert service.read_pid(Host(sudo=False), as_nobody) == other.pid
    finally:
        other.kill()
        other.wait()


def test_a_kernel_thread_is_never_jupyter(tmp_path: Path) -> None:
    pid = kernel_thread()
    if pid is None:
        pytest.skip("no kernel thread is visible in this PID namespace")
    layout = layout_with_pidfile(tmp_path, "root", pid)  # kernel threads are root's
    assert service.read_pid(Host(sudo=False), layout) is None


@pytest.mark.parametrize(
    ("systemd", "why"),
    [(True, "a systemd service needs root"), (False, "neither systemd nor cron runs here")],
)
def test_a_detached_jupyter_says_why_it_will_not_come_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, systemd: bool, why: str
) -> None:
    """A user's own machine without cron: systemd may well run, but its system units are root's."""
    from padlab.box.report import Report

    monkeypatch.setattr(service, "has_systemd", lambda: systemd)
    report = Report()
    layout = Layout("t", str(tmp_path), str(tmp_path / "etc"), "nobody", False)
    assert service.install(Host(sudo=False), layout, "detached", report) is False
    assert why in report.warnings[-1] and "will not come back after a reboot" in report.warnings[-1]
