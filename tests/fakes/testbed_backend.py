"""A ``MachineBackend`` whose machines are real testbed machines (tests/testbed), for end-to-end tests.

The fake APIs stay as they are; only the machines behind them become real.
``create`` makes a testbed disk, from the image or from a snapshot, and leaves
the machine off. ``start`` boots it and returns its address. ``stop`` shuts the
guest down from inside, as a cloud's ACPI power button does. A snapshot is a
copy of the disk (``Machine.copy_disk``) kept in a temporary directory. A volume
(Lambda's filesystem) is a host directory, bind-mounted where the create call says.

A spec with a ``start_cmd`` (RunPod's pods) makes a container, not a VM: systemd-nspawn runs
that command as PID 1 with the spec's ``env`` (no ``--boot``, no systemd), ``stop`` kills it
and then wipes its disk back to the image (the volume stays), and nothing is done at first
boot: the start command does what the image's does (sshd from ``PUBLIC_KEY``).

What a cloud image does at its first boot (cloud-init, Paperspace's agent) is
done here on the disk before the first boot:

* the login user exists, with passwordless sudo: ``paperspace`` on Paperspace,
  ``root`` on DigitalOcean;
* the ssh keys named in the create call are added to its authorized_keys. A
  Paperspace create call names none, because Paperspace installs the account's
  keys, so ``account_keys`` plays that part;
* a machine made from a snapshot is a new instance and gets new host keys. The
  image's sshd makes the missing ones at boot.

With ``hold_addresses`` set, a destroyed machine's address is held for this backend: the next
``create`` gets it back, as a cloud may hand a new instance the address its last one had, or
``take_held_address`` gives it to a client. No other testbed user can take it in between.

A guest that powers itself off reads ``off`` at once. The testbed's supervisor
marks the machine off when systemd-nspawn exits, and ``state`` reads that fresh.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from tests.testbed import Testbed, TestbedError
from tests.testbed.host import run
from tests.testbed.machine import Machine
from tests.testbed.network import release_hold

from .backend import BackendState, MachineSpec

STATES: dict[str, BackendState] = {
    "running": "running",
    "booting": "booting",
    "rebooting": "booting",
    "off": "off",
}
"""Testbed state -> backend state; the testbed has no 'stopping' (a shutting-down guest still runs)."""


class TestbedBackend:
    """Machines behind a fake cloud API, booted with systemd-nspawn; ``close()`` removes them all."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self,
        testbed: Testbed,
        *,
        login_user: str,
        account_keys: Sequence[str] = (),
        image: str = "bookworm",
        boot_timeout: float = 180,
    ) -> None:
        self.testbed = testbed
        self.login_user = login_user
        self.account_keys = list(account_keys)
        self.image = image
        self.boot_timeout = boot_timeout
        self._machines: dict[str, Machine] = {}
        self._snapshots: dict[str, tuple[str, Path]] = {}  # id -> (image, copy of the disk)
        self._snapshot_dir = Path(tempfile.mkdtemp(prefix="padlab-snapshots-"))
        self._volume_dir = Path(tempfile.mkdtemp(prefix="padlab-volumes-"))
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self.hold_addresses = False
        self._held: list[int] = []  # subnet indexes of destroyed machines, oldest first
        self.boots: list[float] = []  # seconds each start took: an `up` is measured without them

    def machine(self, machine_id: str) -> Machine:
        """The testbed machine behind an API id, for tests that look inside it."""
        with self._lock:
            return self._machines[machine_id]

    def machine_ids(self) -> list[str]:
        """Ids of the machines that exist (destroyed ones are gone)."""
        with self._lock:
            return list(self._machines)

    def snapshot_ids(self) -> list[str]:
        with self._lock:
            return list(self._snapshots)

    # -- MachineBackend ----------------------------------------------------------------

    def create(self, machine_id: str, spec: MachineSpec) -> None:
        snapshot_id = spec.get("snapshot_id")
        with self._lock:
            if machine_id in self._machines:
                raise ValueError(f"machine {machine_id} already exists")
            if snapshot_id is not None and snapshot_id not in self._snapshots:
                raise KeyError(f"no snapshot {snapshot_id}")
            image, disk = self._snapshots[snapshot_id] if snapshot_id else (self.image, None)
            # Testbed names are host-wide (netns names); the pid keeps parallel runs apart.
            name = f"cb{os.getpid() % 100000}-{next(self._names)}"
            index = self._held.pop(0) if self._held else None
        binds = [(self.volume_path(vid), guest) for vid, guest in (spec.get("volumes") or {}).items()]
        machine = self.testbed.create_machine(name, image, disk_from=disk, index=index, binds=binds)
        if spec.get("start_cmd"):
            machine.container_cmd = list(spec["start_cmd"])
            machine.container_env = dict(spec.get("env") or {})
        try:
            if machine.container_cmd is None:
                self._first_boot_setup(
                    machine, spec.get("ssh_public_keys") or self.account_keys, disk is not None
                )
        except BaseException:
            machine.destroy()
            raise
        with self._lock:
            self._machines[machine_id] = machine

    def start(self, machine_id: str) -> str:
        machine = self.machine(machine_id)
        machine.wait_off()  # the last power-off's supervisor must be done before the next boot
        began = time.monotonic()
        machine.boot(timeout=self.boot_timeout)
        self.boots.append(time.monotonic() - began)
        return machine.ip

    def stop(self, machine_id: str) -> None:
        machine = self.machine(machine_id)
        if machine.state() != "off":
            with contextlib.suppress(TestbedError):  # the guest may be shutting down by itself already
                machine.poweroff(wait=False)
        machine.wait_off(self.boot_timeout)
        if machine.container_cmd is not None:
            machine.reset_disk()  # a container's disk is wiped at every stop

    def state(self, machine_id: str) -> BackendState:
        return STATES[self.machine(machine_id).state()]

    def snapshot(self, machine_id: str, snapshot_id: str) -> None:
        machine = self.machine(machine_id)
        path = self._snapshot_dir / snapshot_id
        machine.copy_disk(path)
        with self._lock:
            self._snapshots[snapshot_id] = (machine.image, path)

    def delete_snapshot(self, snapshot_id: str) -> None:
        with self._lock:
            _, path = self._snapshots.pop(snapshot_id)
        shutil.rmtree(path)

    def destroy(self, machine_id: str) -> None:
        machine = self.machine(machine_id)
        hold = self.hold_addresses
        machine.destroy(hold_address=hold)
        with self._lock:  # only now, so machine_ids() lists it until its disk and network are gone
            del self._machines[machine_id]
            if hold:
                self._held.append(machine.net.index)

    def volume_path(self, volume_id: str) -> Path:
        """The host directory behind a volume, for tests that look inside it."""
        path = self._volume_dir / volume_id
        if not path.is_dir():
            raise KeyError(f"no volume {volume_id}")
        return path

    def create_volume(self, volume_id: str) -> None:
        (self._volume_dir / volume_id).mkdir(mode=0o755)

    def delete_volume(self, volume_id: str) -> None:
        shutil.rmtree(self.volume_path(volume_id))

    def volume_bytes(self, volume_id: str) -> int:
        path = self.volume_path(volume_id)
        return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_symlink() and p.is_file())

    def take_held_address(self) -> int:
        """The oldest held subnet index, for `make_client(index=...)`; the next create won't get it."""
        with self._lock:
            return self._held.pop(0)

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Destroy every machine and snapshot; the fake's worker queues must be drained first."""
        with self._lock:
            machines, self._machines = list(self._machines.values()), {}
            self._snapshots.clear()
            held, self._held = self._held, []
        for machine in machines:
            machine.destroy()
        for index in held:
            release_hold(self.testbed.run_dir, index)
        shutil.rmtree(self._snapshot_dir, ignore_errors=True)
        shutil.rmtree(self._volume_dir, ignore_errors=True)

    def __enter__(self) -> TestbedBackend:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- what the cloud image does at first boot -------------------------------------------

    def _first_boot_setup(self, machine: Machine, keys: Sequence[str], from_snapshot: bool) -> None:
        root, user = machine.root, self.login_user
        if user == "root":
            home = root / "root"
        else:
            home = root / "home" / user
            if not home.exists():
                run(["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", user])
                run(["chroot", str(root), "usermod", "--password", "*", user])  # no password, not locked
                sudoers = root / "etc" / "sudoers.d" / f"cloud-{user}"
                sudoers.write_text(f"{user} ALL=(ALL:ALL) NOPASSWD: ALL\n")
                sudoers.chmod(0o440)
        authorized = home / ".ssh" / "authorized_keys"
        authorized.parent.mkdir(mode=0o700, exist_ok=True)
        have = authorized.read_text().splitlines() if authorized.exists() else []
        authorized.write_text("".join(f"{line}\n" for line in [*have, *(k for k in keys if k not in have)]))
        authorized.chmod(0o600)
        run(["chroot", str(root), "chown", "-R", f"{user}:{user}", f"/{home.relative_to(root)}/.ssh"])
        if from_snapshot:
            for key in (root / "etc" / "ssh").glob("ssh_host_*"):
                key.unlink()
