"""Autostop on the client: the policy a profile asks for, and the box actions that apply or read it.

The agent on the box does the watching (padlab/box/agent.py); this module turns
a profile into the request fields it reads, and gives the CLI keep, logs and the
one-line view that `padlab status` prints. See docs/autostop.md.
"""

from __future__ import annotations

import datetime
from typing import Any

from padlab.box.timefmt import format_duration, parse_duration
from padlab.errors import PadlabError

# One hour: long enough for a lunch break or a long read with the notebook closed, short
# enough that a forgotten GPU box costs at most about an hour. Providers that bill for a
# running machine get it by default; on your own hardware (local, ssh) it is opt-in.
DEFAULT_IDLE = "1h"
WARN_S = 300
MIN_LIMIT_S = 60
ACTIONS = ("service", "poweroff")
# A powered-off droplet is still billed, so a stop there must snapshot and delete the droplet, from
# the box, with a token of its own; without that token DigitalOcean gets no autostop at all.
BILLED_WHEN_OFF = ("digitalocean",)
# Requests that install the agent's config, and so carry what its stop needs (a token on DigitalOcean).
INSTALLS = ("up", "autostop")


def validate(profile: Any) -> None:
    """Raise a one-line PadlabError for settings the agent could not honour."""
    _seconds(profile.autostop, "--autostop", profile.name)
    _seconds(profile.max_uptime, "--max-uptime", profile.name)
    action = profile.autostop_action
    if action is not None and action not in ACTIONS:
        raise PadlabError(
            f"unknown autostop action {action!r}",
            f"choose one of: {', '.join(ACTIONS)} (padlab autostop {profile.name} --action service)",
        )
    if profile.provider in BILLED_WHEN_OFF and action == "poweroff":
        raise PadlabError(
            "a powered-off droplet is still billed, so autostop never powers one off",
            f"drop --action: autostop snapshots and deletes the droplet (padlab autostop {profile.name} 1h)",
        )
    if action == "poweroff" and profile.provider == "local":
        raise PadlabError(
            "the local provider never powers off the machine padlab runs on",
            f"use --action service (stops only Jupyter): padlab autostop {profile.name} --action service",
        )


def check_ready(profile: Any) -> None:
    """Before a limit is saved: DigitalOcean's stop needs the box's own token, stored on this machine.

    Not part of validate(): a token removed later must not make the profile unreadable;
    `up` then says what is missing.
    """
    if profile.provider not in BILLED_WHEN_OFF:
        return
    from padlab.providers import do_autostop

    wanted = _seconds(profile.autostop, "--autostop", profile.name) or profile.max_uptime
    if wanted and profile.autostop_action != "service" and not do_autostop.configured():
        raise PadlabError(
            "autostop on digitalocean needs its own token: a powered-off droplet is still billed, "
            "so the box must snapshot and delete itself",
            do_autostop.HOW,
        )


def _seconds(text: str | None, flag: str, name: str) -> int | None:
    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise PadlabError(str(exc), f"e.g. padlab autostop {name} 45m") from exc
    if seconds is not None and seconds < MIN_LIMIT_S:
        raise PadlabError(
            f"{flag} {text} is shorter than a minute", "the warning comes a minute before a stop; use 1m or more"
        )
    return seconds


def manages_power(profile: Any) -> bool:
    from padlab import providers

    return bool(getattr(providers.get(profile), "manages_power", False))


def policy(profile: Any, cloud: bool | None = None) -> dict[str, Any]:
    """The request fields the box's agent config is made from: {idle_s, max_uptime_s, action, warn_s}."""
    cloud = manages_power(profile) if cloud is None else cloud
    stop = "poweroff" if cloud else "service"
    if profile.provider in BILLED_WHEN_OFF:
        from padlab.providers import do_autostop

        # The default idle limit needs the box's own token; an explicit limit without one is refused.
        cloud = cloud and do_autostop.configured()
        stop = do_autostop.ACTION
    idle = profile.autostop if profile.autostop is not None else (DEFAULT_IDLE if cloud else "off")
    return {
        "idle_s": parse_duration(idle),
        "max_uptime_s": parse_duration(profile.max_uptime) if profile.max_uptime else None,
        "action": profile.autostop_action or stop,
        "warn_s": WARN_S,
    }


def box_fields(profile: Any, provider: Any, action: str, machine: Any) -> dict[str, Any]:
    """The request's autostop part: the policy, and for a droplet's stop its id, API and token."""
    fields = policy(profile, provider.manages_power)
    if action in INSTALLS and profile.provider in BILLED_WHEN_OFF:
        from padlab.providers import do_autostop

        if fields["action"] == do_autostop.ACTION and (fields["idle_s"] or fields["max_uptime_s"]):
            fields["digitalocean"] = do_autostop.request_fields(provider, machine)
    return fields


