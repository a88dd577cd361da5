"""Entry point on the box: one JSON request in, one JSON report out (stdout)."""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any, Callable

from . import lock, request
from .context import Context
from .report import BoxError


class Action:
    """A box action: its module and function, whether it waits for the box's lock, whether it needs sudo
    first, and what it starts before its module is imported (``early``: its result is ``ctx.early``).

    Named, not imported: the program is compiled from its zip on every run, so a no-op `up`
    imports only what it uses (the agent's modules alone take ~50 ms to compile).
    """

    __slots__ = ("module", "function", "locked", "sudo", "early")

    def __init__(self, where: str, locked: bool = True, sudo: bool = True, early: str | None = None) -> None:
        self.module, self.function = where.split(":")
        self.locked = locked
        self.sudo = sudo
        self.early = early

    def run(self, ctx: Context) -> None:
        if self.early:  # what it starts runs while the action's own module is imported
            ctx.early = _function(*self.early.split(":"))(ctx)
        _function(self.module, self.function)(ctx)


def _function(module: str, function: str) -> Callable[[Context], Any]:
    return getattr(importlib.import_module("." + module, __package__), function)


# A new action: its function (taking the Context, filling ctx.report) and one entry here.
ACTIONS = {
    # Checks sudo itself, after its no-op answer (bootstrap.up); the fingerprint's commands start first.
    "up": Action("setup.bootstrap:up", sudo=False, early="setup.fingerprint:start"),
    "down": Action("setup.bootstrap:down"),
    "status": Action("setup.bootstrap:status", locked=False, sudo=False),
    "passwd": Action("setup.bootstrap:passwd"),
    "autostop": Action("autostop.autostop_actions:apply"),
    "keep": Action("autostop.autostop_actions:keep"),
    "logs": Action("autostop.autostop_actions:logs", sudo=False),
    "kernels": Action("kernels.kernel_actions:listing", locked=False, sudo=False),
    "kernel-create": Action("kernels.kernel_actions:create"),
    # Unlocked: a download is followed for hours, and `up` must not wait for it.
    "get": Action("files.files:get", locked=False, sudo=False),
    "paths": Action("files.files:paths", locked=False, sudo=False),
}


def dispatch(raw: dict, program: bytes) -> dict:
    """Check the request once, open the action's context, run it under the lock when it changes things."""
    req = request.parse(raw)
    action = ACTIONS.get(req["action"])
    if action is None:
        raise BoxError(
            "unknown box action %r" % req["action"],
            "padlab and its box program disagree: this is a bug in padlab, please report it",
            code="bad_request",
        )
    ctx = Context(req, program)
    if not action.locked:
        action.run(ctx)
        return ctx.report.as_dict()
    with lock.held(req["name"], ctx.report.stage, lock.directory(req)):
        if action.sudo:
            ctx.host.check_sudo()
        action.run(ctx)
    return ctx.report.as_dict()


def run(req: dict, program: bytes) -> int:
    """Dispatch and print the report; every failure becomes {"ok": false, ...} with a fix."""
    try:
        out = dispatch(req, program)
        code = 0
    except BoxError as exc:
        out = {"ok": False, "error": exc.message, "fix": exc.fix, "code": exc.code}
        code = 1
    except KeyboardInterrupt:
        out = {
            "ok": False,
            "error": "interrupted",
            "fix": "run the same command again",
            "code": "interrupted",
        }
        code = 130
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(run(json.load(sys.stdin), b""))
