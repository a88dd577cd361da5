"""Entry point on the box: one JSON request in, one JSON report out (stdout)."""

from __future__ import annotations

import json
import sys

from . import autostop_actions, bootstrap, lock
from .report import BoxError, Report

ACTIONS = {
    "up": lambda req, program: bootstrap.up(req, program),
    "down": lambda req, program: bootstrap.down(req),
    "status": lambda req, program: bootstrap.status(req),
    "passwd": lambda req, program: bootstrap.passwd(req),
    "autostop": lambda req, program: autostop_actions.apply(req, program),
    "keep": lambda req, program: autostop_actions.keep(req),
    "logs": lambda req, program: autostop_actions.logs(req),
}


def run(req: dict, program: bytes) -> int:
    """Dispatch and print the report; every failure becomes {"ok": false, ...} with a fix."""
    try:
        action = ACTIONS[req["action"]]
        if req["action"] == "status":
            out = action(req, program)
        else:
            with lock.held(req.get("name", "padlab"), Report().stage):
                out = action(req, program)
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
