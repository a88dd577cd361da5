"""RunPod end to end: the fake API runs testbed containers, and a stop wipes the container disk.

A pod is a systemd-nspawn container whose PID 1 is the pod's start command (no systemd);
its network volume is a host directory bind-mounted at /workspace. One pod at a time:
up -> login -> notebook saved -> down (stop: the disk is wiped) -> up (resume): the
notebook, the venv and Jupyter's password are still there. Then a resume that comes back
with 0 GPUs: the one-line refusal, and `up --move` to a new pod on the same volume. Last,
autostop: the idle pod stops itself through the API with its own pod-scoped key, within the
limit plus a minute, and started again from outside padlab, Jupyter comes back on its own
(the start command re-runs padlab's box program). The two `up` times, less the container's start, are printed (-s).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.runpod import FakeRunPod
from tests.fakes.testbed_backend import TestbedBackend
from tests.helpers import PASSWORD, one_line_error, padlab
from tests.test_cloud_e2e import (
    MARKER,
    NOTEBOOK,
    changed,
    eventually,
    host_of,
    login_and_run,
    padlab_json,
    read_notebook,
    write_notebook,
)

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(900)]

KEY = "rpa_E2E0123456789ABCDEF"
LIMIT = 60  # autostop 1m
ENV = {"RUNPOD_API_KEY": KEY}


@pytest.fixture
def runpod(testbed, make_client) -> Iterator[tuple[FakeRunPod, TestbedBackend]]:
    backend = TestbedBackend(testbed, login_user="root")
    # The API listens on a testbed host address, which the pods reach: autostop's stop calls it.
    # port_offset 0: a testbed container has its own address, so its ports are not remapped.
    where = make_client().net.host_ip
    with backend, FakeRunPod(api_key=KEY, backend=backend, port_offset=0, host=where) as fake:
        yield fake, backend


def _reads(card: dict[str, Any]) -> str | None:
    try:
        return read_notebook(card)
    except Exception:  # not up yet: refused, reset, or a login page still loading
        return None


def direct(card: dict[str, Any]) -> dict[str, Any]:
    """The card with Jupyter's own port (padlab's CA) as its URL: the test's way in besides the proxy."""
    return {**card, "url": card["direct_url"]}


def pod_of(fake: FakeRunPod) -> dict[str, Any]:
    import httpx

    [pod] = httpx.get(f"{fake.url}/pods", headers={"Authorization": f"Bearer {KEY}"}).json()
    return pod