def describe_policy(fields: dict[str, Any]) -> str:
    """'stops Jupyter after 45 min idle, at most 8 h up' for confirmations."""
    verb = {"service": "stops Jupyter", "poweroff": "powers the machine off"}.get(
        fields["action"], "snapshots and deletes the droplet"
    )
    if not fields["idle_s"] and not fields["max_uptime_s"]:
        return "autostop is off"
    parts = []
    if fields["idle_s"]:
        parts.append(f"after {format_duration(fields['idle_s'])} idle")
    if fields["max_uptime_s"]:
        parts.append(f"after {format_duration(fields['max_uptime_s'])} up whatever it does")
    return f"autostop {verb} " + ", or ".join(parts)


def _running_box(profile: Any) -> tuple[Any, Any] | None:
    """(provider, machine) when the box can be reached now, else None."""
    from padlab import providers

    provider = providers.get(profile)
    machine = provider.describe()
    return (provider, machine) if machine.state == "running" else None


def _call(profile: Any, action: str, **fields: Any) -> dict[str, Any]:
    from padlab import workstation

    box = _running_box(profile)
    if box is None:
        raise PadlabError(f"the machine behind {profile.name!r} is not running", f"padlab up {profile.name}")
    provider, machine = box
    req = workstation.request_for(profile, provider, action, machine)
    req.update(fields)
    return provider.transport(machine).call(req)


def apply(profile: Any) -> dict[str, Any] | None:
    """Send the profile's policy to a running box (Jupyter and its kernels are untouched).
    Returns the box's autostop facts, or None when the machine is off (the next `up` applies it)."""
    if _running_box(profile) is None:
        return None
    return _call(profile, "autostop").get("autostop")


def keep(profile: Any, seconds: int | None) -> dict[str, Any]:
    return _call(profile, "keep", keep_s=seconds)["autostop"]


def logs(profile: Any, agent: bool, lines: int) -> str:
    return _call(profile, "logs", agent=agent, lines=lines).get("text", "")


def box_facts(profile: Any, provider: Any, machine: Any) -> dict[str, Any] | None:
    """The agent's last decision and last stop, read from a running box; None when it cannot be read.

    `status` must stay instant: this machine's box is read in-process (the box program is
    stdlib only), a remote one only over an ssh connection that is already open.
    """
    from padlab import workstation

    req = workstation.request_for(profile, provider, "status", machine)
    if profile.provider == "local":
        if not (req["autostop"]["idle_s"] or req["autostop"]["max_uptime_s"]):
            return {"summary": "off", "decision": None, "last_stop": None}
        from padlab.box import agent_setup
        from padlab.box.system import Host

        return agent_setup.facts(Host(sudo=False), provider.box())
    if not provider.connected(machine):
        return None
    try:
        report = provider.transport(machine).call(req)
    except PadlabError:
        return None
    return report.get("autostop")


def _droplet_stop(out: dict[str, Any], machine: Any, st: dict[str, Any]) -> str | None:
    """A droplet gone, with a snapshot taken after the last `up`: only the agent does that.

    The box is deleted, so its stop record cannot be read; the snapshot's name
    (RESOURCE-UNIXTIME, as padlab names them) says when.
    """
    name = machine.extra.get("snapshot_name")
    if machine.extra.get("provider_state") != "snapshot" or not name:
        return None
    taken = float(name.rsplit("-", 1)[1])
    if taken < float(st.get("action_at") or 0):
        return None
    out["stopped_at"] = taken
    when = datetime.datetime.fromtimestamp(taken).strftime("%Y-%m-%d %H:%M")
    return f"by autostop at {when} (snapshot {name}, droplet deleted)"


def annotate(out: dict[str, Any], profile: Any, provider: Any, machine: Any, st: dict[str, Any]) -> None:
    """Add the agent's view to a status result, and why a workstation padlab did not stop is stopped."""
    if machine.state != "running":
        if st.get("phase") == "running":
            out["stop_reason"] = _droplet_stop(out, machine, st) or (
                "not by padlab down: autostop or a shutdown on the box; "
                f"after `padlab up {profile.name}`, `padlab logs {profile.name} --agent` tells which"
            )
        return
    facts = box_facts(profile, provider, machine)
    out["autostop"] = facts
    last = (facts or {}).get("last_stop")
    if not last:
        return
    from padlab import ledger

    ledger.stopped_by_agent(profile.name, float(last["at"]), str(last.get("result")))
    when = datetime.datetime.fromtimestamp(last["at"]).strftime("%Y-%m-%d %H:%M")
    text = f"by autostop at {when}: {last['reason']} ({last['result']})"
    if out["state"] == "stopped" and last["at"] > (st.get("stopped_at") or 0):
        out["stopped_at"] = last["at"]
        out["stop_reason"] = text
    elif facts is not None:
        facts["summary"] += f"; last stopped {text}"
