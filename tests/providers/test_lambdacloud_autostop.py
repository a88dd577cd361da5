"""Autostop on Lambda: the agent terminates its own instance with the box's key, against the strict fake API.

The agent's code is the box's (stdlib urllib); the client then finds the instance
gone, the filesystem kept, and `up` launches a new instance with it.
"""

from __future__ import annotations

import getpass
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from padlab import workstation
from padlab.box import request
from padlab.box.autostop import agent, agent_setup, lambda_stop
from padlab.box.report import BoxError, Report
from padlab.box.service import Layout
from padlab.box.system import Host
from padlab.profiles import Profile
from padlab.providers import credentials, lambdacloud
from padlab.providers.lambdacloud import LambdaProvider
from tests.fakes import MemoryBackend
from tests.fakes.lambdacloud import FakeLambda
from tests.helpers import one_line_error, padlab
from tests.providers.idle_agent import T0, agent_conf, check, key_file, record

KEY = "secret_padlab-main_0a1b2c"
BOX_KEY = "secret_padlab-box-only_3d4e5f"  # a second key, for the box alone


@pytest.fixture
def fake() -> Iterator[FakeLambda]:
    backend = MemoryBackend(boot_seconds=0.05, stop_seconds=0.05)
    with FakeLambda(api_key=KEY, backend=backend, launch_interval=0) as fake:
        fake.extra_keys = {BOX_KEY}
        yield fake


@pytest.fixture
def provider(home: Path, fake: FakeLambda, ssh_key: Path, monkeypatch: pytest.MonkeyPatch) -> LambdaProvider:
    monkeypatch.setenv("LAMBDA_API_KEY", KEY)
    options = {"api_url": fake.url, "machine_type": "a10"}
    return LambdaProvider(Profile(name="lam", provider="lambda", options=options).validate())


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: LambdaProvider) -> dict:
    """An agent config for the instance the client just launched; probes and Jupyter are the test's."""
    instance = provider.start_machine(print)
    part = {
        "instance_id": instance.id,
        "api_url": provider.options["api_url"],
        "key_file": key_file(tmp_path, "lambda-key", BOX_KEY),
    }
    return agent_conf(tmp_path, monkeypatch, lambda_stop.ACTION, **{"lambda": part})


def terminations(fake: FakeLambda) -> list:
    return [r for r in fake.requests if r.path.endswith("/instance-operations/terminate")]


def test_idle_instance_terminates_itself_and_up_launches_on_the_same_filesystem(
    conf: dict, fake: FakeLambda, provider: LambdaProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = conf["lambda"]["instance_id"]
    assert check(conf, monkeypatch, T0 + 301)["action_taken"] == "warn"
    assert check(conf, monkeypatch, T0 + 601)["action_taken"] == "stop"
    assert (
        record(conf)["result"]
        == f"Lambda accepted the terminate of instance {instance} (the filesystem stays)"
    )
    assert conf["calls"] == ["jupyter stopped"]  # notebooks saved first; never a power-off
    [call] = terminations(fake)
    assert call.headers["authorization"] == f"Bearer {BOX_KEY}" and json.loads(call.body) == {
        "instance_ids": [instance]
    }
    assert BOX_KEY not in "".join(Path(conf["dir"], n).read_text() for n in os.listdir(conf["dir"]))

    deadline = time.monotonic() + 10
    while (machine := provider.describe()).state != "off":
        assert time.monotonic() < deadline, machine
        time.sleep(0.05)
    assert machine.billed_while_down.startswith("filesystem padlab-lam in us-east-1")
    out: dict = {"state": "stopped"}
    workstation.annotate(out, provider.profile, provider, machine, {"phase": "running"})
    assert out["stop_reason"].startswith("instance terminated outside `padlab down`: by autostop")
    again = provider.start_machine(print)
    assert again.id != instance and again.state == "running"


def test_a_refused_terminate_is_recorded_as_still_billed_and_tried_again(
    conf: dict, fake: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.extra_keys = set()  # the box's key was revoked
    check(conf, monkeypatch, T0 + 301)
    check(conf, monkeypatch, T0 + 601)
    result = record(conf)["result"]
    assert result.startswith("FAILED: Lambda answered HTTP 401 to the terminate: global/invalid-api-key")
    assert "the instance is still billed" in result and BOX_KEY not in result
    fake.extra_keys = {BOX_KEY}
    check(conf, monkeypatch, T0 + 601 + agent.RESTOP_AFTER + 1)  # tried again, as a power-off is
    assert record(conf)["result"].startswith("Lambda accepted the terminate")


def test_autostop_without_the_box_key_is_refused_with_how_to_add_it(home: Path) -> None:
    padlab(home, "init", "lam", "--provider", "lambda")
    line = one_line_error(padlab(home, "autostop", "lam", "30m", check=False))
    assert "needs an API key of its own" in line and "padlab login lambda --autostop-token" in line


def test_login_stores_the_box_key_but_not_padlabs_own(home: Path, fake: FakeLambda) -> None:
    env = {"LAMBDA_API_KEY": KEY}
    args = ("login", "lambda", "--autostop-token", "--key-stdin", "--api-url", fake.url)
    refused = padlab(home, *args, input=KEY + "\n", check=False, **env)
    assert "the key padlab uses for up and down" in one_line_error(refused) and KEY not in refused.stderr
    stored = padlab(home, *args, input=BOX_KEY + "\n", **env)
    assert "can do anything on the account" in stored.stdout
    path = home / "credentials" / lambdacloud.AUTOSTOP_CREDENTIAL
    assert path.read_text().strip() == BOX_KEY and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_request_carries_the_stop_and_the_box_keeps_the_key_0600(
    provider: LambdaProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials.store(lambdacloud.AUTOSTOP_CREDENTIAL, BOX_KEY)
    provider.profile.autostop = "45m"
    machine = provider.start_machine(print)
    req = workstation.request_for(provider.profile, provider, "autostop", machine)
    fields = req["autostop"]
    assert fields["action"] == lambda_stop.ACTION and fields["idle_s"] == 2700
    assert fields["lambda"] == {
        "instance_id": machine.id,
        "api_url": provider.options["api_url"],
        "key": BOX_KEY,
    }
    assert "lambda" not in workstation.request_for(provider.profile, provider, "status", machine)["autostop"]

    monkeypatch.setattr(agent_setup, "scheduler", lambda paths: None)  # no crontab or timer from a test
    layout = Layout("lam", str(tmp_path / "box"), str(tmp_path / "etc"), getpass.getuser(), False)
    req = request.parse(dict(req, port=8888, listen="127.0.0.1"))
    agent_setup.install(Host(sudo=False), layout, req, b"", "none", Report())
    paths = agent_setup.AgentLayout(layout)
    key = Path(paths.lambda_key)
    assert key.read_text().strip() == BOX_KEY and stat.S_IMODE(key.stat().st_mode) == 0o600
    config = Path(paths.config).read_text()
    assert BOX_KEY not in config and json.loads(config)["lambda"]["key_file"] == paths.lambda_key

    off = dict(req, autostop=dict(req["autostop"], idle_s=None))
    agent_setup.install(Host(sudo=False), layout, off, b"", "none", Report())
    assert not key.exists()  # autostop off: the key leaves the box
    unsent = dict(
        req, autostop=dict(req["autostop"], **{"lambda": dict(req["autostop"]["lambda"], key=None)})
    )
    with pytest.raises(BoxError, match="needs an API key on the box"):
        agent_setup.install(Host(sudo=False), layout, unsent, b"", "none", Report())
