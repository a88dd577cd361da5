"""RunPod provider against the strict fake API: network volume, create, stop, resume, 0 GPUs and --move."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from padlab import registry, state, workstation
from padlab.errors import PadlabError
from padlab.profiles import Profile
from padlab.providers.runpod import START_CMD, RunPodProvider
from tests.fakes import MemoryBackend
from tests.fakes.runpod import FakeRunPod
from tests.helpers import one_line_error, padlab

KEY = "rpa_TESTKEY0123456789"


@pytest.fixture
def fake() -> Iterator[FakeRunPod]:
    backend = MemoryBackend(boot_seconds=0.05, stop_seconds=0.05)
    with FakeRunPod(api_key=KEY, backend=backend) as fake:
        yield fake


@pytest.fixture
def provider(home: Path, fake: FakeRunPod, ssh_key: Path, monkeypatch: pytest.MonkeyPatch) -> RunPodProvider:
    monkeypatch.setenv("RUNPOD_API_KEY", KEY)
    return make(fake)


def make(fake: FakeRunPod, name: str = "pod", **options: object) -> RunPodProvider:
    options = {"api_url": fake.url, "machine_type": "NVIDIA RTX A6000,NVIDIA A40", **options}
    return RunPodProvider(Profile(name=name, provider="runpod", options=options).validate())


def creates(fake: FakeRunPod) -> list[dict]:
    return [json.loads(r.body) for r in fake.requests if r.method == "POST" and r.path == "/v1/pods"]


def test_up_makes_the_network_volume_then_a_pod_on_it(provider: RunPodProvider, fake: FakeRunPod) -> None:
    said: list[str] = []
    machine = provider.start_machine(said.append)
    assert machine.state == "running" and machine.host
    [body] = creates(fake)
    [volume] = fake.volume_ids()
    assert body["networkVolumeId"] == volume and body["volumeMountPath"] == "/workspace"
    assert body["gpuTypeIds"] == ["NVIDIA RTX A6000", "NVIDIA A40"] and body["gpuCount"] == 1
    # Jupyter's port over TCP; the proxy's plain-HTTP port is HTTP only, never on the public IP.
    assert body["ports"] == ["22/tcp", "8888/tcp", "8889/http"] and body["dockerStartCmd"] == START_CMD
    assert body["env"]["PUBLIC_KEY"].startswith("ssh-ed25519 ")
    # TCP ports are mapped to other public ports: ssh and Jupyter go to the mapped ones.
    assert machine.extra["ssh_port"] == 10022 and machine.extra["jupyter_port"] == 18888
    assert provider.target(machine).port == 10022
    assert machine.extra["gpus"] == 1 and machine.price_per_hour == 0.49
    assert any("created pod" in line and "RTX A6000" in line and "$0.49/h" in line for line in said), said


def test_down_stops_the_pod_and_status_shows_the_volume_billed(
    provider: RunPodProvider, fake: FakeRunPod
) -> None:
    first = provider.start_machine(print)
    down = provider.stop(print)
    assert down.state == "off" and down.extra["provider_state"] == "EXITED"
    billed = "network volume padlab-pod in EU-RO-1: 50 GB × $0.07/GB-month ≈ $3.50/month"
    assert down.billed_while_down == billed
    assert down.down_usd_per_hour == pytest.approx(3.5 / 730)
    again = provider.start_machine(print)
    assert again.id == first.id and again.state == "running"  # resumed, not re-created
    assert len(creates(fake)) == 1
    assert [r.path for r in fake.requests if r.path.endswith("/start")] == [f"/v1/pods/{first.id}/start"]
    assert len([r for r in fake.requests if r.method == "POST" and r.path.endswith("/networkvolumes")]) == 1


def test_a_resume_without_gpus_is_one_line_and_move_recovers_on_the_same_volume(
    provider: RunPodProvider, fake: FakeRunPod
) -> None:
    first = provider.start_machine(print)
    provider.stop(print)
    fake.take_gpus(str(first.id))  # another user rented the host's GPUs meanwhile
    with pytest.raises(PadlabError) as caught:
        provider.start_machine(print)
    assert "\n" not in caught.value.message
    assert caught.value.message.startswith(f"pod {first.id} resumed with 0 of 1 GPU: ")
    assert "padlab up pod --move" in caught.value.fix
    assert provider.describe().state == "off"  # stopped again: a pod without GPUs is not left billed
    said: list[str] = []
    provider.move(said.append)
    second = provider.start_machine(said.append)
    assert second.id != first.id and second.extra["gpus"] == 1
    [volume] = fake.volume_ids()
    assert [b["networkVolumeId"] for b in creates(fake)] == [volume, volume]
    assert provider._get(str(first.id)) is None  # the old pod is gone, the volume stays
    assert state.load("pod")["cloud"]["machine_id"] == second.id


def test_a_pod_with_no_public_ip_is_one_line_and_move_makes_one_with_an_ip(
    provider: RunPodProvider, fake: FakeRunPod
) -> None:
    import httpx

    # A pod of this profile's name made in RunPod's console on a community host with no public IP.
    made = httpx.post(
        f"{fake.url}/pods",
        headers={"Authorization": f"Bearer {KEY}"},
        json={
            "name": "padlab-pod",
            "imageName": "runpod/base",
            "gpuTypeIds": ["NVIDIA A40"],
            "cloudType": "COMMUNITY",
            "ports": ["22/tcp"],
        },  # fmt: skip
    ).json()
    with pytest.raises(PadlabError) as caught:
        provider.start_machine(print)
    assert "\n" not in caught.value.message
    assert caught.value.message.startswith(f"pod {made['id']} is on a host with no public IP: ")
    assert "ssh.runpod.io" in caught.value.message
    assert "padlab up pod --move" in caught.value.fix
    provider.move(print)
    moved = provider.start_machine(print)
    assert moved.id != made["id"] and moved.host and moved.extra["ssh_port"]


def test_the_card_gets_the_proxy_url_and_says_why_there_is_no_mosh(
    provider: RunPodProvider, fake: FakeRunPod
) -> None:
    machine = provider.start_machine(print)
    out = provider.after_up(machine, {})
    assert out["proxy_url"] == f"https://{machine.id}-8889.proxy.runpod.net/"
    assert out["public_port"] == 18888 and out["mosh_command"] is None
    assert "no UDP" in out["mosh_note"]


def test_move_is_refused_where_machines_cannot_move(home: Path) -> None:
    from padlab.providers.ssh import SshProvider

    ssh = SshProvider(Profile(name="box", provider="ssh", host="203.0.113.7").validate())
    with pytest.raises(PadlabError, match="--move is for providers"):
        ssh.move(print)


def test_everything_padlab_keeps_is_on_the_volume(provider: RunPodProvider, fake: FakeRunPod) -> None:
    provider.start_machine(print)
    req = workstation.request_for(provider.profile, provider, "status")
    assert req["prefix"] == "/workspace/.padlab/opt" and req["etc"] == "/workspace/.padlab/etc"
    assert req["root_dir"] == "/workspace/notebooks"
    assert "mosh" not in req or req["mosh"] is None  # pods carry no UDP
    assert req["boot"] == {"dir": "/workspace/.padlab/root"}  # the start command's `up`, root's
    assert req["uv_cache"] == "/workspace/.padlab/opt/uv-cache"  # uv's cache outlives the wiped disk
    assert req["proxy_port"] == 8889  # Jupyter over plain HTTP for RunPod's proxy (box/http_front.py)
    outside = RunPodProvider(
        Profile(name="pod", provider="runpod", root_dir="/srv/nb", options=provider.options)
    )
    with pytest.raises(PadlabError, match="wipes at every stop"):
        outside.layout()


def test_autostop_is_the_apis_stop_with_the_pods_own_key(provider: RunPodProvider, fake: FakeRunPod) -> None:
    assert registry.get("runpod").default_stop == "runpod-stop"
    machine = provider.start_machine(print)
    fields = provider.autostop_fields("runpod-stop", machine)
    assert fields == {"runpod": {"api_url": fake.url}}  # no key: the pod has its own


def test_a_bad_key_names_where_it_came_from(
    provider: RunPodProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "wrong")
    with pytest.raises(PadlabError, match=r"\$RUNPOD_API_KEY was rejected"):
        RunPodProvider(provider.profile).describe()


def test_login_checks_the_key(home: Path, fake: FakeRunPod) -> None:
    args = ("login", "runpod", "--key-stdin", "--api-url", fake.url)
    refused = padlab(home, *args, input="wrong\n", check=False)
    assert "rejected" in one_line_error(refused)
    padlab(home, *args, input=KEY + "\n")
    assert (home / "credentials" / "runpod").read_text().strip() == KEY


# -- the panel's list: RunPod's own ----------------------------------------------------------------


def test_the_catalog_is_runpods_own_gpu_list_with_its_data_centers(
    provider: RunPodProvider, fake: FakeRunPod
) -> None:
    from padlab import onboard
    from tests.fakes.runpod import GPU_TYPES

    fake.capacity["NVIDIA A40"] = set()
    fake.capacity["NVIDIA RTX A6000"] = {"EU-SE-1", "US-IL-1"}
    cat = onboard.catalog("runpod", live=True, api_url=fake.url)
    assert cat["live_error"] is None and cat["price_source"] == "RunPod API (catalog/gpus, secure cloud)"
    types = {m["name"]: m for m in cat["machine_types"]}
    assert set(types) == set(GPU_TYPES)  # not padlab's list (which has no RTX 4090 price, nor these)
    assert types["NVIDIA RTX A6000"] == {
        "name": "NVIDIA RTX A6000",
        "price_per_hour": 0.49,
        "regions": ["EU-SE-1", "US-IL-1"],
    }
    assert types["NVIDIA A40"]["regions"] == []
    assert cat["machine_types"][0]["name"] == "NVIDIA GeForce RTX 4090"  # the default first
    assert "EU-RO-1" in cat["regions"] and "US-KS-2" in cat["regions"]
    [asked] = [r for r in fake.requests if r.path == "/v2/catalog/gpus"]
    assert asked.query == {
        "include": ["AVAILABILITY"],
        "product": ["POD"],
        "cloud": ["SECURE"],
        "count": ["1"],
    }


def test_the_catalog_falls_back_to_padlabs_list_in_one_line_when_runpod_fails(
    home: Path, fake: FakeRunPod, monkeypatch: pytest.MonkeyPatch
) -> None:
    from padlab import onboard

    monkeypatch.setenv("RUNPOD_API_KEY", "rpa_not_the_key")
    cat = onboard.catalog("runpod", live=True, api_url=fake.url)
    assert cat["live_error"].startswith("RunPod's own list could not be read (")
    assert "rpa_not_the_key" not in cat["live_error"] and "bundled table" in cat["price_source"]
    assert [m["name"] for m in cat["machine_types"]][:2] == ["NVIDIA GeForce RTX 4090", "NVIDIA A40"]


def test_the_catalog_is_asked_of_runpods_own_api_host_for_runpods_own_v1() -> None:
    from padlab.providers.runpod import CATALOG_URL, DEFAULT_URL, catalog_url

    assert catalog_url(DEFAULT_URL) == CATALOG_URL == "https://api.runpod.io"
    assert catalog_url("http://127.0.0.1:8123/v1") == "http://127.0.0.1:8123"
