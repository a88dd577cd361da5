"""The Lambda fake keeps Lambda's contract: auth, strict bodies, error codes, capacity, the launch rate limit."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes import MemoryBackend
from tests.fakes.lambdacloud import FakeLambda

KEY = "secret_contract-key_0123"
PUBLIC = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheContractTestOnly0000000000000 t@x"


@pytest.fixture
def fake() -> Iterator[FakeLambda]:
    with FakeLambda(api_key=KEY, backend=MemoryBackend(boot_seconds=0.01), launch_interval=60) as fake:
        yield fake


@pytest.fixture
def api(fake: FakeLambda) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=5) as client:
        yield client


def code(resp: httpx.Response) -> str:
    return resp.json()["error"]["code"]


def ready(api: httpx.Client, region: str = "us-east-1") -> None:
    api.post("/ssh-keys", json={"name": "me", "public_key": PUBLIC}).raise_for_status()
    api.post("/filesystems", json={"name": "fs", "region": region}).raise_for_status()


def launch(api: httpx.Client, **extra: object) -> httpx.Response:
    body = {
        "region_name": "us-east-1",
        "instance_type_name": "gpu_1x_a10",
        "ssh_key_names": ["me"],
        "file_system_names": ["fs"],
        "name": "padlab-x",
        **extra,
    }
    return api.post("/instance-operations/launch", json=body)


def test_auth_is_bearer_or_basic_with_the_key_as_user(fake: FakeLambda) -> None:
    basic = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    assert httpx.get(f"{fake.url}/instances", headers={"Authorization": basic}).status_code == 200
    for header in ("Bearer wrong", f"Token {KEY}", ""):
        resp = httpx.get(f"{fake.url}/instances", headers={"Authorization": header})
        assert resp.status_code == 401 and code(resp) == "global/invalid-api-key"


def test_unknown_fields_and_bad_names_are_invalid_parameters(api: httpx.Client) -> None:
    ready(api)
    resp = launch(api, quantity=1)  # in older docs; not in the current document
    assert resp.status_code == 400 and code(resp) == "global/invalid-parameters"
    bad = api.post("/filesystems", json={"name": "1-starts-with-a-digit", "region": "us-east-1"})
    assert bad.status_code == 400 and code(bad) == "global/invalid-parameters"
    rule = {"protocol": "tcp", "source_network": "0.0.0.0/0", "description": "no ports"}
    assert code(api.put("/firewall-rules", json={"data": [rule]})) == "global/invalid-parameters"


def test_capacity_region_and_rate_limit(fake: FakeLambda, api: httpx.Client) -> None:
    ready(api, region="us-west-1")
    wrong = launch(api)
    assert code(wrong) == "instance-operations/launch/file-system-in-wrong-region"
    fake.capacity["gpu_1x_a10"] = {"us-east-1"}
    full = launch(api, region_name="us-west-1")
    assert full.status_code == 400 and code(full) == "instance-operations/launch/insufficient-capacity"
    types = api.get("/instance-types").json()["data"]
    assert [r["name"] for r in types["gpu_1x_a10"]["regions_with_capacity_available"]] == ["us-east-1"]
    fake.capacity["gpu_1x_a10"] = {"us-west-1"}
    assert launch(api, region_name="us-west-1").status_code == 200
    limited = launch(api, region_name="us-west-1")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


def test_terminate_leaves_the_filesystem_which_cannot_be_deleted_while_in_use(api: httpx.Client) -> None:
    ready(api)
    [instance] = launch(api).json()["data"]["instance_ids"]
    [fs] = api.get("/file-systems").json()["data"]
    assert fs["mount_point"] == "/lambda/nfs/fs" and fs["is_in_use"]
    assert code(api.delete(f"/filesystems/{fs['id']}")) == "filesystems/in-use"
    done = api.post("/instance-operations/terminate", json={"instance_ids": [instance]}).json()
    assert [i["id"] for i in done["data"]["terminated_instances"]] == [instance]
    for _ in range(200):
        if api.get(f"/instances/{instance}").status_code == 404:
            break
        time.sleep(0.01)
    assert code(api.get(f"/instances/{instance}")) == "global/object-does-not-exist"
    assert api.get("/file-systems").json()["data"][0]["is_in_use"] is False
    assert api.delete(f"/filesystems/{fs['id']}").json() == {"data": {"deleted_ids": [fs["id"]]}}
