"""The autostop agent's logic with a driven clock: what counts as use, when it warns, when it stops."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

import pytest

from padlab.box.autostop import activity, agent, stops
from padlab.box.autostop.activity import Signal
from padlab.box.timefmt import MAX_KEEP_S, format_duration, parse_duration

T0 = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45m", 2700), ("2h", 7200), ("1h30m", 5400), ("90", 5400), ("30s", 30), ("1.5h", 5400), ("off", None)],
)
def test_durations(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 parsecs", "-3m", "m", "inf", "nan", "infh", "nanm"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="e.g. 45m"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["99999999999d", "9" * 400 + "h", "367d", "999999999"])
def test_durations_are_bounded(text: str) -> None:
    with pytest.raises(ValueError, match="at most 366 d"):
        parse_duration(text)
    with pytest.raises(ValueError, match="a keep hold is at most 7 d"):
        parse_duration("8d", MAX_KEEP_S, "a keep hold")
    assert parse_duration("7d", MAX_KEEP_S) == MAX_KEEP_S


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
    monkeypatch.setattr(stops, "power_off", lambda: calls.append("poweroff") or ["poweroff"])
    monkeypatch.setattr(stops, "stop_jupyter", lambda conf: calls.append("service"))
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
    # The session ended some time between the two checks: the clock starts at the later one, never early.
    assert after["idle_since"] == T0 + 560 and after["stop_at"] == T0 + 1160
    assert after["last_activity"].startswith("in use: until")
    assert run(conf, monkeypatch, T0 + 620, last)["idle_since"] == T0 + 560
    assert run(conf, monkeypatch, T0 + 1101, last)["action_taken"] == "warn"  # a fresh warning first
    assert conf["calls"] == []


def follow(conf: dict, monkeypatch: pytest.MonkeyPatch, now: float, until: float, *signals: Signal) -> list:
    """Checks at the moments the agent itself asks for, as its timer and watch() run them."""
    seen = []
    while now <= until:
        decision = run(conf, monkeypatch, now, *signals)
        seen.append((now, decision["action_taken"]))
        if decision["action_taken"] == "stop":
            break
        assert now < decision["next_check"] <= now + agent.CHECK_S
        now = decision["next_check"]
    return seen


def test_warning_and_stop_come_at_their_moment(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not at the next tick: the check before a moment wakes the agent for it, to the second."""
    seen = follow(conf, monkeypatch, T0 + 7, T0 + 2000, Signal("jupyter", "last activity", at=T0))
    acted = [(at - T0, action) for at, action in seen if action]
    assert acted == [(300, "warn"), (600, "stop")]
    assert len(seen) < 600 / agent.CHECK_S + 4  # the tick, plus the two moments


