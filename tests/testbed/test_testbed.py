"""The testbed's own tests: each one checks a property other suites rely on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .host import TestbedError
from .machine import Machine
from .testbed import Testbed

pytestmark = pytest.mark.timeout(300)


def _netns() -> set[str]:
    return {
        line.split()[0]
        for line in subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout.splitlines()
    }


def _nspawn_pids(name: str) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-f", "--", f"--machine=pltb-{name} "], capture_output=True, text=True
    ).stdout
    return [int(pid) for pid in out.split()]


def _leftovers(testbed: Testbed, name: str) -> list[str]:
    """Every trace a machine or client called `name` could leave on the host."""
    found = []
    if f"pltb-{name}" in _netns():
        found.append("netns")
    if (testbed.machines_dir / name).exists():
        found.append("machine dir")
    if (testbed.run_dir / f"net-{name}.json").exists():
        found.append("network record")
    if f" {testbed.machines_dir / name / 'root'} " in Path("/proc/self/mountinfo").read_text():
        found.append("mount")
    if _nspawn_pids(name):
        found.append(f"nspawn processes {_nspawn_pids(name)}")
    return found


def test_ssh_as_padlab_with_passwordless_sudo(machine: Machine) -> None:
    assert machine.state() == "running"
    out = machine.ssh("id -un && sudo -n id -u && hostname").stdout.split()
    assert out == ["padlab", "0", machine.name]


def test_systemd_is_pid1_and_system_reaches_running(machine: Machine) -> None:
    status = machine.exec("systemctl is-system-running --wait", check=False, timeout=60).stdout.strip()
    assert status in ("running", "degraded"), machine.exec("systemctl --failed", check=False).stdout
    assert machine.exec(["cat", "/proc/1/comm"]).stdout.strip() == "systemd"


def test_machine_is_bare_like_a_cloud_image(machine: Machine) -> None:
    result = machine.exec("command -v jupyter mosh mosh-server", check=False)
    assert result.stdout == ""
    assert machine.exec(["python3", "-c", "import venv"]).returncode == 0


def test_machine_reaches_the_package_mirror(machine: Machine) -> None:
    url = "http://deb.debian.org/debian/dists/bookworm/InRelease"
    result = machine.exec(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", url], check=False, timeout=60
    )
    assert result.stdout == "200", result.stderr


def test_reboot_is_booted_again_and_keeps_the_disk(machine: Machine) -> None:
    machine.ssh("echo kept > ~/survivor")
    machine.exec("touch /run/volatile-marker")
    before = machine.boot_count
    machine.reboot()
    assert machine.boot_count == before + 1
    assert machine.state() == "running"
    assert machine.ssh("cat ~/survivor").stdout == "kept\n"
    # /run is a fresh tmpfs only if the guest really went through a new boot.
    assert machine.exec("test -e /run/volatile-marker", check=False).returncode == 1


def test_guest_reboot_shows_rebooting_state(machine: Machine) -> None:
    seen: set[str] = set()
    machine.ssh("sudo systemctl --no-block reboot", check=False)  # sshd may drop us first
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (seen >= {"rebooting"} and machine.state() == "running"):
        seen.add(machine.state())
        time.sleep(0.02)
    assert "rebooting" in seen
    assert machine.state() == "running"
    assert machine.boot_count == 2


def test_poweroff_reports_off_then_boots_the_same_disk(machine: Machine) -> None:
    reports: list[tuple[str, str]] = []
    machine.on_off(lambda m: reports.append((m.name, m.state())))
    machine.ssh("echo still-here > ~/survivor")
    machine.ssh("sudo systemctl --no-block poweroff", check=False)  # sshd may drop us first
    machine.wait_off(60)
    assert machine.state() == "off"
    assert machine.last_exit == 0
    assert reports == [(machine.name, "off")]
    machine.boot()
    assert machine.ssh("cat ~/survivor").stdout == "still-here\n"


def test_machine_from_a_disk_copy_has_its_files_and_deletions(
    machine: Machine, testbed: Testbed, tmp_path: Path
) -> None:
    machine.ssh("echo kept > ~/kept && sudo rm /etc/motd")  # /etc/motd lives in the image: a whiteout
    with pytest.raises(TestbedError, match="power it off"):
        machine.copy_disk(tmp_path / "running")
    machine.poweroff()
    machine.copy_disk(tmp_path / "disk")
    copy = testbed.create_machine(f"{machine.name}c", disk_from=tmp_path / "disk")
    try:
        assert copy.state() == "off" and copy.ip != machine.ip
        copy.boot()
        seen = copy.ssh("cat ~/kept; hostname; test -e /etc/motd || echo no-motd").stdout.split()
        assert seen == ["kept", copy.name, "no-motd"]
    finally:
        copy.destroy()


def test_boot_failure_fails_fast_with_the_console(machine: Machine) -> None:
    machine.poweroff()
    (machine.root / "usr/lib/systemd/systemd").unlink()  # the overlay disk, seen from the host
    started = time.monotonic()
    with pytest.raises(TestbedError, match="stopped while booting") as failure:
        machine.boot(timeout=120)
    assert time.monotonic() - started < 30
    assert "testbed: boot #2" in str(failure.value)  # the console tail explains the failure
    assert machine.state() == "off"


def test_machines_boot_in_parallel(make_machines) -> None:
    first, second = make_machines(2)
    assert first.ip != second.ip
    for m in (first, second):
        assert m.ssh("hostname").stdout.strip() == m.name


def test_client_namespace_reaches_machine_with_its_own_address(machine: Machine, make_client) -> None:
    client = make_client()
    assert client.ip != machine.ip
    ssh = ["ssh", *machine.ssh_args(), "echo $SSH_CONNECTION"]
    source = client.run(ssh).stdout.split()[0]
    assert source == client.ip  # routed, not NATed: a guest firewall can tell clients apart


def test_regenerated_host_key_differs(machine: Machine) -> None:
    old = machine.host_public_key()
    machine.regenerate_host_keys()
    new = machine.host_public_key()
    assert new.startswith("ssh-ed25519 ") and new != old
    scan = subprocess.run(
        ["ssh-keyscan", "-t", "ed25519", machine.ip], capture_output=True, text=True, timeout=30
    )
    assert new.split()[1] in scan.stdout


def test_require_sudo_password_makes_sudo_ask(machine: Machine) -> None:
    machine.require_sudo_password()
    result = machine.ssh("sudo -n true", check=False)
    assert result.returncode != 0
    assert "password is required" in result.stderr


def test_trixie_image_boots(make_machines) -> None:
    (m,) = make_machines(1, image="trixie")
    assert m.ssh(". /etc/os-release && echo $VERSION_CODENAME").stdout.strip() == "trixie"


def test_close_leaves_nothing_behind(testbed: Testbed) -> None:
    with Testbed(testbed.cache) as own:
        m = own.machine("cleanup-m")
        client = own.client_namespace("cleanup-c")
        (nspawn_pid,) = _nspawn_pids(m.name)
        assert _leftovers(own, m.name) and _leftovers(own, client.name)
    assert _leftovers(testbed, "cleanup-m") == []
    assert _leftovers(testbed, "cleanup-c") == []
    assert not Path(f"/proc/{nspawn_pid}").exists()
    assert subprocess.run(["ip", "link", "show", m.net.host_if], capture_output=True).returncode != 0
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert m.net.table not in tables.split() and client.net.table not in tables.split()


def test_leftovers_of_a_killed_run_are_swept(testbed: Testbed) -> None:
    script = textwrap.dedent(
        f"""
        import os
        from tests.testbed.testbed import Testbed
        bed = Testbed({str(testbed.cache)!r})
        bed.machine("crashed")
        os._exit(9)  # dies like a SIGKILLed pytest: no atexit, no finalizers
        """
    )
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    assert subprocess.run([sys.executable, "-c", script], env=env, timeout=240).returncode == 9
    assert _leftovers(testbed, "crashed")
    Testbed(testbed.cache).close()  # a new run sweeps what dead owners left
    assert _leftovers(testbed, "crashed") == []


def test_a_held_address_goes_only_to_who_asks_for_it(testbed: Testbed, make_client) -> None:
    from .network import release_hold

    first = make_client()
    first.net.remove(hold=True)  # as Machine.destroy(hold_address=True) does
    try:
        other = make_client()  # the lowest free subnet, whatever it is, is never the held one
        assert other.ip != first.ip
        again = make_client(index=first.net.index)
        assert again.ip == first.ip
        with pytest.raises(TestbedError, match="not held by this process"):
            make_client(index=first.net.index)  # taken, no longer held
    finally:
        release_hold(testbed.run_dir, first.net.index)
