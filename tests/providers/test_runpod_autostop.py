"""Autostop on RunPod: the agent stops its own pod with the pod-scoped key from PID 1's environment.

The agent's code is the box's (stdlib urllib), against the strict fake API; where neither
systemd nor cron runs (a pod), the agent runs as a loop process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from padlab.box.autostop import agent, agent_setup, runpod_stop
from padlab.profiles import Profile
from padlab.providers.runpod import RunPodProvider
from tests.fakes import MemoryBackend
from tests.fakes.runpod import FakeRunPod
from tests.providers.idle_agent import T0, agent_conf, check, record

KEY = "rpa_AUTOSTOP0123456789"


@pytest.fixture
def fake() -> Iterator[FakeRunPod]:
    with FakeRunPod(api_key=KEY, backend=MemoryBackend(boot_seconds=0.05, stop_seconds=0.05)) as fake:
        yield fake


@pytest.fixture
def provider(home: Path, fake: FakeRunPod, ssh_key: Path, monkeypatch: pytest.MonkeyPatch) -> RunPodProvider:
    monkeypatch.setenv("RUNPOD_API_KEY", KEY)
    options = {"api_url": fake.url, "machine_type": "NVIDIA A40"}
    return RunPodProvider(Profile(name="pod", provider="runpod", options=options).validate())


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: RunPodProvider, fake: FakeRunPod) -> dict:
    """An agent config for the pod the client just made; PID 1's environment is the pod's as RunPod sets it."""
    pod = provider.start_machine(print)
    env = fake.backend.machines[str(pod.id)].spec["env"]  # type: ignore[attr-defined]
    environ = tmp_path / "environ"
    environ.write_bytes(b"PATH=/usr/bin\0" + b"".join(f"{k}={v}\0".encode() for k, v in env.items()))
    monkeypatch.setattr(runpod_stop, "ENVIRON", str(environ))
    parts = {"runpod": {"api_url": fake.url}, "pod_id": pod.id, "pod_key": env["RUNPOD_API_KEY"]}
    return agent_conf(tmp_path, monkeypatch, runpod_stop.ACTION, **parts)


def test_idle_pod_stops_itself_with_its_own_key(
    conf: dict, fake: FakeRunPod, provider: RunPodProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod = conf["pod_id"]
    assert check(conf, monkeypatch, T0 + 301)["action_taken"] == "warn"
    assert check(conf, monkeypatch, T0 + 601)["action_taken"] == "stop"
    assert record(conf)["result"] == f"RunPod accepted the stop of pod {pod} (the volume at /workspace stays)"
    assert conf["calls"] == ["jupyter stopped"]  # notebooks saved first; never a power-off
    [call] = [r for r in fake.requests if r.path.endswith("/stop")]
    assert (
        call.path == f"/v1/pods/{pod}/stop" and call.headers["authorization"] == f"Bearer {conf['pod_key']}"
    )
    deadline = time.monotonic() + 10
    while (machine := provider.describe()).state != "off":
        assert time.monotonic() < deadline, machine
        time.sleep(0.05)
    assert provider.stopped_by_box(machine, {"phase": "running"})[1].startswith(  # type: ignore[index]
        "pod stopped outside `padlab down`: by autostop"
    )


def test_a_failed_stop_is_recorded_as_still_billed(
    conf: dict, fake: FakeRunPod, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "environ").write_bytes(
        b"RUNPOD_POD_ID=" + str(conf["pod_id"]).encode() + b"\0RUNPOD_API_KEY=x\0"
    )
    check(conf, monkeypatch, T0 + 301)
    check(conf, monkeypatch, T0 + 601)
    result = record(conf)["result"]
    assert (
        result.startswith("FAILED: RunPod answered HTTP 401 to the stop")
        and "the pod is still billed" in result
    )


def test_where_neither_systemd_nor_cron_runs_the_agent_is_a_loop(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(agent_setup, "has_systemd", lambda: False)
    monkeypatch.setattr(agent_setup, "cron_running", lambda: False)
    monkeypatch.setattr(agent_setup.os, "geteuid", lambda: 0)
    paths = type("P", (), {"system": True})()
    assert agent_setup.scheduler(paths) == "loop"  # type: ignore[arg-type]
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"scheduler": "loop", "dir": str(tmp_path)}))
    runs: list[float] = []

    def watch(conf: dict, clock: object, sleep: object) -> int:
        runs.append(1)
        if len(runs) == 3:  # `padlab autostop off` rewrote the config meanwhile
            config.write_text('{"scheduler": null}')
        return 1

    monkeypatch.setattr(agent, "watch", watch)
    slept: list[float] = []
    assert agent.loop(str(config), clock=lambda: 0.0, sleep=slept.append) == 0
    assert len(runs) == 3 and slept == [agent.CHECK_S] * 3


def test_a_new_program_replaces_the_running_loop(tmp_path: Path) -> None:
    """zipimport keeps the old zip's index: a loop left running would fail its next import, the stop's."""
    runner = tmp_path / "padlab-agent"
    runner.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(600)\n")
    runner.chmod(0o755)
    paths = type(
        "P",
        (),
        {"system": False, "runner": str(runner), "config": str(tmp_path / "c.json"),
         "loop_pid": str(tmp_path / "loop.pid"), "log": str(tmp_path / "agent.log")},
    )()  # fmt: skip
    host = agent_setup.Host(sudo=False)
    pids = []
    try:
        assert agent_setup._loop(host, paths, enabled=True)[0]  # type: ignore[arg-type]
        pids.append(agent_setup._loop_pid(host, paths))  # type: ignore[arg-type]
        assert agent_setup._loop(host, paths, enabled=True) == (  # type: ignore[arg-type]
            False,
            f"a loop process (no systemd or cron here), pid {pids[0]}",
        )
        assert agent_setup._loop(host, paths, enabled=True, restart=True)[0]  # type: ignore[arg-type]
        pids.append(agent_setup._loop_pid(host, paths))  # type: ignore[arg-type]
        assert pids[1] not in (None, pids[0])
        old = Path(f"/proc/{pids[0]}/cmdline")
        assert not old.exists() or not old.read_bytes()  # ended (a zombie at most)
    finally:
        for pid in pids:
            if pid:
                subprocess.run(["kill", str(pid)], check=False)
