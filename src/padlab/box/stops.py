"""What an autostop stop can do, in one table: each action's words, here for the box and the client alike.

The agent (agent.py) warns with ``warning``, logs and shows ``status``; the client's
confirmations (padlab.autostop.describe_policy) say ``verb``. Standard library only,
like the rest of the box program, so the client imports it cheaply.
"""

from __future__ import annotations


class Stop:
    """One stop action and how each side words it."""

    __slots__ = ("name", "verb", "warning", "status")

    def __init__(self, name: str, verb: str, warning: str, status: str) -> None:
        self.name = name
        self.verb = verb  # client: "autostop <verb> after 45 min idle"
        self.warning = warning  # terminals: "padlab autostop: <warning> in 5 min (...)"
        self.status = status  # padlab-keep, status: "idle 12 min, <status> in 33 min"


STOPS = {
    stop.name: stop
    for stop in (
        Stop("service", "stops Jupyter", "the Jupyter service stops", "stops"),
        Stop("poweroff", "powers the machine off", "this machine powers off", "powers off"),
        Stop(
            "do-snapshot-destroy",
            "snapshots and deletes the droplet",
            "this droplet is snapshotted and deleted",
            "snapshots and deletes the droplet",
        ),
    )
}
