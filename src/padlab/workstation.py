"""What up, down, status and passwd do, for any provider; the CLI only parses and prints.

Every action records its intent in the profile's state before it changes the
world, under the profile's lock, so an interrupted command is finished by
running it again.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from padlab import alerts, autostop, card, ledger, money, providers, state, tls
from padlab.errors import PadlabError
from padlab.profiles import Profile
from padlab.providers.base import Machine, Provider

Stage = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# Only these actions check TLS on the box; the others must not create a CA as a side effect.
NEEDS_CA = ("up", "passwd")


def request_for(profile: Profile, provider: Provider, action: str, machine: Machine | None = None) -> dict:
    layout = provider.layout()
    req: dict[str, Any] = {
        "action": action,
        "name": profile.name,
        "prefix": layout.prefix,
        "etc": layout.etc,
        "system": layout.system,
        "user": layout.user,
        "port": profile.port,
        "listen": profile.listen,
        "root_dir": profile.root_dir,
    }
    if action in NEEDS_CA:
        req["ca_pem"] = tls.ensure_ca()
    if machine and machine.host:
        req["extra_sans"] = [machine.host]
    req.update(layout.steps)
    req["autostop"] = autostop.box_fields(profile, provider, action, machine)
    if action in autostop.INSTALLS:
        # The budget's deadline and the alerts travel with the agent's config (docs/costs.md).
        over = bool(state.load(profile.name).get("over_budget"))
        price = machine.price_per_hour if machine else None
        req["autostop"].update(money.box_fields(profile.name, price, over))
        req["alerts"] = alerts.box_fields(profile.name)
    return req


def password_hint(generated: bool) -> str:
    import datetime

    today = datetime.date.today().isoformat()
    kind = "generated passphrase (words joined by dashes)" if generated else "your own password"
    return f"{kind}, set {today}"


def up(
    profile: Profile,
    password: str | None = None,
    generated: bool = False,
    on_stage: Stage = _quiet,
    over_budget: bool = False,
) -> dict[str, Any]:
    """Make the workstation running and healthy; returns the card plus the box's step report.

    A spent budget refuses before anything starts, unless ``over_budget``.
    """
    provider = providers.get(profile)
    money.check_up(profile.name, over_budget)
    with state.action(profile.name, "starting", "up"):
        state.update(profile.name, over_budget=over_budget)
        ledger.before_acting(profile.name, provider)
        machine = provider.ensure_running(on_stage)
        ledger.observe(profile.name, machine, time.time(), "padlab up")
        state.update(profile.name, host=machine.host, machine=machine.as_dict())
        req = request_for(profile, provider, "up", machine)
        if password is not None:
            req["password"] = password
        transport = provider.transport(machine)

        def on_event(event: dict) -> None:
            on_stage(event.get("stage", ""))

        on_stage("setting up the box")
        report = transport.call(req, on_event)
        steps = report["steps"]
        if "needs_cert" in report:
            on_stage("signing the box's certificate with padlab's CA")
            need = report["needs_cert"]
            req["cert_pem"] = tls.sign_csr(need["csr"], need["sans"])
            report = transport.call(req, on_event)
            # The first pass stopped at the TLS step; the second carries on from there.
            steps = _before_tls(steps) + report["steps"][len(_before_tls(report["steps"])) :]
        changes: dict[str, Any] = {
            "phase": "running",
            "cert_sha256": report.get("cert_sha256"),
            "started_at": (report.get("service") or {}).get("started_at"),
            "service_kind": (report.get("service") or {}).get("kind"),
            "warnings": report.get("warnings", []),
        }
        if password is not None:
            changes["password_hint"] = password_hint(generated)
        changes.update(provider.after_up(machine, report))
        st = state.update(profile.name, **changes)
    out = card.build(profile, st)
    out["changed"] = any(s["changed"] for s in steps)
    out["steps"] = steps
    out["budget"] = {
        "warnings": money.warnings(profile.name),
        "deadline_at": req["autostop"].get("deadline_at"),
        "deadline_why": req["autostop"].get("deadline_why"),
        "over_budget": over_budget,
    }
    return out


def _before_tls(steps: list[dict]) -> list[dict]:
    names = [s["name"] for s in steps]
    return steps[: names.index("tls")] if "tls" in names else steps


def needs_password(profile: Profile) -> bool:
    """Ask up front on a first `up`, rather than after minutes of installing."""
    return not state.load(profile.name).get("password_hint")


def down(profile: Profile, on_stage: Stage = _quiet) -> dict[str, Any]:
    """Stop Jupyter (and the machine, where the provider bills for it); nothing on disk is touched."""
    provider = providers.get(profile)
    try:
        return _down(profile, provider, on_stage)
    except PadlabError as exc:
        if provider.manages_power:
            alerts.send("stop FAILED", f"padlab down {profile.name} failed: {exc}; it may still be billed")
        raise


def _down(profile: Profile, provider: Provider, on_stage: Stage) -> dict[str, Any]:
    with state.action(profile.name, "stopping", "down"):
        machine = provider.describe()
        if provider.manages_power:
            ledger.observe(profile.name, machine, time.time(), "padlab (before acting)")
        if machine.state == "running":
            req = request_for(profile, provider, "down", machine)
            req["disable"] = not provider.manages_power
            on_stage("stopping Jupyter")
            provider.transport(machine).call(req)
        if provider.manages_power:
            on_stage("stopping the machine")
            machine = provider.stop(on_stage)
            ledger.observe(profile.name, machine, time.time(), "padlab down")
        st = state.update(
            profile.name,
            phase="stopped",
            stopped_at=time.time(),
            stop_reason="padlab down",
            started_at=None,
            machine=machine.as_dict(),
            over_budget=None,
        )
    return card.build(profile, st)


def passwd(profile: Profile, password: str, generated: bool, on_stage: Stage = _quiet) -> dict[str, Any]:
    provider = providers.get(profile)
    with state.locked(profile.name):
        machine = provider.describe()
        if machine.state != "running":
            raise PadlabError(
                f"the machine behind {profile.name!r} is {machine.state}", "run `padlab up` first"
            )
        req = request_for(profile, provider, "passwd", machine)
        req["password"] = password
        on_stage("setting the new password")
        provider.transport(machine).call(req)
        st = state.update(profile.name, password_hint=password_hint(generated))
    return card.build(profile, st)


def set_autostop(
    profile: Profile, limit: str | None, max_uptime: str | None, action: str | None
) -> dict[str, Any]:
    """Change the policy (None leaves a setting as it is): validated, saved, then sent to a running box.

    Returns {"policy", "box" (the box's facts, None when it is off), "changed"}; used by the CLI and the panel.
    """
    changed = limit is not None or max_uptime is not None or action is not None
    if limit is not None:
        profile.autostop = limit
    if max_uptime is not None:
        profile.max_uptime = None if max_uptime.strip().lower() == "off" else max_uptime
    if action is not None:
        profile.autostop_action = action
    profile.validate()
    fields = autostop.policy(profile)
    facts = None
    if changed:
        from padlab import profiles

        profiles.save(profile)
        facts = autostop.apply(profile)
    return {"policy": fields, "box": facts, "changed": changed}


def _jupyter_alive(profile: Profile, provider: Provider, host: str | None) -> bool:
    """Cheap liveness: the pidfile on this machine, else a TLS handshake that padlab's CA verifies.

    A bare TCP connect is not enough: a middlebox or another program can accept it.
    """
    if provider.name == "local":
        from padlab.box import service
        from padlab.box.system import Host

        return service.read_pid(Host(sudo=False), provider.box()) is not None
    if not host or not tls.ca_cert_path().exists():
        return False
    try:
        tls.handshake(host, profile.port, timeout=2.0)
    except (OSError, ValueError):
        return False
    return True


def _not_serving(phase: str) -> str:
    """The machine runs but Jupyter does not answer: why, from what padlab last did."""
    from padlab.machines import MACHINE_UP

    if phase in ("error", MACHINE_UP):
        return phase  # machine-up: started with --skip-setup, never set up
    return "stopped"


def status(profile: Profile) -> dict[str, Any]:
    """State from the recorded phase, the provider and a liveness probe; never changes anything."""
    provider = providers.get(profile)
    st = state.load(profile.name)
    phase = st.get("phase", "new")
    if phase in ("starting", "stopping") and not state.is_locked(profile.name):
        phase = "error" if phase == "starting" else "stopped"
        st["last_error"] = st.get("last_error") or "the last command was interrupted; run it again"
    try:
        machine = provider.describe()
    except PadlabError as exc:
        # One cloud with a bad key must not hide the others in `status --all`.
        machine = Machine(state="error")
        phase, st["last_error"] = "error", str(exc)
    ledger.observe(profile.name, machine, time.time(), "padlab status")
    if phase in ("starting", "stopping", "new"):
        live = phase
    elif machine.state != "running":
        live = "stopped" if machine.state == "off" else machine.state
    else:
        live = "running" if _jupyter_alive(profile, provider, machine.host) else _not_serving(phase)
    if live == "running" and profile.provider == "local":
        st["host"] = machine.host or st.get("host")
    out = card.build(profile, st, live_state=live)
    out["machine"] = machine.as_dict()
    out["last_error"] = st.get("last_error") if live in ("error", "stopped") else None
    out["stopped_at"] = st.get("stopped_at")
    out["stop_reason"] = st.get("stop_reason")
    autostop.annotate(out, profile, provider, machine, st)
    return out
