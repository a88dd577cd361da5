"""The agent's own alerts and the budget deadline, with a driven clock and a local ntfy endpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from padlab.box.autostop import agent, alerts, stops
from padlab.box.autostop.activity import Signal
from tests.fakes.push_endpoints import FakeNtfy
from tests.test_autostop_agent import T0, conf, run  # noqa: F401  (the agent fixture)


@pytest.fixture
def ntfy(conf: dict, tmp_path: Path):  # noqa: F811
    with FakeNtfy() as server:
        url_file = tmp_path / "alert-url"
        url_file.write_text(server.topic_url() + "\n")
        conf["alert"] = {"url_file": str(url_file)}
        conf["layout"] = {"name": "gpu"}
        yield server


def test_the_budget_deadline_stops_a_busy_held_box(conf: dict, ntfy: FakeNtfy, monkeypatch) -> None:  # noqa: F811
    Path(conf["keep_file"]).write_text(f"{T0 + 86400:.0f}\n")  # a hold does not outlast the money
    conf["deadline_at"] = T0 + 1000
    conf["deadline_why"] = "the monthly budget for all profiles runs out ($1.00 left at $3.60/h)"
    busy = Signal("kernel", "busy (train.ipynb)", active=True)
    assert run(conf, monkeypatch, T0 + 600, busy)["stop_at"] == T0 + 1000
    assert run(conf, monkeypatch, T0 + 700, busy)["action_taken"] == "warn"
    assert "budget" in (conf["ttys"] / "0").read_text()
    stopped = run(conf, monkeypatch, T0 + 1001, busy)
    assert stopped["action_taken"] == "stop" and conf["calls"] == ["poweroff"]
    [msg] = ntfy.wait(1)
    assert msg.headers["title"] == "padlab gpu: stopping"
    assert msg.body.decode().startswith("the machine is powering off: the monthly budget")
    record = agent.load_json(os.path.join(conf["dir"], "stopped.json"))
    assert record["reason"].startswith("the monthly budget")


def test_a_failed_stop_is_alerted_once(conf: dict, ntfy: FakeNtfy, monkeypatch) -> None:  # noqa: F811
    def refuse() -> list:
        raise OSError("permission denied")

    monkeypatch.setattr(stops, "power_off", refuse)
    last = Signal("jupyter", "last activity", at=T0)
    run(conf, monkeypatch, T0 + 400, last)
    run(conf, monkeypatch, T0 + 700, last)
    received = ntfy.wait(2)
    assert [m.headers["title"] for m in received] == ["padlab gpu: stopping", "padlab gpu: stop FAILED"]
    assert "permission denied" in received[1].body.decode()
    run(conf, monkeypatch, T0 + 1100, last)  # retried after RESTOP_AFTER, failed again: no new alert
    assert len(ntfy.received) == 2


def test_long_uptime_and_eighty_percent_alerts_go_once(conf: dict, ntfy: FakeNtfy, monkeypatch) -> None:  # noqa: F811
    conf["idle_s"] = None
    conf["alert"]["after_s"] = 3600  # the machine booted at T0 - 86400
    conf["budget_warn_at"] = T0 + 120
    conf["budget_warn_text"] = "80% of gpu's monthly budget ($10.00) is spent"
    busy = Signal("kernel", "busy", active=True)
    run(conf, monkeypatch, T0, busy)
    [uptime] = ntfy.wait(1)
    assert uptime.headers["title"] == "padlab gpu: up 24.0 h" and "threshold is 1.0 h" in uptime.body.decode()
    run(conf, monkeypatch, T0 + 60, busy)
    run(conf, monkeypatch, T0 + 180, busy)
    assert [m.headers["title"] for m in ntfy.wait(2)][1] == "padlab gpu: budget"
    run(conf, monkeypatch, T0 + 240, busy)
    assert len(ntfy.received) == 2


def test_no_topic_no_alert(conf: dict, monkeypatch) -> None:  # noqa: F811
    assert alerts.topic_url(conf) == ""
    last = Signal("jupyter", "last activity", at=T0)
    run(conf, monkeypatch, T0 + 400, last)
    assert run(conf, monkeypatch, T0 + 700, last)["action_taken"] == "stop"


def test_an_unreachable_topic_is_logged_and_the_stop_goes_on(conf: dict, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    url_file = tmp_path / "alert-url"
    url_file.write_text("http://127.0.0.1:9/padlab-nobody-listens\n")
    conf["alert"] = {"url_file": str(url_file)}
    conf["layout"] = {"name": "gpu"}
    last = Signal("jupyter", "last activity", at=T0)
    run(conf, monkeypatch, T0 + 400, last)
    assert run(conf, monkeypatch, T0 + 700, last)["action_taken"] == "stop"
    assert conf["calls"] == ["poweroff"]
    assert "alert FAILED" in Path(conf["dir"], "agent.log").read_text()
