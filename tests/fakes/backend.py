"""How fake cloud machines actually run, kept apart from the fake HTTP APIs.

The fake Paperspace and DigitalOcean servers only speak the providers' wire
formats; every power/disk operation goes through a ``MachineBackend``.  The
default ``MemoryBackend`` simulates machines with timers so contract tests stay
fast, while an end-to-end test can plug in a backend that boots real testbed VMs
without touching the API fakes.

The fakes call backends from worker threads (one ordered queue per machine), so
a backend may block for as long as a real boot takes; ``state`` is called from
request threads and must be cheap and thread-safe.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict

BackendState = Literal["off", "booting", "running", "stopping"]
"""Power state as seen by the hypervisor; each fake maps it to its own vocabulary."""


class MachineSpec(TypedDict, total=False):
    """What a fake API asks the backend to build; only keys the provider knows are set."""

    provider: str  # "paperspace" | "digitalocean"
    name: str
    size: str  # machineType (Paperspace) or size slug (DigitalOcean)
    region: str
    image: str  # templateId or image slug; absent when restoring a snapshot
    snapshot_id: str  # DigitalOcean: create the disk from this snapshot
    disk_gb: int
    user_data: str
    ssh_public_keys: list[str]
    tags: list[str]
    volumes: dict[str, str]  # Lambda, RunPod: volume id -> where the machine mounts it
    start_cmd: list[str]  # RunPod: a container, not a VM: this runs as PID 1 (no systemd)
    env: dict[str, str]  # RunPod: the container's environment (PUBLIC_KEY...)


class MachineBackend(Protocol):
    """Runs the machines behind a fake API; implementations must be thread-safe."""

    def create(self, machine_id: str, spec: MachineSpec) -> None:
        """Allocate the disk (from ``spec["snapshot_id"]`` when set); the machine stays off."""

    def start(self, machine_id: str) -> str:
        """Boot the machine and return its public IPv4 address, which may differ per start."""

    def stop(self, machine_id: str) -> None:
        """Power the machine off."""

    def state(self, machine_id: str) -> BackendState:
        """Current power state, read fresh on every call (guests may power themselves off)."""

    def snapshot(self, machine_id: str, snapshot_id: str) -> None:
        """Copy the machine's disk into a snapshot that later ``create`` calls may use."""

    def delete_snapshot(self, snapshot_id: str) -> None:
        """Free a snapshot's storage."""

    def destroy(self, machine_id: str) -> None:
        """Delete the machine and its disk; its snapshots and volumes stay."""

    def create_volume(self, volume_id: str) -> None:
        """Make an empty volume (Lambda's filesystem) that machines created later may mount."""

    def delete_volume(self, volume_id: str) -> None:
        """Free a volume no machine mounts."""

    def volume_bytes(self, volume_id: str) -> int:
        """What a volume holds, in bytes (what its provider bills)."""


TEST_NET = ipaddress.IPv4Network("198.19.0.0/16")
"""The half of RFC 2544's benchmarking range (198.18.0.0/15) that the testbed never assigns
(it uses 198.18.X.0/24): a fake IP can reach neither a real host nor a testbed machine."""


@dataclass
class _MemoryMachine:
    spec: MachineSpec
    since: float  # when the current transition began
    target: Literal["off", "running"] = "off"
    ip: str | None = None


@dataclass
class MemoryBackend:
    """Timer-driven machines: booting for ``boot_seconds``, stopping for ``stop_seconds``.

    ``snapshot`` blocks for ``snapshot_seconds`` (the fakes call it from a worker
    thread), so clients see snapshot actions in progress before they complete.

    Each start hands out the next address from 198.19.0.0/16, so clients that
    cache an IP across restarts are caught.
    """

    boot_seconds: float = 0.2
    stop_seconds: float = 0.1
    snapshot_seconds: float = 0.1
    clock: Callable[[], float] = time.monotonic
    machines: dict[str, _MemoryMachine] = field(default_factory=dict, init=False)
    snapshots: dict[str, MachineSpec] = field(default_factory=dict, init=False)
    volumes: dict[str, int] = field(default_factory=dict, init=False)  # id -> bytes used
    _ips: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def create(self, machine_id: str, spec: MachineSpec) -> None:
        with self._lock:
            if machine_id in self.machines:
                raise ValueError(f"machine {machine_id} already exists")
            snapshot_id = spec.get("snapshot_id")
            if snapshot_id is not None and snapshot_id not in self.snapshots:
                raise KeyError(f"no snapshot {snapshot_id}")
            self.machines[machine_id] = _MemoryMachine(spec=spec, since=self.clock())

    def start(self, machine_id: str) -> str:
        with self._lock:
            machine = self.machines[machine_id]
            self._ips += 1
            machine.ip = str(TEST_NET[self._ips])
            machine.target, machine.since = "running", self.clock()
            return machine.ip

    def stop(self, machine_id: str) -> None:
        with self._lock:
            machine = self.machines[machine_id]
            machine.target, machine.since = "off", self.clock()

    def state(self, machine_id: str) -> BackendState:
        with self._lock:
            machine = self.machines[machine_id]
            elapsed = self.clock() - machine.since
            if machine.target == "running":
                return "running" if elapsed >= self.boot_seconds else "booting"
            if machine.ip is None:
                return "off"  # created, never started
            return "off" if elapsed >= self.stop_seconds else "stopping"

    def snapshot(self, machine_id: str, snapshot_id: str) -> None:
        with self._lock:
            spec = self.machines[machine_id].spec
        time.sleep(self.snapshot_seconds)
        with self._lock:
            self.snapshots[snapshot_id] = spec

    def delete_snapshot(self, snapshot_id: str) -> None:
        with self._lock:
            del self.snapshots[snapshot_id]

    def destroy(self, machine_id: str) -> None:
        with self._lock:
            del self.machines[machine_id]

    def create_volume(self, volume_id: str) -> None:
        with self._lock:
            self.volumes[volume_id] = 0

    def delete_volume(self, volume_id: str) -> None:
        with self._lock:
            del self.volumes[volume_id]

    def volume_bytes(self, volume_id: str) -> int:
        with self._lock:
            return self.volumes[volume_id]

    def guest_poweroff(self, machine_id: str) -> None:
        """Simulate the guest OS shutting itself down (e.g. an idle autostop timer)."""
        with self._lock:
            machine = self.machines[machine_id]
            machine.target, machine.since = "off", self.clock() - self.stop_seconds
