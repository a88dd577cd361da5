"""The shared opening of every box action: the checked request, its report, the host and the layout."""

from __future__ import annotations

from . import account
from .report import Report
from .service import Layout
from .system import Host


class Context:
    """What an action starts from; ``__main__.run`` makes one per request, after request.parse()."""

    def __init__(self, req: dict, program: bytes = b"") -> None:
        self.req = req
        self.program = program  # the box program's own zip, copied for the agent (empty in-process)
        self.report = Report()
        self.host = Host(sudo=req["system"])
        self.layout = layout_from(req)
        self.early: object = None  # what the action's early step started (__main__.Action), for the action


def layout_from(req: dict) -> Layout:
    """The layout, with the user Jupyter runs as: never root on a system box (box/account.py)."""
    user = account.resolve(req["user"], req["system"])
    return Layout(req["name"], req["prefix"], req["etc"], user, req["system"])
