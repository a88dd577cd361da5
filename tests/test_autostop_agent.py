"""The autostop agent's logic with a driven clock: what counts as use, when it warns, when it stops."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import pytest

from padlab.box import activity, agent
from padlab.box.activity import Signal
from padlab.box.timefmt import format_duration, parse_duration

T0 = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45m", 2700), ("2h", 7200), ("1h30m", 5400), ("90", 5400), ("30s", 30), ("1.5h", 5400), ("off", None)],
)
def test_durations(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 parsecs", "-3m", "m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="e.g. 45m"):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (None, 42, 600, 3600, 7500, 200000)] == [
        "off",
        "42 s",
        "10 min",
        "1 h",
        "2 h 5 min",
        "2 d 7 h",
    ]


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """An agent config whose probes the test sets through `signals`; terminals are plain files."""
    ttys = tmp_path / "pts"
    ttys.mkdir()
    (ttys / "0").write_text("")
    (ttys / "7").write_text("")
    monkeypatch.setattr(agent, "TTY_DIR", str(ttys))
    monkeypatch.setattr(activity, "machine_started", lambda: T0 - 86400)
    monkeypatch.setattr(agent, "_started", lambda conf: T0 - 3600)
    monkeypatch.setattr(agent, "jupyter_running", lambda conf: True)
    calls: list = []
    monkeypatch.setattr(agent, "power_off", lambda: calls.append("poweroff") or ["poweroff"])
    monkeypatch.setattr(agent, "stop_jupyter", lambda conf: calls.append("service"))
    state_dir = tmp_path / "agent"
    state_dir.mkdir()
    return {
        "dir": str(state_dir),
        "idle_s": 600,
        "max_uptime_s": None,
        "warn_s": 300,
        "action": "poweroff",
        "keep_file": str(tmp_path / "keep-until"),
        "calls": calls,
        "ttys": ttys,
    }


def run(conf: dict, monkeypatch: pytest.MonkeyPatch, now: float, *signals: Signal) -> dict:
    monkeypatch.setattr(agent, "gather", lambda c, s, n: list(signals))
    return agent.check(conf, now=now)


def test_idle_box_is_warned_then_stopped(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    last = Signal("jupyter", "last activity", at=T0)
    first = run(conf, monkeypatch, T0 + 60, last)
    assert not first["in_use"] and first["stop_at"] == T0 + 600 and first["action_taken"] is None
    assert run(conf, monkeypatch, T0 + 299, last)["action_taken"] is None
    assert run(conf, monkeypatch, T0 + 301, last)["action_taken"] == "warn"
    assert "padlab autostop: this machine powers off in 4 min" in (conf["ttys"] / "7").read_text()
    assert run(conf, monkeypatch, T0 + 540, last)["action_taken"] is None
    assert run(conf, monkeypatch, T0 + 601, last)["action_taken"] == "stop"
    assert conf["calls"] == ["poweroff"]
    stopped = agent.load_json(os.path.join(conf["dir"], "stopped.json"))
    assert stopped["reason"] == "idle for 10 min" and stopped["result"].startswith("power-off requested")
    log = Path(conf["dir"], "agent.log").read_text().splitlines()
    assert any("WARN" in line for line in log) and any(" STOP " in f" {line} " for line in log)
    assert "idle 1 min (latest: jupyter: last activity" in log[0]


def test_no_stop_without_an_earlier_warning(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """A check that finds the stop already due (the box slept) warns first and stops a check later."""
    last = Signal("jupyter", "last activity", at=T0)
    assert run(conf, monkeypatch, T0 + 5000, last)["action_taken"] == "warn"
    assert conf["calls"] == []
    assert run(conf, monkeypatch, T0 + 5060, last)["action_taken"] == "stop"


def test_use_resets_the_clock_and_the_warning(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    last = Signal("jupyter", "last activity", at=T0)
    assert run(conf, monkeypatch, T0 + 400, last)["action_taken"] == "warn"
    busy = run(conf, monkeypatch, T0 + 500, last, Signal("ssh", "session me@pts/0", active=True))
    assert busy["in_use"] and busy["stop_at"] is None and busy["reasons"] == ["ssh: session me@pts/0"]
    after = run(conf, monkeypatch, T0 + 560, last)
    assert after["idle_since"] == T0 + 500 and after["stop_at"] == T0 + 1100
    assert after["last_activity"].startswith("in use: until")
    assert run(conf, monkeypatch, T0 + 1101, last)["action_taken"] == "warn"  # a fresh warning first
    assert conf["calls"] == []


def test_keep_holds_until_its_end(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    Path(conf["keep_file"]).write_text(f"{T0 + 3600:.0f}\n")
    last = Signal("jupyter", "last activity", at=T0)
    held = run(conf, monkeypatch, T0 + 1200, last)
    assert held["hold_until"] == T0 + 3600 and held["stop_at"] == T0 + 3600
    assert run(conf, monkeypatch, T0 + 3000, last)["action_taken"] is None
    assert run(conf, monkeypatch, T0 + 3400, last)["action_taken"] == "warn"
    assert run(conf, monkeypatch, T0 + 3601, last)["action_taken"] == "stop"


def test_hard_cap_stops_a_busy_box(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    conf["max_uptime_s"] = 7200  # the box started at T0 - 3600
    busy = Signal("kernel", "busy (train.ipynb)", active=True)
    first = run(conf, monkeypatch, T0 + 3000, busy)
    assert first["in_use"] and first["stop_why"] == "maximum uptime of 2 h reached"
    assert run(conf, monkeypatch, T0 + 3400, busy)["action_taken"] == "warn"
    text = (conf["ttys"] / "0").read_text()
    assert "maximum uptime of 2 h reached" in text and "padlab-keep" not in text
    assert run(conf, monkeypatch, T0 + 3601, busy)["action_taken"] == "stop"
    assert conf["calls"] == ["poweroff"]


def test_service_action_never_powers_off(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    conf["action"] = "service"
    last = Signal("jupyter", "last activity", at=T0)
    run(conf, monkeypatch, T0 + 400, last)
    assert run(conf, monkeypatch, T0 + 700, last)["action_taken"] == "stop"
    assert conf["calls"] == ["service"]
    monkeypatch.setattr(agent, "jupyter_running", lambda conf: False)
    again = run(conf, monkeypatch, T0 + 800, last)
    assert again["action_taken"] is None and "nothing to stop" in again["notes"][0]
    assert conf["calls"] == ["service"]


def test_failed_stop_is_not_reported_as_success(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> list:
        raise OSError("permission denied")

    monkeypatch.setattr(agent, "power_off", refuse)
    last = Signal("jupyter", "last activity", at=T0)
    run(conf, monkeypatch, T0 + 400, last)
    run(conf, monkeypatch, T0 + 700, last)
    stopped = agent.load_json(os.path.join(conf["dir"], "stopped.json"))
    assert stopped["result"].startswith("FAILED: permission denied")
    assert "FAILED" in Path(conf["dir"], "agent.log").read_text()


def test_status_line(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    decision = run(conf, monkeypatch, T0 + 720, Signal("jupyter", "x", at=T0))
    assert agent.status_line(decision, T0 + 720) == "idle 12 min, powers off in 0 s (idle for 10 min)"
    busy = run(conf, monkeypatch, T0 + 800, Signal("kernel", "busy (train.ipynb)", active=True))
    assert agent.status_line(busy, T0 + 800) == "in use: kernel: busy (train.ipynb)"


def utmp_record(pid: int, line: str, user: str, host: str, sec: int) -> bytes:
    return activity.UTMP_RECORD.pack(
        activity.USER_PROCESS, pid, line.encode(), b"", user.encode(), host.encode(), 0, 0, 0, sec, 0, b""
    )


def test_utmp_and_mosh(tmp_path: Path) -> None:
    path = tmp_path / "utmp"
    dead = struct.pack("<h", 8) + bytes(activity.UTMP_RECORD.size - 2)
    path.write_bytes(
        utmp_record(101, "pts/1", "me", "198.18.1.2 via mosh [101]", int(T0))
        + dead
        + utmp_record(102, "pts/2", "me", "mosh [102]", int(T0) - 100)
    )
    records = activity.utmp_records(str(path))
    assert [r["pid"] for r in records] == [101, 102]
    procs = [(101, "mosh-server", ""), (102, "mosh-server", ""), (5, "bash", "")]
    live, gone = activity.mosh_sessions(procs, records, {}, T0)
    assert live.active and "198.18.1.2 connected" in live.detail
    assert not gone.active and gone.at == T0 - 130


def test_ssh_sessions_need_a_pty() -> None:
    procs = [
        (1, "sshd", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"),
        (2, "sshd", "sshd: padlab [priv]"),
        (3, "sshd", "sshd: padlab@notty"),
        (4, "sshd", "sshd: padlab@pts/3"),
        (5, "sshd-session", "sshd-session: alice@pts/4"),
    ]
    found = [s.detail for s in activity.ssh_sessions(procs)]
    assert found == ["session padlab@pts/3", "session alice@pts/4"]


@pytest.mark.parametrize(("reading", "active"), [("0\n3\n", False), ("0\n87\n", True)])
def test_gpu_through_a_fake_nvidia_smi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reading: str, active: bool
) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\nprintf '{reading}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    (signal,) = activity.gpu(10)
    assert signal.active is active


def test_padlab_keep_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keep, state = str(tmp_path / "keep"), str(tmp_path / "state.json")
    assert agent.main(["keep", keep, state, "2h"]) == 0
    assert activity.keep_until(keep) > time.time() + 7000
    assert agent.main(["keep", keep, state]) == 0
    assert "autostop has not run a check yet" in capsys.readouterr().out
    assert agent.main(["keep", keep, state, "off"]) == 0
    assert activity.keep_until(keep) == 0
    assert agent.main(["keep", keep, state, "forever"]) == 2
    assert "cannot read 'forever'" in capsys.readouterr().err
