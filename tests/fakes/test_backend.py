"""The machine backend seam: MemoryBackend's behaviour and what the fakes ask of any backend."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.fakes import FakeDigitalOcean, FakePaperspace, MachineSpec, MemoryBackend
from tests.fakes.backend import TEST_NET, BackendState
from tests.fakes.polling import wait_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_memory_backend_transitions_follow_its_timers() -> None:
    clock = FakeClock()
    backend = MemoryBackend(boot_seconds=2, stop_seconds=1, clock=clock)
    backend.create("m1", MachineSpec(name="m1"))
    assert backend.state("m1") == "off"
    ip = backend.start("m1")
    assert backend.state("m1") == "booting"
    clock.now = 2
    assert backend.state("m1") == "running"
    backend.stop("m1")
    assert backend.state("m1") == "stopping"
    clock.now = 3
    assert backend.state("m1") == "off"
    assert ipaddress.ip_address(ip) in TEST_NET


def test_memory_backend_gives_a_new_test_net_ip_per_start() -> None:
    backend = MemoryBackend(boot_seconds=0, stop_seconds=0)
    backend.create("m1", MachineSpec())
    ips = [backend.start("m1") for _ in range(3)]
    assert len(set(ips)) == 3
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("198.18.0.0/15") for ip in ips)


def test_memory_backend_snapshots_outlive_machines() -> None:
    backend = MemoryBackend(snapshot_seconds=0)
    backend.create("m1", MachineSpec(name="m1"))
    backend.snapshot("m1", "s1")
    backend.destroy("m1")
    backend.create("m2", MachineSpec(snapshot_id="s1"))
    with pytest.raises(KeyError):
        backend.create("m3", MachineSpec(snapshot_id="missing"))
    backend.delete_snapshot("s1")
    assert backend.snapshots == {}


def test_guest_poweroff_is_immediate() -> None:
    backend = MemoryBackend(boot_seconds=0)
    backend.create("m1", MachineSpec())
    backend.start("m1")
    backend.guest_poweroff("m1")
    assert backend.state("m1") == "off"


@dataclass
class RecordingBackend:
    """Wraps a MemoryBackend and logs every call, the way a real-VM backend would be driven."""

    inner: MemoryBackend = field(default_factory=lambda: MemoryBackend(boot_seconds=0.02, stop_seconds=0.02))
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def create(self, machine_id: str, spec: MachineSpec) -> None:
        self.calls.append(("create", (machine_id, dict(spec))))
        self.inner.create(machine_id, spec)

    def start(self, machine_id: str) -> str:
        self.calls.append(("start", machine_id))
        return self.inner.start(machine_id)

    def stop(self, machine_id: str) -> None:
        self.calls.append(("stop", machine_id))
        self.inner.stop(machine_id)

    def state(self, machine_id: str) -> BackendState:
        return self.inner.state(machine_id)

    def snapshot(self, machine_id: str, snapshot_id: str) -> None:
        self.calls.append(("snapshot", (machine_id, snapshot_id)))
        self.inner.snapshot(machine_id, snapshot_id)

    def delete_snapshot(self, snapshot_id: str) -> None:
        self.calls.append(("delete_snapshot", snapshot_id))
        self.inner.delete_snapshot(snapshot_id)

    def destroy(self, machine_id: str) -> None:
        self.calls.append(("destroy", machine_id))
        self.inner.destroy(machine_id)


def test_paperspace_drives_any_backend_in_order() -> None:
    backend = RecordingBackend()
    with (
        FakePaperspace(api_key="k", backend=backend) as fake,
        httpx.Client(base_url=fake.url, headers={"Authorization": "Bearer k"}) as client,
    ):
        body = {
            "name": "pad",
            "machineType": "H100",
            "templateId": "t0nspur5",
            "diskSize": 100,
            "region": "ny2",
        }
        machine_id = client.post("/machines", json=body).json()["data"]["id"]
        wait_for(lambda: client.get(f"/machines/{machine_id}").json()["state"], lambda s: s == "ready")
        client.patch(f"/machines/{machine_id}/stop")
        client.delete(f"/machines/{machine_id}")
    spec = {
        "provider": "paperspace",
        "name": "pad",
        "size": "H100",
        "region": "ny2",
        "image": "t0nspur5",
        "disk_gb": 100,
    }
    assert backend.calls == [
        ("create", (machine_id, spec)),
        ("start", machine_id),
        ("stop", machine_id),
        ("destroy", machine_id),
    ]


def test_digitalocean_drives_any_backend_in_order() -> None:
    backend = RecordingBackend()
    with (
        FakeDigitalOcean(token="t", backend=backend) as fake,
        httpx.Client(base_url=fake.url, headers={"Authorization": "Bearer t"}) as client,
    ):
        body = {
            "name": "pad",
            "size": "gpu-h100x1-80gb",
            "image": "gpu-h100x1-base",
            "user_data": "#!/bin/sh\n",
        }
        droplet_id = client.post("/v2/droplets", json=body).json()["droplet"]["id"]
        read = lambda: client.get(f"/v2/droplets/{droplet_id}").json()["droplet"]["status"]  # noqa: E731
        wait_for(read, lambda s: s == "active")
        action = client.post(f"/v2/droplets/{droplet_id}/actions", json={"type": "snapshot"}).json()["action"]
        wait_for(
            lambda: client.get(f"/v2/actions/{action['id']}").json()["action"]["status"],
            lambda s: s != "in-progress",
        )
        snapshot_id = client.get("/v2/snapshots").json()["snapshots"][0]["id"]
        client.delete(f"/v2/droplets/{droplet_id}")
        client.delete(f"/v2/snapshots/{snapshot_id}")
    machine_id = str(droplet_id)
    spec = {
        "provider": "digitalocean",
        "name": "pad",
        "size": "gpu-h100x1-80gb",
        "region": "nyc2",
        "disk_gb": 720,
        "ssh_public_keys": [],
        "tags": [],
        "image": "gpu-h100x1-base",
        "user_data": "#!/bin/sh\n",
    }
    assert backend.calls == [
        ("create", (machine_id, spec)),
        ("start", machine_id),
        ("snapshot", (machine_id, snapshot_id)),
        ("destroy", machine_id),
        ("delete_snapshot", snapshot_id),
    ]


def test_backend_failures_surface_when_the_fake_closes() -> None:
    class Broken(RecordingBackend):
        def start(self, machine_id: str) -> str:
            raise OSError("hypervisor unavailable")

    fake = FakePaperspace(api_key="k", backend=Broken()).start()
    body = {"name": "pad", "machineType": "C5", "templateId": "t0nspur5", "diskSize": 50, "region": "ny2"}
    httpx.post(f"{fake.url}/machines", json=body, headers={"Authorization": "Bearer k"})
    with pytest.raises(RuntimeError, match="hypervisor unavailable"):
        fake.close()


def test_a_failed_backend_call_marks_the_digitalocean_action_errored() -> None:
    class NoSnapshots(RecordingBackend):
        def snapshot(self, machine_id: str, snapshot_id: str) -> None:
            raise OSError("disk full")

    with (
        FakeDigitalOcean(token="t", backend=NoSnapshots()) as fake,
        httpx.Client(base_url=fake.url, headers={"Authorization": "Bearer t"}) as client,
    ):
        body = {"name": "pad", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64"}
        droplet_id = client.post("/v2/droplets", json=body).json()["droplet"]["id"]
        read = lambda: client.get(f"/v2/droplets/{droplet_id}").json()["droplet"]["status"]  # noqa: E731
        wait_for(read, lambda s: s == "active")
        action = client.post(f"/v2/droplets/{droplet_id}/actions", json={"type": "snapshot"}).json()["action"]
        status = lambda: client.get(f"/v2/actions/{action['id']}").json()["action"]["status"]  # noqa: E731
        assert wait_for(status, lambda s: s != "in-progress") == "errored"
        assert client.get("/v2/snapshots").json()["meta"] == {"total": 0}
        assert [str(error) for error in fake.errors] == ["disk full"]
        fake.errors.clear()
