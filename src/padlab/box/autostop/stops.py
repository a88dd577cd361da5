"""What an autostop stop can do, in one table: each action's words and its function.

The agent (agent.py) runs ``run``, warns with ``warning`` and shows ``status``;
the client's confirmations (padlab.autostop.describe_policy) say ``verb``, and
padlab.registry names each provider's actions by these keys. Standard library
only, like the rest of the box program, so the client imports it cheaply.

A new stop action is one function ``run(conf, record, save)`` (it acts and sets
``record["result"]``; ``save()`` writes the record between slow steps) and one
entry in STOPS.
"""

from __future__ import annotations

import os
import subprocess
from typing import Callable

from . import do_stop, lambda_stop, runpod_stop


class Stop:
    """One stop action: how each side words it, and what the agent does."""

    __slots__ = (
        "name",
        "verb",
        "warning",
        "status",
        "alert",
        "run",
        "jupyter_only",
        "stepwise",
        "while_failed",
        "intent",
    )

    def __init__(
        self,
        name: str,
        verb: str,
        warning: str,
        status: str,
        alert: str,
        run: Callable[[dict, dict, Callable[[], None]], None],
        jupyter_only: bool = False,
        stepwise: bool = False,
        while_failed: str = "",
        intent: str = "",
    ) -> None:
        self.name = name
        self.verb = verb  # client: "autostop <verb> after 45 min idle"
        self.warning = warning  # terminals: "padlab autostop: <warning> in 5 min (...)"
        self.status = status  # padlab-keep, status: "idle 12 min, <status> in 33 min"
        self.alert = alert  # the agent's alert as it acts: "<alert>: idle for 1 h"
        self.run = run
        # Stops only Jupyter: nothing to do when it is not running; the hard cap counts Jupyter's uptime.
        self.jupyter_only = jupyter_only
        # Takes several checks, resumed from the stop record (do_stop.py), instead of one act.
        self.stepwise = stepwise
        self.while_failed = while_failed  # what a failure leaves the user with, for the record
        # The stop record's result before the act ("%s": the clock), kept when the act ends this program.
        self.intent = intent


def jupyter_running(conf: dict) -> bool:
    return jupyter_pid(conf) is not None


class _Reader:
    """The one Host method read_pid needs, without sudo: the agent runs as the files' owner or root."""

    def read(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError:
            return None


def layout(conf: dict):
    from ..service import Layout

    box = conf["layout"]
    return Layout(box["name"], box["prefix"], box["etc"], box["user"], bool(box["system"]))


def jupyter_pid(conf: dict) -> int | None:
    from ..service import read_pid

    return read_pid(_Reader(), layout(conf))


def stop_jupyter(conf: dict) -> None:
    """Stop (not disable) the service: a reboot or `padlab up` brings Jupyter back."""
    from ..service import stop as stop_service
    from ..system import Host

    stop_service(Host(sudo=False), layout(conf), conf["service_kind"], disable=False)


def power_off() -> list:
    """The OS power-off; clouds set up to stop (not terminate) on it end compute billing."""
    from ..system import has_systemd
    from .activity import SYSTEM_PATH

    argv = ["systemctl", "poweroff"] if has_systemd() else ["shutdown", "-h", "now"]
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":" + SYSTEM_PATH)
    subprocess.run(argv, check=True, capture_output=True, timeout=60, env=env)
    return argv


def _service(conf: dict, record: dict, save: Callable[[], None]) -> None:
    stop_jupyter(conf)
    record["result"] = "Jupyter stopped"


def _poweroff(conf: dict, record: dict, save: Callable[[], None]) -> None:
    """The record already says "power-off requested at ..." (the intent): the shutdown may end the
    agent inside power_off(); what is added after it returns is the command, for the log."""
    record["result"] += ": " + " ".join(power_off())


def _droplet(conf: dict, record: dict, save: Callable[[], None]) -> None:
    """One step of snapshot, verify, delete (do_stop.advance); Jupyter stops and disks sync first."""

    def prepare() -> None:
        if jupyter_running(conf):
            stop_jupyter(conf)
        do_stop.sync()

    do_stop.advance(conf, record, prepare, save)


def _terminate(conf: dict, record: dict, save: Callable[[], None]) -> None:
    """Lambda: Jupyter stops and disks sync, then the instance is terminated (lambda_stop.py)."""
    if jupyter_running(conf):
        stop_jupyter(conf)
    lambda_stop.sync()
    record["result"] = lambda_stop.terminate(conf["lambda"])


def _pod_stop(conf: dict, record: dict, save: Callable[[], None]) -> None:
    """RunPod: Jupyter stops and disks sync, then the API's stop with the pod's own key (runpod_stop.py)."""
    if jupyter_running(conf):
        stop_jupyter(conf)
    runpod_stop.sync()
    record["result"] = runpod_stop.stop(conf.get("runpod") or {})


STOPS = {
    stop.name: stop
    for stop in (
        Stop(
            "service",
            "stops Jupyter",
            "the Jupyter service stops",
            "stops",
            "Jupyter is being stopped",
            _service,
            jupyter_only=True,
            intent="Jupyter stop requested at %s",
        ),
        Stop(
            "poweroff",
            "powers the machine off",
            "this machine powers off",
            "powers off",
            "the machine is powering off",
            _poweroff,
            intent="power-off requested at %s",
        ),
        Stop(
            do_stop.ACTION,
            "snapshots and deletes the droplet",
            "this droplet is snapshotted and deleted",
            "snapshots and deletes the droplet",
            "the droplet is being snapshotted and deleted",
            _droplet,
            stepwise=True,
            while_failed=do_stop.BILLED,
        ),
        Stop(
            lambda_stop.ACTION,
            "terminates the instance (the filesystem stays)",
            "this instance is terminated (your files stay on the filesystem)",
            "terminates the instance",
            "the instance is being terminated",
            _terminate,
            while_failed=lambda_stop.BILLED,
        ),
        Stop(
            runpod_stop.ACTION,
            "stops the pod (the volume stays)",
            "this pod is stopped (your files stay on the volume)",
            "stops the pod",
            "the pod is being stopped",
            _pod_stop,
            while_failed=runpod_stop.BILLED,
        ),
    )
}