def test_runpod_stop_wipes_the_disk_and_the_volume_keeps_the_notebook(runpod, testbed, tmp_path) -> None:
    fake, backend = runpod
    home = tmp_path / "padlab-home"
    padlab(home, "init", "pod", "--provider", "runpod", "--api-url", fake.url, "--machine-type", "NVIDIA A40",
           "--identity", str(testbed.identity), **ENV)  # fmt: skip

    began = time.monotonic()
    card = padlab_json(home, "up", "pod", "--password-stdin", input=PASSWORD + "\n", **ENV)
    first_up = time.monotonic() - began - backend.boots[-1]
    [first_id] = backend.machine_ids()
    first = backend.machine(first_id)
    assert host_of(direct(card)) == first.ip and card["ssh"] == f"ssh root@{first.ip}"
    assert card["mosh"] is None and "no UDP" in card["mosh_note"]  # pods carry no UDP
    # The card's URL is RunPod's HTTPS proxy (publicly trusted: no CA profile), which speaks
    # plain HTTP to the pod's port 8889, exposed as HTTP only; the fake stands in for it.
    assert card["url"] == card["juno_url"] == f"https://{first_id}-8889.proxy.runpod.net/"
    assert card["ca_profile_hint"] is None
    assert "8889" not in pod_of(fake)["portMappings"]  # not on the public IP
    via_proxy = {"url": fake.proxy(first_id, 8889), "ca_cert": str(fake.ca_file)}
    assert login_and_run(via_proxy) == "42"  # the password login, then a kernel over websockets
    assert login_and_run(direct(card)) == "42"
    write_notebook(direct(card))
    [volume_id] = fake.volume_ids()
    volume = backend.volume_path(volume_id)
    assert (volume / "notebooks" / NOTEBOOK).is_file()  # on the volume, not the container disk
    assert (volume / ".padlab" / "opt" / "venv" / "bin" / "jupyter").exists()
    assert any((volume / ".padlab" / "opt" / "uv-cache").iterdir())  # uv's cache too
    # uv from the lock, installed as the Jupyter user (not root), not pip's fallback
    assert [s["detail"] for s in card["steps"] if s["name"] == "python-env"][0].endswith("with uv")

    padlab(home, "down", "pod", **ENV)
    status = padlab_json(home, "status", "pod", **ENV)
    assert status["state"] == "stopped" and status["machine"]["state"] == "off"
    billed = status["machine"]["billed_while_down"]
    assert billed == "network volume padlab-pod in EU-RO-1: 50 GB × $0.07/GB-month ≈ $3.50/month", billed
    eventually(lambda: fake.settled(first_id), "the stopped container's disk to be wiped")
    assert "padlab-jupyter" not in (first.root / "etc" / "passwd").read_text()  # the disk was wiped

    # Up again: the same pod resumes. No new venv, no password needed.
    began = time.monotonic()
    again = padlab_json(home, "up", "pod", **ENV)
    second_up = time.monotonic() - began - backend.boots[-1]
    assert backend.machine_ids() == [first_id]
    # The pod's start command ran `up` from the volume before padlab's did: it rebuilt what the
    # wiped disk held (the Jupyter user, Jupyter) and not the venv, which was on the volume.
    boot_log = (volume / ".padlab" / "root" / "boot.log").read_text().splitlines()
    booted = [json.loads(line) for line in boot_log if line.startswith("{")][-1]
    assert booted["ok"] and "python-env" not in changed(booted), booted
    assert {"jupyter-user", "jupyter-running"} <= changed(booted), changed(booted)
    assert "python-env" not in changed(again)
    assert read_notebook(direct(again)) == MARKER
    assert read_notebook(via_proxy) == MARKER
    costs = padlab_json(home, "costs", "pod", **ENV)["profiles"]["pod"]
    assert costs["down_hours"] > 0 and costs["down_usd"] > 0, costs  # the volume while down, priced
    assert costs["hours"] > 0 and costs["unpriced_hours"] == 0, costs  # the run, at the API's price

    # A resume whose host's GPUs were rented out meanwhile: one line, then --move.
    padlab(home, "down", "pod", **ENV)
    fake.take_gpus(first_id)
    refused = padlab(home, "up", "pod", check=False, **ENV)
    line = one_line_error(refused)
    assert f"pod {first_id} resumed with 0 of 1 GPU" in line and "padlab up pod --move" in line, line
    moved = padlab_json(home, "up", "pod", "--move", **ENV)
    eventually(lambda: first_id not in backend.machine_ids(), "the old pod's container to be removed")
    [second_id] = backend.machine_ids()
    assert second_id != first_id and pod_of(fake)["gpu"]["count"] == 1
    assert read_notebook(direct(moved)) == MARKER

    # Autostop: idle past the limit, the pod stops itself with RunPod's stop and its own key.
    padlab(home, "autostop", "pod", "1m", **ENV)
    idle_from = time.monotonic()
    eventually(lambda: pod_of(fake)["desiredStatus"] == "EXITED", "the pod to stop itself", LIMIT + 90)
    stopped_after = time.monotonic() - idle_from
    [call] = [r for r in fake.requests if r.path.endswith(f"/pods/{second_id}/stop")]
    assert call.headers["authorization"] != f"Bearer {KEY}"  # the pod's own key, not padlab's
    assert stopped_after <= LIMIT + 60, stopped_after
    eventually(lambda: backend.state(second_id) == "off", "the container to stop")
    status = padlab_json(home, "status", "pod", **ENV)
    assert status["machine"]["state"] == "off"
    assert status["stop_reason"].startswith("pod stopped outside `padlab down`: by autostop")

    # Jupyter on boot: the pod started from RunPod's console (not `padlab up`) serves the notebook,
    # because its start command runs padlab's box program from the volume.
    import httpx

    started = httpx.post(f"{fake.url}/pods/{second_id}/start", headers={"Authorization": f"Bearer {KEY}"})
    assert started.status_code == 200
    eventually(lambda: backend.state(second_id) == "running", "the pod to start", 120)
    assert eventually(lambda: _reads(direct(moved)), "Jupyter to come back without padlab", 180) == MARKER
    print(f"\nrunpod up, container start excluded: first {first_up:.1f}s, second {second_up:.1f}s")
    print(
        f"at the resume, the start command's up redid: {sorted(changed(booted))}; padlab's: {sorted(changed(again))}"
    )
    print(f"while down: {billed}")
    print(f"autostop: stopped by the pod {stopped_after:.0f}s after `padlab autostop 1m`")
