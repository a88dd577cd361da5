"""Lambda provider against the strict fake API: filesystem, launch by capacity, terminate, what down costs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from padlab import state, workstation
from padlab.errors import PadlabError
from padlab.profiles import Profile
from padlab.providers.lambdacloud import LambdaProvider
from tests.fakes import MemoryBackend
from tests.fakes.lambdacloud import FakeLambda
from tests.helpers import one_line_error, padlab

KEY = "secret_lambda-test-key_0a1b2c3d"


@pytest.fixture
def fake() -> Iterator[FakeLambda]:
    backend = MemoryBackend(boot_seconds=0.05, stop_seconds=0.05)
    with FakeLambda(api_key=KEY, backend=backend, launch_interval=0) as fake:
        yield fake


@pytest.fixture
def provider(home: Path, fake: FakeLambda, ssh_key: Path, monkeypatch: pytest.MonkeyPatch) -> LambdaProvider:
    monkeypatch.setenv("LAMBDA_API_KEY", KEY)
    return make(fake)


def make(fake: FakeLambda, name: str = "lam", **options: object) -> LambdaProvider:
    options = {"api_url": fake.url, "machine_type": "a10,gpu_1x_a100_sxm4", **options}
    return LambdaProvider(Profile(name=name, provider="lambda", options=options).validate())


def launches(fake: FakeLambda) -> list[dict]:
    return [json.loads(r.body) for r in fake.requests if r.path.endswith("/instance-operations/launch")]


def test_up_makes_the_filesystem_and_launches_the_first_type_with_capacity(
    provider: LambdaProvider, fake: FakeLambda
) -> None:
    fake.capacity["gpu_1x_a10"] = {"us-west-1"}  # not in the filesystem's region
    said: list[str] = []
    machine = provider.start_machine(said.append)
    assert machine.state == "running" and machine.host
    [body] = launches(fake)
    assert body["instance_type_name"] == "gpu_1x_a100_sxm4" and body["region_name"] == "us-east-1"
    assert body["file_system_names"] == ["padlab-lam"] and body["name"] == "padlab-lam"
    assert any("launching gpu_1x_a100_sxm4" in line and "$1.29/h" in line for line in said), said
    assert machine.price_per_hour == 1.29
    # padlab's ports are added to the account's rules; the rule that was there stays.
    ports = {(r["protocol"], tuple(r["port_range"])) for r in fake.firewall}
    assert {("tcp", (22, 22)), ("tcp", (8888, 8888)), ("udp", (60001, 60010))} <= ports
    assert ("tcp", (80, 80)) in ports  # http-01, for the box's public certificate (--tls auto)
    assert fake.firewall[0]["description"] == "SSH"


def test_down_terminates_and_up_relaunches_on_the_same_filesystem(
    provider: LambdaProvider, fake: FakeLambda
) -> None:
    first = provider.start_machine(print)
    down = provider.stop(print)
    assert down.state == "off" and down.extra["provider_state"] == "terminated"
    assert down.billed_while_down.startswith("filesystem padlab-lam in us-east-1: ")
    assert down.down_usd_per_hour is not None  # what the ledger counts while down
    headers = {"Authorization": f"Bearer {KEY}"}
    assert httpx.get(f"{fake.url}/instances", headers=headers).json()["data"] == []
    second = provider.start_machine(print)
    assert second.id != first.id and second.state == "running"
    assert [b["file_system_names"] for b in launches(fake)] == [["padlab-lam"], ["padlab-lam"]]
    filesystems = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/filesystems")]
    assert len(filesystems) == 1  # made once, reused
    assert "machine_id" in state.load("lam")["cloud"]


def test_no_capacity_is_one_line_naming_the_alternatives(provider: LambdaProvider, fake: FakeLambda) -> None:
    fake.capacity.update(
        {
            "gpu_1x_a10": {"us-west-1"},
            "gpu_1x_a100_sxm4": set(),
            "gpu_1x_a6000": set(),
            "gpu_1x_h100_pcie": set(),
        }
    )
    fake.capacity["gpu_8x_a100_80gb_sxm4"] = {"us-east-1"}
    with pytest.raises(PadlabError) as caught:
        provider.start_machine(print)
    message = str(caught.value.message)
    assert "\n" not in message
    assert "no capacity for gpu_1x_a10, gpu_1x_a100_sxm4 in us-east-1" in message
    assert "gpu_8x_a100_80gb_sxm4 ($14.32/h)" in message and "gpu_1x_a10 in us-west-1" in message
    assert launches(fake) == []
    # The recovery: capacity comes back, and the same command goes on with the filesystem it made.
    fake.capacity["gpu_1x_a10"] = {"us-east-1"}
    assert provider.start_machine(print).extra["machine_type"] == "gpu_1x_a10"


def test_a_launch_that_loses_the_race_for_capacity_tries_the_next_type(
    provider: LambdaProvider, fake: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = fake.launch

    def taken_once(request):  # type: ignore[no-untyped-def]
        if json.loads(request.body)["instance_type_name"] == "gpu_1x_a10":
            raise fake.fail("instance-operations/launch/insufficient-capacity", "Not enough capacity.")
        return original(request)

    monkeypatch.setattr(fake, "launch", taken_once)
    assert provider.start_machine(print).extra["machine_type"] == "gpu_1x_a100_sxm4"


def test_notebooks_venv_and_state_live_on_the_filesystem(provider: LambdaProvider, fake: FakeLambda) -> None:
    provider.start_machine(print)
    req = workstation.request_for(provider.profile, provider, "status")
    assert req["prefix"] == "/lambda/nfs/padlab-lam/padlab/opt"
    assert req["etc"] == "/lambda/nfs/padlab-lam/padlab/etc"
    assert req["root_dir"] == "/lambda/nfs/padlab-lam/notebooks"
    outside = LambdaProvider(
        Profile(name="lam", provider="lambda", root_dir="/srv/nb", options=provider.options)
    )
    with pytest.raises(PadlabError, match="deletes at every `down`"):
        outside.layout()


def test_a_bad_key_names_where_it_came_from(
    provider: LambdaProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDA_API_KEY", "wrong")
    with pytest.raises(PadlabError, match=r"\$LAMBDA_API_KEY was rejected"):
        make_from(provider).describe()


def make_from(provider: LambdaProvider) -> LambdaProvider:
    return LambdaProvider(provider.profile)


def test_a_rate_limited_launch_waits_its_retry_after(provider: LambdaProvider, fake: FakeLambda) -> None:
    fake.launch_interval = 1.0  # Lambda allows one launch every few seconds
    provider.start_machine(print)
    provider.stop(print)
    assert provider.start_machine(print).state == "running"
    statuses = [r.status for r in fake.requests if r.path.endswith("/instance-operations/launch")]
    assert statuses[0] == 200 and statuses[-1] == 200 and 429 in statuses  # retried, not failed


def test_destroy_terminates_and_never_deletes_the_filesystem(
    provider: LambdaProvider, fake: FakeLambda
) -> None:
    provider.start_machine(print)
    said: list[str] = []
    provider.destroy(said.append)
    assert any(line.startswith("kept the filesystem padlab-lam") for line in said), said
    assert len(fake.filesystem_ids()) == 1 and not [r for r in fake.requests if r.method == "DELETE"]
    assert provider.describe().state == "off"  # the next `up` launches on it again


def test_login_stores_only_a_key_lambda_accepts(home: Path, fake: FakeLambda) -> None:
    args = ("login", "lambda", "--key-stdin", "--api-url", fake.url)
    refused = padlab(home, *args, input="not-the-key\n", check=False)
    assert "rejected" in one_line_error(refused)
    assert "Stored the lambda key" in padlab(home, *args, input=KEY + "\n").stdout
    assert (home / "credentials" / "lambda").read_text().strip() == KEY
