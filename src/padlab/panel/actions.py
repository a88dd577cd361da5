"""What forms and the API do: start and stop in a worker, keep at once; the views they show.

Only workstation and autostop functions the CLI calls are used, so a panel
action is the same action as on the command line, under the same lock.
"""

from __future__ import annotations

from typing import Any

from padlab.errors import PadlabError
from padlab.panel.views import UnknownWorkstation, view

KEEP_DURATION = "2h"
PROGRESSIVE = {"start": "starting", "stop": "stopping"}


def views(panel: Any) -> list[dict[str, Any]]:
    return [view(data, panel.jobs.get(data["name"])) for data in panel.workstations.all()]


def one(panel: Any, name: str) -> dict[str, Any]:
    return view(panel.workstations.status(name), panel.jobs.get(name))


class NeedsPassword(PadlabError):
    """A first start: the Jupyter password must be chosen first (the panel's page asks for it)."""


def start(panel: Any, name: str, password: str | None = None, generated: bool = False) -> Any:
    """`padlab up`: a first start needs the password, typed (checked here) or generated."""
    from padlab import passwords, workstation

    profile = panel.workstations.profile(name)
    if password is not None:
        passwords.check(password)
    elif workstation.needs_password(profile):
        raise NeedsPassword(
            f"{name!r} has no Jupyter password yet",
            f"choose one on its first start: /w/{name}/password (or padlab up {name} --generate-password)",
        )
    panel.workstations.forget(name)
    return panel.jobs.start(
        name, "start", lambda stage: workstation.up(profile, password, generated, on_stage=stage)
    )


def stop(panel: Any, name: str) -> Any:
    from padlab import workstation

    profile = panel.workstations.profile(name)
    panel.workstations.forget(name)
    return panel.jobs.start(name, "stop", lambda stage: workstation.down(profile, on_stage=stage))


class BadDuration(PadlabError):
    """A duration the API caller sent that padlab cannot read (HTTP 400, not 409)."""


def keep(panel: Any, name: str, duration: str) -> dict[str, Any]:
    from padlab import workstation
    from padlab.box.timefmt import MAX_KEEP_S, parse_duration

    profile = panel.workstations.profile(name)
    try:
        seconds = parse_duration(duration, MAX_KEEP_S, "a keep hold")
    except ValueError as exc:
        raise BadDuration(str(exc), 'send a duration such as "2h", "45m" or "off" (at most 7d)') from exc
    facts = workstation.keep(profile, seconds)
    panel.workstations.forget(name)
    return facts


def run(panel: Any, name: str, action: str, duration: str = KEEP_DURATION) -> Any:
    """Start or stop (a job), or keep (the box's autostop facts); unknown actions are refused."""
    if action == "keep":
        return keep(panel, name, duration)
    if action == "start":
        return start(panel, name)
    if action == "stop":
        return stop(panel, name)
    raise UnknownAction(f"unknown action {action!r}", "use start, stop or keep")


class UnknownAction(PadlabError):
    """Not an action the panel has (HTTP 404)."""


def http_status(exc: PadlabError) -> int:
    """404 for a name or action that does not exist, 400 for bad input, 409 for the workstation's state."""
    if isinstance(exc, (UnknownAction, UnknownWorkstation)):
        return 404
    if isinstance(exc, BadDuration):
        return 400
    return 409
