"""The autostop agent, run in-process against a cloud's strict fake: what the three cloud stop tests share.

The probes, Jupyter and the power-off are the test's (an idle box since ``T0``); the stop
itself is the box's code (stdlib urllib) calling the fake API.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from padlab.box.autostop import activity, agent, stops
from padlab.box.autostop.activity import Signal

T0 = 1_800_000_000.0
IDLE = Signal("jupyter", "last activity", at=T0)


def agent_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str, **parts: Any) -> dict:
    """An agent config that stops with ``action`` after 10 idle minutes; ``calls`` records
    the Jupyter stop and any power-off."""
    monkeypatch.setattr(agent, "TTY_DIR", str(tmp_path / "no-pts"))
    monkeypatch.setattr(activity, "machine_started", lambda: T0 - 86400)
    monkeypatch.setattr(agent, "_started", lambda conf: T0 - 3600)
    monkeypatch.setattr(agent, "jupyter_running", lambda conf: True)
    monkeypatch.setattr(stops, "jupyter_running", lambda conf: True)
    calls: list = []
    monkeypatch.setattr(stops, "stop_jupyter", lambda conf: calls.append("jupyter stopped"))
    monkeypatch.setattr(stops, "power_off", lambda: calls.append("poweroff") or ["poweroff"])
    (tmp_path / "agent").mkdir()
    return {
        "dir": str(tmp_path / "agent"),
        "idle_s": 600,
        "max_uptime_s": None,
        "warn_s": 300,
        "action": action,
        "keep_file": str(tmp_path / "keep-until"),
        **parts,
        "calls": calls,
    }


def key_file(tmp_path: Path, name: str, value: str) -> str:
    """The key padlab sent, where agent_setup keeps it: a file of its own, 0600."""
    path = tmp_path / name
    path.write_text(value + "\n")
    path.chmod(0o600)
    return str(path)


def check(conf: dict, monkeypatch: pytest.MonkeyPatch, now: float, *signals: Signal) -> dict:
    monkeypatch.setattr(agent, "gather", lambda c, s, n: list(signals or (IDLE,)))
    return agent.check(conf, now=now)


def record(conf: dict) -> dict:
    return agent.load_json(os.path.join(conf["dir"], "stopped.json"))