def test_a_late_warning_still_gives_notice(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hold released long after the limit: warned at once, stopped NOTICE_S later, not at the next tick."""
    Path(conf["keep_file"]).write_text(f"{T0 + 3600:.0f}\n")
    last = Signal("jupyter", "last activity", at=T0)
    assert run(conf, monkeypatch, T0 + 900, last)["action_taken"] is None
    Path(conf["keep_file"]).write_text("0\n")
    seen = follow(conf, monkeypatch, T0 + 910, T0 + 2000, last)
    acted = [(at - T0, action) for at, action in seen if action]
    assert acted == [(910, "warn"), (910 + agent.NOTICE_S, "stop")]


@pytest.mark.parametrize("raw", ["inf", "nan", "-inf", "1e400", "99999999999999999", "soon"])
def test_a_bad_hold_on_disk_is_logged_and_ignored(
    conf: dict, monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    """The keep file is the user's: a value the agent cannot use must not stop its checks or the cap."""
    Path(conf["keep_file"]).write_text(raw + "\n")
    conf["max_uptime_s"] = 7200  # the box started at T0 - 3600
    busy = Signal("kernel", "busy (train.ipynb)", active=True)
    assert run(conf, monkeypatch, T0 + 3000, busy)["hold_until"] is None
    seen = follow(conf, monkeypatch, T0 + 3000, T0 + 4000, busy)
    assert [(at - T0, action) for at, action in seen if action] == [(3300, "warn"), (3600, "stop")]
    assert conf["calls"] == ["poweroff"]
    log = Path(conf["dir"], "agent.log").read_text()
    assert f"ignored the hold in {conf['keep_file']} ({raw!r})" in log
    state = agent.load_json(os.path.join(conf["dir"], "state.json"))
    assert "held" not in agent.status_line(state, T0 + 3000)


def test_an_ended_session_stops_the_box_within_a_tick_of_the_limit(
    conf: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end of an ssh login has no timestamp: the stop is at most one tick late, and never early."""
    conf["idle_s"] = 60
    session = Signal("ssh", "session me@pts/0", active=True)
    last = Signal("jupyter", "last activity", at=T0)
    now = T0 + 3
    while now < T0 + 100:  # in use until T0 + 100, checked at the tick
        now = run(conf, monkeypatch, now, last, session)["next_check"]
    seen = follow(conf, monkeypatch, now, now + 600, last)
    stopped = [at for at, action in seen if action == "stop"]
    assert stopped and T0 + 100 + 60 <= stopped[0] <= T0 + 100 + 60 + agent.CHECK_S


class Clock:
    """A driven clock for watch(): sleeping moves it on."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_mosh_client_counts_until_its_last_contact(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """mosh-server says when its client went quiet (30 s late): the idle clock starts there, not later."""
    conf["idle_s"] = 60
    connected = Signal("mosh", "client 198.18.1.2 connected (pts/1)", active=True)
    run(conf, monkeypatch, T0 + 100, connected)
    run(conf, monkeypatch, T0 + 120, connected)
    silent = Signal("mosh", "client silent since 12:00:00 (pts/1)", at=T0 + 105)
    first = run(conf, monkeypatch, T0 + 130, silent)
    assert first["idle_since"] == T0 + 105 and first["stop_at"] == T0 + 165
    assert first["action_taken"] == "warn"
    assert follow(conf, monkeypatch, first["next_check"], T0 + 600, silent)[-1] == (T0 + 165, "stop")
    # With an ssh login too, nothing says when that one ended: the clock starts at the check that saw it.
    run(conf, monkeypatch, T0 + 700, connected, Signal("ssh", "session me@pts/0", active=True))
    assert run(conf, monkeypatch, T0 + 720, silent)["idle_since"] == T0 + 720


def test_watch_waits_for_a_moment_before_the_next_run(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """A timer run checks again when the warning falls due before the timer's next run, then ends."""
    monkeypatch.setattr(agent, "gather", lambda c, s, n: [Signal("jupyter", "last activity", at=T0)])
    conf["scheduler"] = "systemd"
    clock = Clock(T0 + 290)
    assert agent.watch(conf, clock.time, clock.sleep) == 2
    assert clock.sleeps == [10] and agent.load_json(os.path.join(conf["dir"], "state.json"))["warned"]
    clock.now = T0 + 400  # the next run: nothing due before the one after it
    assert agent.watch(conf, clock.time, clock.sleep) == 1 and clock.sleeps == [10]


def test_a_cron_run_keeps_the_tick_until_the_next_minute(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent, "gather", lambda c, s, n: [Signal("ssh", "session me@pts/0", active=True)])
    conf["scheduler"] = "cron"
    clock = Clock(1_800_000_040.0 - 40 + 1)  # one second past a minute, as cron starts it
    assert agent.watch(conf, clock.time, clock.sleep) == 3
    assert clock.sleeps == [agent.CHECK_S] * 2 and clock.now % 60 < 57


def test_one_watch_at_a_time(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    monkeypatch.setattr(agent, "gather", lambda c, s, n: [])
    held = os.open(os.path.join(conf["dir"], "agent.lock"), os.O_WRONLY | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        assert agent.watch(conf, Clock(T0).time) == 0
    finally:
        os.close(held)
    assert agent.watch(conf, Clock(T0).time) == 1


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
    assert activity.keep_until(keep, time.time(), MAX_KEEP_S)[0] > time.time() + 7000
    assert agent.main(["keep", keep, state]) == 0
    assert "autostop has not run a check yet" in capsys.readouterr().out
    assert agent.main(["keep", keep, state, "off"]) == 0
    assert activity.keep_until(keep, time.time(), MAX_KEEP_S)[0] == 0
    assert agent.main(["keep", keep, state, "forever"]) == 2
    assert "cannot read 'forever'" in capsys.readouterr().err
    assert agent.main(["keep", keep, state, "99999999999d"]) == 2
    assert "a padlab-keep hold is at most 7 d" in capsys.readouterr().err
    assert activity.keep_until(keep, time.time(), MAX_KEEP_S) == (0.0, None)


# -- the tables: a new idle signal or stop action is one entry -------------------------------------


def test_a_probe_added_to_the_table_counts_and_gets_its_processes(
    conf: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen_procs: list = []

    def download(seen: activity.Seen) -> list:
        seen_procs.extend(seen.procs)
        return [Signal("download", "curl running", active=True)]

    monkeypatch.setattr(activity, "processes", lambda names: [(42, n, n) for n in names])
    monkeypatch.setattr(activity, "PROBES", (activity.Probe("download", download, ("curl",)),))
    decision = agent.evaluate(conf, {}, T0)
    assert decision["in_use"] and decision["reasons"] == ["download: curl running"]
    assert seen_procs == [(42, "curl", "curl")]


def test_a_stop_added_to_the_table_is_run_and_worded(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    def hibernate(conf: dict, record: dict, save: object) -> None:
        record["result"] = "hibernated"

    table = dict(
        stops.STOPS,
        hibernate=stops.Stop(
            "hibernate", "hibernates", "this box hibernates", "hibernates", "hibernating", hibernate
        ),
    )
    monkeypatch.setattr(agent, "STOPS", table)
    conf["action"] = "hibernate"
    run(conf, monkeypatch, T0 + 400, Signal("jupyter", "last activity", at=T0))
    assert "this box hibernates in" in (conf["ttys"] / "0").read_text()
    run(conf, monkeypatch, T0 + 601, Signal("jupyter", "last activity", at=T0))
    assert agent.load_json(agent.paths(conf)["stopped"])["result"] == "hibernated"


# -- a notebook cannot switch the stops off (issue 16) ----------------------------------------------


def test_a_directory_at_the_keep_file_does_not_stop_the_budget_stop(
    conf: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mkdir run/keep-until` as the Jupyter user: the check once raised there, so nothing ever stopped."""
    Path(conf["keep_file"]).mkdir()
    conf["deadline_at"], conf["deadline_why"] = T0 + 100, "box's monthly budget runs out"
    busy = Signal("kernel", "busy (train.ipynb)", active=True)
    seen = follow(conf, monkeypatch, T0 + 200, T0 + 1000, busy)
    assert [(at - T0, action) for at, action in seen if action] == [
        (200, "warn"),
        (200 + agent.NOTICE_S, "stop"),
    ]
    assert conf["calls"] == ["poweroff"]
    assert (
        f"ignored the hold in {conf['keep_file']}: not a regular file"
        in Path(conf["dir"], "agent.log").read_text()
    )


def probes(monkeypatch: pytest.MonkeyPatch, **table: object) -> None:
    monkeypatch.setattr(activity, "PROBES", tuple(activity.Probe(name, fn) for name, fn in table.items()))  # type: ignore[arg-type]


def broken(seen: activity.Seen) -> list:
    raise ValueError("could not convert string to float: 'soon'")


def test_a_failing_probe_is_a_note_and_the_deadline_still_stops(
    conf: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    probes(monkeypatch, ssh=lambda seen: [Signal("ssh", "session me@pts/0", active=True)], download=broken)
    conf["deadline_at"] = T0 + 100
    first = agent.check(conf, now=T0 + 200)
    assert first["action_taken"] == "warn" and first["in_use"] and first["stop_why"] == "the budget ran out"
    assert "probe: download failed: ValueError: could not convert string to float: 'soon'" in first["notes"]
    assert agent.check(conf, now=T0 + 200 + agent.NOTICE_S)["action_taken"] == "stop"
    assert conf["calls"] == ["poweroff"]


def test_the_uptime_cap_holds_whatever_the_probes_do(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a failure outside the probes (here: deciding itself) leaves the hard stops in force."""
    probes(monkeypatch, download=broken)
    conf["max_uptime_s"] = 7200  # the box started at T0 - 3600
    monkeypatch.setattr(agent, "decide", lambda *a, **k: 1 / 0)
    seen = []
    now = T0 + 3000
    while not seen or seen[-1][1] != "stop":
        decision = agent.check(conf, now=now)
        seen.append((now - T0, decision["action_taken"]))
        now = decision["next_check"]
    assert [s for s in seen if s[1]] == [(3300, "warn"), (3600, "stop")]
    assert "activity unknown: ZeroDivisionError" in Path(conf["dir"], "agent.log").read_text()


def test_a_failing_probe_hides_no_use_and_holds_the_box_no_longer_than_a_limit(
    conf: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A probe that saw use and then fails: the idle clock starts no earlier than the check that saw the
    use (no false stop), and the box still stops one limit after the probe's last good reading."""
    failing = {"now": False}

    def download(seen: activity.Seen) -> list:
        if failing["now"]:
            raise OSError("planted")
        return [Signal("download", "data.tar running (5 bytes so far)", active=True)]

    probes(monkeypatch, download=download)
    agent.check(conf, now=T0 + 500)  # last good reading: in use
    failing["now"] = True
    after = agent.check(conf, now=T0 + 520)
    assert not after["in_use"] and after["idle_since"] >= T0 + 500
    seen = []
    now = after["next_check"]
    while now < T0 + 3000 and (not seen or seen[-1][1] != "stop"):
        decision = agent.check(conf, now=now)
        seen.append((now - T0, decision["action_taken"]))
        now = decision["next_check"]
    stopped = [at for at, action in seen if action == "stop"]
    assert stopped and 500 + 600 <= stopped[0] <= 520 + 600 + agent.CHECK_S


def test_download_jobs_with_planted_values_are_read_without_failing(tmp_path: Path) -> None:
    """job.json and state.json are the Jupyter user's: a non-number is left out, never a crash."""
    import json

    from padlab.box.files import jobs

    for n, state in enumerate(
        [
            {"state": "running", "updated": "soon", "bytes": "lots", "started": [1]},
            {"state": "done", "finished": "yesterday", "updated": T0, "started": "x"},
            {"state": ["done"], "finished": float("nan"), "bytes": True},
            {"state": "failed", "finished": T0 + 10.0, "updated": T0 + 10.0, "started": T0},
        ]
    ):
        job = tmp_path / (f"{n:x}" * 16)[:16]
        job.mkdir()
        (job / "job.json").write_text(json.dumps({"url": f"https://x/{n}", "dest": ["not", "a", "path"]}))
        (job / "state.json").write_text(json.dumps(state).replace("NaN", "1e999"))
    found = activity.downloads(str(tmp_path), T0 + 20)
    assert [s.text() for s in found] == [f"download: download failed at {activity.clock(T0 + 10)}"]
    listed = jobs.all_jobs(str(tmp_path), T0 + 20)
    assert len(listed) == 4 and all(j.get("dest") is None for j in listed)
    assert {j.get("state") for j in listed} == {"interrupted", "done", "failed"}


@pytest.mark.parametrize(
    "answer",
    [
        [1, 2],
        {"kernels": "all", "connections": "many", "last_activity": 12, "started": ["x"]},
        {
            "kernels": [{"id": ["x"]}, "k", {"id": "k1", "execution_state": "busy", "path": 5}],
            "connections": None,
        },
        {"kernels": [], "last_activity": "9999-12-31T23:59:59+00:00", "started": "99999-01-01"},
    ],
)
def test_the_jupyter_extension_answer_is_type_checked(
    monkeypatch: pytest.MonkeyPatch, answer: object
) -> None:
    """The extension's module is the Jupyter user's to replace: what it answers is input, checked."""
    import io
    import json

    class Fake(io.BytesIO):
        def sendall(self, data: bytes) -> None:
            pass

        def recv(self, n: int) -> bytes:
            return self.read(n)

        def __enter__(self) -> Fake:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    body = b"HTTP/1.0 200 OK\r\n\r\n" + json.dumps(answer).encode()

    class Ctx:
        def wrap_socket(self, raw: object, server_hostname: str) -> Fake:
            return Fake(body)

    monkeypatch.setattr(activity.ssl, "create_default_context", lambda cafile: Ctx())
    monkeypatch.setattr(activity.socket, "create_connection", lambda *a, **k: None)
    monkeypatch.setattr("builtins.open", lambda *a, **k: io.StringIO("token"))
    jconf = {"host": "127.0.0.1", "port": 8888, "token_file": "t", "ca": "ca"}
    state: dict = {}
    signals = activity.jupyter(jconf, state, T0, True)
    busy = [s.text() for s in signals if s.active]
    assert all(s.at is None or s.at <= T0 for s in signals)
    if isinstance(answer, list):
        assert [s.detail for s in signals] == ["activity unreadable (the answer is not a JSON object)"]
    if isinstance(answer, dict) and answer.get("connections", 0) is None:
        assert busy == ["kernel: busy (kernel)"]


def test_the_power_off_record_says_requested_before_the_call(
    conf: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shutdown can end the agent inside the call: what is on disk by then already says so."""
    on_disk: list = []

    def power_off() -> list:
        on_disk.append(agent.load_json(agent.paths(conf)["stopped"])["result"])
        raise SystemExit(143)  # the shutdown's SIGTERM ends the agent before the call returns

    monkeypatch.setattr(stops, "power_off", power_off)
    last = Signal("jupyter", "last activity", at=T0)
    run(conf, monkeypatch, T0 + 400, last)
    with pytest.raises(SystemExit):
        run(conf, monkeypatch, T0 + 601, last)
    expected = f"power-off requested at {activity.clock(T0 + 601)}"
    assert on_disk == [expected]
    assert agent.load_json(agent.paths(conf)["stopped"])["result"] == expected


def test_a_power_off_that_fails_is_recorded_as_failed(conf: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    def power_off() -> list:
        raise subprocess.CalledProcessError(1, ["systemctl", "poweroff"])

    monkeypatch.setattr(stops, "power_off", power_off)
    last = Signal("jupyter", "last activity", at=T0)
    run(conf, monkeypatch, T0 + 400, last)
    run(conf, monkeypatch, T0 + 601, last)
    result = agent.load_json(agent.paths(conf)["stopped"])["result"]
    assert result.startswith("FAILED: Command '['systemctl', 'poweroff']' returned non-zero exit status 1")


def test_a_fifo_at_the_pidfile_does_not_hang_the_check(tmp_path: Path) -> None:
    """The run folder is the Jupyter user's: a FIFO where the pidfile goes once made every check wait."""
    import threading

    from padlab.box.service import Layout

    layout = Layout("box", str(tmp_path), str(tmp_path / "etc"), "nobody", False)
    os.makedirs(layout.run_dir)
    os.mkfifo(layout.pidfile)
    conf = {
        "layout": {
            "name": "box",
            "prefix": str(tmp_path),
            "etc": layout.etc,
            "user": "nobody",
            "system": False,
        }
    }
    answer: list = []
    reader = threading.Thread(target=lambda: answer.append(stops.jupyter_pid(conf)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    stuck = not answer
    if stuck:
        with open(layout.pidfile, "w"):  # let the stuck reader go
            pass
    assert not stuck and answer == [None]


def _self_signed(name: str, folder: Path) -> tuple[Path, Path]:
    """A certificate for a public address (not 127.0.0.1) and its key, as an ACME box has."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "203.0.113.7")])
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("203.0.113.7"))]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class Served:
    """A real HTTPS server on loopback that answers like padlab's Jupyter extension. Like tornado
    with a dict of ssl_options, it loads its certificate at each connection (`serve` swaps it)."""

    def __init__(self, cert: tuple[Path, Path]) -> None:
        import socket
        import threading

        self.cert = cert
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        import json
        import ssl

        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.cert[0]), str(self.cert[1]))
            try:
                with ctx.wrap_socket(raw, server_side=True) as tls:
                    tls.settimeout(10)
                    request = tls.recv(65536)
                    self.requests.append(request)
                    body = json.dumps({"kernels": [], "connections": 1}).encode()
                    tls.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + body)
            except OSError:
                continue  # the client refused the certificate

    def close(self) -> None:
        self.sock.close()


def test_the_jupyter_probe_pins_the_certificate_jupyter_serves(tmp_path: Path) -> None:
    """An ACME box's Jupyter serves a public certificate for its public address, which padlab's CA
    did not sign: the probe trusts exactly the certificate in root's file, read again at each check
    (a renewal), and a server with any other gets no token and no reading."""
    import shutil

    (tmp_path / "acme").mkdir(mode=0o755)
    pin = tmp_path / "acme" / "cert.pem"
    first, second = _self_signed("first", tmp_path), _self_signed("second", tmp_path)
    shutil.copy(first[0], pin)
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    padlab_ca, _ = _self_signed("padlab-ca", tmp_path)  # did not sign Jupyter's: not what the probe trusts
    server = Served(first)
    try:
        jconf = {"host": "127.0.0.1", "port": server.port, "token_file": str(token), "pin": str(pin)}
        jconf["ca"] = str(padlab_ca)
        state: dict = {}
        signals = activity.jupyter(jconf, state, T0, True)
        assert [s.text() for s in signals] == ["jupyter: 1 open connection(s)"]
        assert state["jupyter_ok_at"] == T0 and b"padlab-agent s3cret" in server.requests[-1]

        server.cert = second  # a server with another certificate: refused before the token goes out
        count = len(server.requests)
        with pytest.raises(OSError, match="not the one in"):
            activity.fetch_activity(jconf)
        assert all(b"s3cret" not in r for r in server.requests[count:])
        signals = activity.jupyter(jconf, state, T0 + 60, True)
        assert [(s.active, s.at) for s in signals] == [(False, T0)]
        assert "activity unreadable (the certificate Jupyter serves is not the one in" in signals[0].detail

        shutil.copy(second[0], pin)  # the renewal: root's chain file replaced, the next check reads it
        assert activity.fetch_activity(jconf)["connections"] == 1
    finally:
        server.close()


def test_a_pin_the_jupyter_user_could_write_is_not_trusted(tmp_path: Path) -> None:
    """The pin decides what the agent trusts: a file or folder others may change, or a link, is refused."""
    folder = tmp_path / "acme"
    folder.mkdir(mode=0o755)
    cert, _ = _self_signed("c", tmp_path)
    pin = folder / "cert.pem"
    pin.write_bytes(cert.read_bytes())
    assert len(activity.pinned_sha256(str(pin))) == 64
    pin.chmod(0o666)
    with pytest.raises(OSError, match="only root can change"):
        activity.pinned_sha256(str(pin))
    pin.chmod(0o644)
    folder.chmod(0o777)
    with pytest.raises(OSError, match="only root can change"):
        activity.pinned_sha256(str(pin))
    folder.chmod(0o755)
    link = folder / "link.pem"
    link.symlink_to(pin)
    with pytest.raises(OSError):
        activity.pinned_sha256(str(link))
    if os.geteuid() == 0:  # another user's file (the Jupyter user's), mode 0644 or not
        os.chown(pin, 12345, 12345)
        with pytest.raises(OSError, match="only root can change"):
            activity.pinned_sha256(str(pin))


def test_the_agents_unit_never_holds_a_shutdown_for_long(tmp_path: Path) -> None:
    """A check in progress when the machine powers off (its own stop included) is killed 5 s after
    SIGTERM: CI saw a power-off wait systemd's default 90 s on this unit."""
    from padlab.box.autostop.agent_setup import AgentLayout, timer_units
    from padlab.box.service import Layout

    service = timer_units(AgentLayout(Layout("t", str(tmp_path), str(tmp_path / "etc"), "nobody", False)))[0]
    stop = [line.split("=", 1)[1] for line in service.splitlines() if line.startswith("TimeoutStopSec=")]
    assert stop == ["5s"]
