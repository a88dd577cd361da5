"""Autostop policy on the client: what a profile asks for, as the request fields the box's agent reads.

Policy only: no box calls and no provider instances (those live in
``padlab.workstation``). The agent on the box does the watching
(padlab/box/autostop/agent.py); the per-provider defaults come from ``padlab.registry``.
See docs/autostop.md.
"""

from __future__ import annotations

from typing import Any

from padlab import registry
from padlab.box.request import GPU_THRESHOLD, WARN_S
from padlab.box.timefmt import MAX_IDLE_S, MAX_KEEP_S, MAX_UPTIME_S, format_duration, parse_duration
from padlab.errors import PadlabError

MIN_LIMIT_S = 60
ACTIONS = registry.CHOOSABLE
# Requests that install the agent's config, and so carry what its stop needs (a token on DigitalOcean).
INSTALLS = ("up", "autostop")


def validate(profile: Any) -> None:
    """Raise a one-line PadlabError for settings the agent could not honour."""
    _seconds(profile.autostop, "--autostop", profile.name)
    _seconds(profile.max_uptime, "--max-uptime", profile.name, MAX_UPTIME_S)
    action = profile.autostop_action
    if action is not None and action not in ACTIONS:
        raise PadlabError(
            f"unknown autostop action {action!r}",
            f"choose one of: {', '.join(ACTIONS)} (padlab autostop {profile.name} --action service)",
        )
    for refused, message, fix in registry.get(profile.provider).refusals:
        if action == refused:
            raise PadlabError(message, fix.format(name=profile.name))


def _seconds(text: str | None, flag: str, name: str, limit: int = MAX_IDLE_S) -> int | None:
    if text is None:
        return None
    try:
        seconds = parse_duration(text, limit, flag)
    except ValueError as exc:
        raise PadlabError(str(exc), f"e.g. padlab autostop {name} 45m") from exc
    if seconds is not None and seconds < MIN_LIMIT_S:
        raise PadlabError(
            f"{flag} {text} is shorter than a minute",
            "the warning comes a minute before a stop; use 1m or more",
        )
    return seconds


def policy(profile: Any, ready: bool = True) -> dict[str, Any]:
    """The request fields the box's agent config is made from (padlab/box/request.py, AUTOSTOP).

    ready: whether the provider's own stop can run (DigitalOcean: the box's token is
    stored, see Provider.autostop_ready); without it there is no default idle limit.
    """
    info = registry.get(profile.provider)
    default = info.default_idle if ready else "off"
    idle = profile.autostop if profile.autostop is not None else default
    return {
        "idle_s": parse_duration(idle),
        "max_uptime_s": parse_duration(profile.max_uptime) if profile.max_uptime else None,
        "action": profile.autostop_action or info.default_stop,
        "warn_s": WARN_S,
        "gpu_threshold": GPU_THRESHOLD,
    }


def enabled(fields: dict[str, Any]) -> bool:
    """Whether a policy stops anything at all."""
    return bool(fields["idle_s"] or fields["max_uptime_s"])


def describe_policy(fields: dict[str, Any]) -> str:
    """'stops Jupyter after 45 min idle, at most 8 h up' for confirmations."""
    from padlab.box.autostop.stops import STOPS

    verb = STOPS[fields["action"]].verb
    if not enabled(fields):
        return "autostop is off"
    parts = []
    if fields["idle_s"]:
        parts.append(f"after {format_duration(fields['idle_s'])} idle")
    if fields["max_uptime_s"]:
        parts.append(f"after {format_duration(fields['max_uptime_s'])} up whatever it does")
    return f"autostop {verb} " + ", or ".join(parts)


def keep_seconds(text: str, name: str) -> int | None:
    """`padlab keep`'s DURATION: a week at most, the same bound padlab-keep and the agent apply."""
    try:
        return parse_duration(text, MAX_KEEP_S, "a keep hold")
    except ValueError as exc:
        raise PadlabError(str(exc), f"e.g. padlab keep {name} 2h, up to 7d (or off)") from exc
