"""The RunPod fake keeps to RunPod's published definition: fields, auth, the pod key's scope, stop/resume."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes import MemoryBackend
from tests.fakes.runpod import FakeRunPod

KEY = "rpa_CONTRACT0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def fake() -> Iterator[FakeRunPod]:
    with FakeRunPod(api_key=KEY, backend=MemoryBackend(boot_seconds=0.05, stop_seconds=0.05)) as fake:
        yield fake


def pod_body(volume: str, **extra: object) -> dict:
    return {
        "name": "padlab-x",
        "imageName": "runpod/pytorch:2.8.0-py3.11-cuda12.8.1",
        "gpuTypeIds": ["NVIDIA A40"],
        "gpuCount": 1,
        "networkVolumeId": volume,
        "ports": ["22/tcp", "8888/tcp"],
        **extra,
    }


def volume(fake: FakeRunPod) -> str:
    body = {"name": "padlab-x", "size": 20, "dataCenterId": "EU-RO-1"}
    answer = httpx.post(f"{fake.url}/networkvolumes", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def running(fake: FakeRunPod, pod: str) -> dict:
    deadline = time.monotonic() + 5
    while True:
        got = httpx.get(f"{fake.url}/pods/{pod}", headers=AUTH).json()
        if got["publicIp"] or time.monotonic() > deadline:
            return dict(got)
        time.sleep(0.02)


def test_unknown_fields_bad_types_and_bad_auth_are_refused(fake: FakeRunPod) -> None:
    vol = volume(fake)
    unknown = httpx.post(f"{fake.url}/pods", json=pod_body(vol, sshKey="x"), headers=AUTH)
    assert unknown.status_code == 400 and "sshKey" in unknown.json()["error"]
    bad = httpx.post(f"{fake.url}/pods", json=pod_body(vol, gpuCount=0), headers=AUTH)
    assert bad.status_code == 400 and "gpuCount" in bad.json()["error"]
    query = httpx.get(f"{fake.url}/pods", params={"label": "x"}, headers=AUTH)
    assert query.status_code == 400
    assert httpx.get(f"{fake.url}/pods", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(f"{fake.url}/pods", headers={"Authorization": KEY}).status_code == 401
    missing = httpx.post(f"{fake.url}/networkvolumes", json={"name": "v", "size": 5}, headers=AUTH)
    assert missing.status_code == 400 and "dataCenterId" in missing.json()["error"]


def test_ports_are_mapped_once_running_and_the_pod_key_reaches_only_its_pod(fake: FakeRunPod) -> None:
    vol = volume(fake)
    created = httpx.post(f"{fake.url}/pods", json=pod_body(vol), headers=AUTH)
    assert created.status_code == 201
    pod = created.json()
    assert pod["publicIp"] is None and pod["portMappings"] == {}  # initializing
    pod = running(fake, pod["id"])
    assert pod["portMappings"] == {"22": 10022, "8888": 18888} and pod["desiredStatus"] == "RUNNING"
    spec = fake.backend.machines[pod["id"]].spec  # type: ignore[attr-defined]
    assert spec["volumes"] == {vol: "/workspace"} and spec["env"]["RUNPOD_POD_ID"] == pod["id"]
    own = {"Authorization": "Bearer " + spec["env"]["RUNPOD_API_KEY"]}
    assert httpx.get(f"{fake.url}/pods", headers=own).status_code == 403
    assert httpx.delete(f"{fake.url}/pods/{pod['id']}", headers=own).status_code == 403
    stopped = httpx.post(f"{fake.url}/pods/{pod['id']}/stop", headers=own)
    assert stopped.status_code == 200 and stopped.json()["desiredStatus"] == "EXITED"


def test_a_resume_whose_host_lost_its_gpus_has_none(fake: FakeRunPod) -> None:
    vol = volume(fake)
    pod = httpx.post(f"{fake.url}/pods", json=pod_body(vol), headers=AUTH).json()
    httpx.post(f"{fake.url}/pods/{pod['id']}/stop", headers=AUTH)
    again = httpx.post(f"{fake.url}/pods/{pod['id']}/start", headers=AUTH).json()
    assert again["gpu"]["count"] == 1  # its GPUs were still free
    httpx.post(f"{fake.url}/pods/{pod['id']}/stop", headers=AUTH)
    fake.take_gpus(pod["id"])
    again = httpx.post(f"{fake.url}/pods/{pod['id']}/start", headers=AUTH).json()
    assert again["gpu"]["count"] == 0 and again["desiredStatus"] == "RUNNING"
    # The volume cannot go while a pod uses it; the pod can.
    assert httpx.delete(f"{fake.url}/networkvolumes/{vol}", headers=AUTH).status_code == 400
    assert httpx.delete(f"{fake.url}/pods/{pod['id']}", headers=AUTH).status_code == 204
    assert httpx.get(f"{fake.url}/pods/{pod['id']}", headers=AUTH).status_code == 404


def test_no_capacity_is_refused(fake: FakeRunPod) -> None:
    vol = volume(fake)
    fake.capacity["NVIDIA A40"] = {"US-TX-3"}  # not in the volume's data center
    answer = httpx.post(f"{fake.url}/pods", json=pod_body(vol), headers=AUTH)
    assert answer.status_code == 400 and "no longer any instances available" in answer.json()["error"]


# -- the v2 GPU catalog (api-reference-v2/openapi.json: listGpuTypes) ----------------------------

CATALOG = "/v2/catalog/gpus"
GPU_FIELDS = {"id", "name", "pool", "manufacturer", "memory", "secure", "community", "price", "maxCount"}


def origin(fake: FakeRunPod) -> str:
    return fake.url.removesuffix("/v1")


def test_the_catalog_lists_gpu_types_with_availability_only_when_asked(fake: FakeRunPod) -> None:
    plain = httpx.get(origin(fake) + CATALOG, headers=AUTH)
    assert plain.status_code == 200
    gpus = plain.json()["gpus"]
    assert gpus and all(set(g) == GPU_FIELDS for g in gpus)
    assert all(set(g["price"]) >= {"secure", "community"} for g in gpus)
    fake.capacity["NVIDIA A40"] = set()
    query = {"include": "AVAILABILITY", "product": "POD", "cloud": "SECURE", "count": 1}
    rich = {g["id"]: g for g in httpx.get(origin(fake) + CATALOG, params=query, headers=AUTH).json()["gpus"]}
    assert rich["NVIDIA A40"]["availability"] == "NONE" and "dataCenters" not in rich["NVIDIA A40"]
    assert {dc["id"] for dc in rich["NVIDIA RTX A6000"]["dataCenters"]} == set(
        fake.capacity["NVIDIA RTX A6000"]
    )


def test_the_catalog_refuses_bad_queries_and_keys_in_v2s_error_shape(fake: FakeRunPod) -> None:
    url = origin(fake) + CATALOG
    for params in ({"include": "AVAILABILITY"}, {"cloud": "ALL"}, {"count": 0}, {"gpuTypeId": "NVIDIA A40"}):
        bad = httpx.get(url, params=params, headers=AUTH)
        assert bad.status_code == 400 and set(bad.json()) == {"title", "status", "detail", "errors"}, params
    missing = httpx.get(url)
    assert missing.status_code == 401 and missing.json() == {
        "title": "Unauthorized",
        "status": 401,
        "detail": "missing bearer token",
    }
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(origin(fake) + "/v2/pods", headers=AUTH).status_code == 404
