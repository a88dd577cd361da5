"""What up, down, status, passwd and the autostop box calls do, for any provider; the CLI only parses and prints.

Each function here combines a profile, its provider and the box program; what
differs between providers is asked of the provider (``padlab.providers.base``),
never decided by its name. Every action records its intent in the profile's state before it changes the
world, under the profile's lock, so an interrupted command is finished by
running it again.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from padlab import acme, alerts, autostop, card, ledger, money, profiles, providers, state, tls
from padlab.errors import PadlabError
from padlab.profiles import Profile
from padlab.providers.base import Machine, Progress, Provider


def _quiet(_: str) -> None:
    pass


# Only these actions check TLS on the box; the others must not create a CA as a side effect. They
# carry the CA when it exists; `up` makes it only for a box that gets no public certificate: at
# once when it will not ask for one, else when the box asks (set_up_box), after ACME failed.
NEEDS_CA = ("up", "passwd")


def request_for(
    profile: Profile,
    provider: Provider,
    action: str,
    machine: Machine | None = None,
    budget: money.Budget | None = None,
) -> dict:
    """The one place the client builds a box request. For the actions that install the agent, its
    budget deadline (``budget``, else the profile's as recorded) and its alerts travel in it."""
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
        "root_dir": layout.root_dir or profile.root_dir,
    }
    if action in NEEDS_CA:
        req["ca_pem"] = tls.existing_ca()
    if machine and machine.host:
        req["extra_sans"] = [machine.host]
    req.update(layout.steps)
    req["autostop"] = autostop_fields(profile, provider, action, machine)
    if action in autostop.INSTALLS:
        # The budget's deadline and the alerts travel with the agent's config (docs/costs.md).
        if budget is None:
            over = bool(state.load(profile.name).get("over_budget"))
            budget = money.Budget(profile.name, over, [])
        req["autostop"].update(budget.box_fields(machine.price_per_hour if machine else None))
        req["alerts"] = alerts.box_fields(profile.name)
    if action == "up":
        req["acme"], why = acme.box_fields(
            profile, machine.host if machine else None, provider.info.this_machine
        )
        if req["acme"] is None and req["ca_pem"] is None:  # padlab's CA for sure: made (or refused) now
            req["ca_pem"] = tls.ca_for_box(why)
        req["kernels"] = {"declared": profile.kernels}
        if profile.clone:
            req["clone"] = profile.clone
    return req


def autostop_fields(profile: Profile, provider: Provider, action: str, machine: Machine | None) -> dict:
    """The request's autostop part: the policy, and what the provider's own stop needs (a droplet's token)."""
    fields = autostop.policy(profile, provider.autostop_ready())
    if action in autostop.INSTALLS and autostop.enabled(fields):
        fields.update(provider.autostop_fields(fields["action"], machine))
    return fields


def autostop_policy(profile: Profile) -> dict:
    """The policy as the box would get it: without the provider's own stop ready, no default limit."""
    return autostop.policy(profile, providers.get(profile).autostop_ready())


def check_autostop(profile: Profile) -> None:
    """Before a limit is saved: refuse one the provider cannot carry out now, with how to fix it."""
    providers.get(profile).check_autostop(autostop.policy(profile, ready=False))


def password_hint(generated: bool) -> str:
    today = datetime.date.today().isoformat()
    kind = "generated passphrase (words joined by dashes)" if generated else "your own password"
    return f"{kind}, set {today}"


def up(
    profile: Profile,
    password: str | None = None,
    generated: bool = False,
    on_stage: Progress = _quiet,
    over_budget: bool = False,
    move: bool = False,
    check: bool = False,
) -> dict[str, Any]:
    """Make the workstation running and healthy; returns the card plus the box's step report.

    Six steps, top to bottom, each a function below:

    1. check_budget: money (a spent budget refuses; the 80 % warnings) and its alert;
    2. state.action: the profile's lock and the intent on disk;
    3. start_machine: the provider starts it; the ledger brackets what that bills; where it is;
    4. set_up_box: one request to the box program, carrying the budget's deadline and alerts;
    5. record_running: what runs now, on record;
    6. up_card: the card, with the box's steps and what the budget step found.

    ``move``: a new machine on the same volume first (``Provider.move``, RunPod).
    """
    provider = providers.get(profile)
    budget = check_budget(profile, provider, over_budget)
    if (profile.tls or "auto") == "padlab-ca" or provider.info.this_machine:
        # padlab's CA for sure: a public panel that may not make it refuses before a machine starts.
        tls.ca_for_box(acme.box_fields(profile, None, provider.info.this_machine)[1])
    with state.action(profile.name, "starting", "up"):
        machine = start_machine(profile, provider, budget, move, on_stage)
        report = set_up_box(profile, provider, machine, budget, password, check, on_stage)
        st = record_running(profile, provider, machine, report, password, generated)
    return up_card(profile, st, report, budget)


def check_budget(profile: Profile, provider: Provider, over_budget: bool) -> money.Budget:
    """1. A spent budget refuses before anything starts (unless over_budget); at 80 %, one alert a month.

    A broken ledger stops `up` here, before a billed machine starts, not after."""
    if provider.manages_power:
        ledger.check()
    budget = money.for_up(profile.name, over_budget)
    for line in budget.warnings:
        alerts.budget_once(profile.name, line)
    return budget


def start_machine(
    profile: Profile, provider: Provider, budget: money.Budget, move: bool, on_stage: Progress
) -> Machine:
    """3. The provider starts (or finds, or with ``move`` replaces) the machine; the ledger brackets
    the billed time it starts (a ledger that breaks meanwhile is a warning, never a failed up)."""
    ledger.before_acting(profile.name, provider)
    if move:
        provider.move(on_stage)
    machine = provider.ensure_running(on_stage)
    _warn(profile.name, _book(profile.name, machine, "padlab up"), on_stage)
    # Where the machine is, before setting it up: `padlab ssh` works even if the setup fails
    # (written only when it moved: each state write is an fsync).
    where = {"host": machine.host, "machine": machine.as_dict(), "over_budget": budget.over_budget}
    st = state.load(profile.name)
    if any(st.get(k) != v for k, v in where.items()):
        state.update(profile.name, **where)
    return machine


def set_up_box(
    profile: Profile,
    provider: Provider,
    machine: Machine,
    budget: money.Budget,
    password: str | None,
    check: bool,
    on_stage: Progress,
) -> dict[str, Any]:
    """4. One request to the box program, which answers at once when nothing changed since its last
    full run (``check`` runs every step anyway); padlab's CA signs a new key's CSR when it asks."""
    req = request_for(profile, provider, "up", machine, budget)
    req["check"] = check
    req["answers"] = True  # the box asks for its certificate's signature within this call
    if password is not None:
        req["password"] = password
    transport = provider.transport(machine)

    def on_event(event: dict) -> dict | None:
        if event.get("ask") == "ca":  # ACME gave no certificate: padlab's CA, where it may be made
            on_stage(f"no public certificate ({event.get('reason')}): padlab's CA")
            return {"ca_pem": tls.ca_for_box(event.get("reason"))}
        if event.get("ask") == "sign":  # the box's new key: padlab's CA signs its CSR
            on_stage("signing the box's certificate with padlab's CA")
            return {"cert_pem": tls.sign_csr(event["csr"], event["sans"])}
        on_stage(event.get("stage", ""))
        return None

    on_stage("setting up the box")
    report = transport.call(req, on_event)
    if "needs_cert" in report:  # never a card for a certificate Jupyter does not serve
        raise PadlabError(
            f"the box's certificate was not signed: {report['needs_cert']['reason']}",
            "run `padlab up` again",
        )
    report["deadline_at"] = req["autostop"].get("deadline_at")
    report["deadline_why"] = req["autostop"].get("deadline_why")
    return report


def record_running(
    profile: Profile,
    provider: Provider,
    machine: Machine,
    report: dict[str, Any],
    password: str | None,
    generated: bool,
) -> dict[str, Any]:
    """5. What runs now: phase, certificate, service, warnings, and the provider's card lines."""
    tls_facts = dict(report.get("tls") or {"kind": "padlab-ca", "reason": None})
    if not tls_facts.get("reason") and tls_facts.get("kind") != "public":
        tls_facts["reason"] = acme.box_fields(profile, machine.host, provider.info.this_machine)[1]
    changes: dict[str, Any] = {
        "tls": tls_facts,
        "acme_seconds": report.get("acme_seconds"),
        "phase": "running",
        "cert_sha256": report.get("cert_sha256"),
        "started_at": (report.get("service") or {}).get("started_at"),
        "service_kind": (report.get("service") or {}).get("kind"),
        "warnings": report.get("warnings", []),
    }
    if password is not None and not report.get("password_kept"):
        changes["password_hint"] = password_hint(generated)
    changes.update(provider.after_up(machine, report))
    return state.update(profile.name, **changes)


def up_card(
    profile: Profile, st: dict[str, Any], report: dict[str, Any], budget: money.Budget
) -> dict[str, Any]:
    """6. The card, with the box's steps and what the budget step found."""
    out = card.build(profile, st)
    out["changed"] = any(s["changed"] for s in report["steps"])
    out["steps"] = report["steps"]
    if report.get("fingerprint_changed"):  # why the box ran every step: the parts that differed
        out["fingerprint_changed"] = report["fingerprint_changed"]
    out["budget"] = {
        "warnings": budget.warnings,
        "deadline_at": report["deadline_at"],
        "deadline_why": report["deadline_why"],
        "over_budget": budget.over_budget,
    }
    out["password_kept"] = bool(report.get("password_kept"))
    out["acme_seconds"] = report.get("acme_seconds")  # what this `up` spent getting a public certificate
    return out


def needs_password(profile: Profile) -> bool:
    """Ask up front on a first `up`, rather than after minutes of installing."""
    return not state.load(profile.name).get("password_hint")


def _book(name: str, machine: Machine, source: str) -> list[str]:
    """Record an observation in the ledger; a broken ledger gives a warning line, never an error."""
    try:
        ledger.observe(name, machine, time.time(), source)
    except ledger.LedgerError as exc:
        return [f"{exc} (costs are not being recorded); fix: {exc.fix}"]
    return []


def _warn(name: str, lines: list[str], on_stage: Progress) -> None:
    """Say a bookkeeping failure where the user looks (the stages) and where they may not (an alert)."""
    for line in lines:
        on_stage(f"warning: {line}")
        alerts.send("cost ledger broken", f"{name}: {line}")


def down(profile: Profile, on_stage: Progress = _quiet) -> dict[str, Any]:
    """Stop Jupyter (and the machine, where the provider bills for it); nothing on disk is touched."""
    provider = providers.get(profile)
    try:
        return _down(profile, provider, on_stage)
    except PadlabError as exc:
        if provider.manages_power:
            alerts.send("stop FAILED", f"padlab down {profile.name} failed: {exc}; it may still be billed")
        raise


def _down(profile: Profile, provider: Provider, on_stage: Progress) -> dict[str, Any]:
    """Bookkeeping never blocks the stop: a broken ledger is noted (and alerted) once, after it.

    Nor does the box: where the provider powers the machine off, a Jupyter that cannot be
    stopped cleanly first (an unreachable box, a box program that fails) is a warning, and
    the machine is powered off all the same, since that is what ends the billing.
    """
    warnings: list[str] = []
    with state.action(profile.name, "stopping", "down"):
        machine = provider.describe()
        notes = _book(profile.name, machine, "padlab (before acting)") if provider.manages_power else []
        if machine.state == "running":
            req = request_for(profile, provider, "down", machine)
            req["disable"] = not provider.manages_power
            on_stage("stopping Jupyter")
            try:
                provider.transport(machine).call(req)
            except PadlabError as exc:
                if not provider.manages_power:
                    raise
                warnings.append(f"Jupyter was not stopped cleanly first ({exc.message}); powered off anyway")
        if provider.manages_power:
            on_stage("stopping the machine")
            machine = provider.stop(on_stage)
            notes = notes or _book(profile.name, machine, "padlab down")
        st = state.update(
            profile.name,
            phase="stopped",
            stopped_at=time.time(),
            stop_reason="padlab down",
            started_at=None,
            machine=machine.as_dict(),
            over_budget=None,
        )
    _warn(profile.name, notes, on_stage)  # after the stop is recorded: an alert's timeout never delays it
    out = card.build(profile, st)
    out["ledger_warnings"] = notes
    out["warnings"] = warnings
    return out


def passwd(profile: Profile, password: str, generated: bool, on_stage: Progress = _quiet) -> dict[str, Any]:
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
    fields = autostop_policy(profile)
    facts = None
    if changed:
        check_autostop(profile)
        profiles.save(profile)
        facts = apply_autostop(profile)
    return {"policy": fields, "box": facts, "changed": changed}


def _not_serving(phase: str) -> str:
    """The machine runs but Jupyter does not answer: why, from what padlab last did."""
    if phase in ("error", state.MACHINE_UP):
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
    ledger_warnings = _book(profile.name, machine, "padlab status")
    month_usd = None
    if provider.manages_power and not ledger_warnings:
        try:
            month_usd = round(ledger.month_spend(profile.name), 4)
        except ledger.LedgerError as exc:
            ledger_warnings = [f"{exc}; fix: {exc.fix}"]
    if phase in ("starting", "stopping"):
        live = phase
    elif machine.state != "running":
        # No record ('new') and no machine: never set up, as far as anyone can tell.
        live = "new" if phase == "new" else ("stopped" if machine.state == "off" else machine.state)
    elif provider.jupyter_alive(machine):
        # Also with no record (lost or set aside as corrupt): a serving Jupyter is never 'new'.
        live = "running"
    else:
        live = "new" if phase == "new" else _not_serving(phase)
    if live == "running" and (provider.info.this_machine or not st.get("host")):
        st["host"] = machine.host or st.get("host")
    out = card.build(profile, st, live_state=live)
    out["machine"] = machine.as_dict()
    out["last_error"] = st.get("last_error") if live in ("error", "stopped") else None
    out["stopped_at"] = st.get("stopped_at")
    out["stop_reason"] = st.get("stop_reason")
    out["month_usd"] = month_usd  # this calendar month, from the ledger (docs/costs.md)
    out["ledger_warnings"] = ledger_warnings  # a broken ledger never hides the machine's state
    annotate(out, profile, provider, machine, st)
    return out


# -- autostop on the box: apply the policy, hold the box up, read the logs and the agent's view ----


def _running_box(profile: Profile) -> tuple[Provider, Machine] | None:
    """(provider, machine) when the box can be reached now, else None."""
    provider = providers.get(profile)
    machine = provider.describe()
    return (provider, machine) if machine.state == "running" else None


def _call(profile: Profile, action: str, **fields: Any) -> dict[str, Any]:
    box = _running_box(profile)
    if box is None:
        raise PadlabError(f"the machine behind {profile.name!r} is not running", f"padlab up {profile.name}")
    provider, machine = box
    req = request_for(profile, provider, action, machine)
    req.update(fields)
    return provider.transport(machine).call(req)


def apply_autostop(profile: Profile) -> dict[str, Any] | None:
    """Send the profile's policy to a running box (Jupyter and its kernels are untouched).
    Returns the box's autostop facts, or None when the machine is off (the next `up` applies it)."""
    if _running_box(profile) is None:
        return None
    return _call(profile, "autostop").get("autostop")


def keep(profile: Profile, seconds: int | None) -> dict[str, Any]:
    return _call(profile, "keep", keep_s=seconds)["autostop"]


def logs(profile: Profile, agent: bool, lines: int) -> str:
    return _call(profile, "logs", agent=agent, lines=lines).get("text", "")


def agent_facts(profile: Profile, provider: Provider, machine: Machine) -> dict[str, Any] | None:
    """The agent's last decision and last stop, read from a running box; None when it cannot be read.

    `status` must stay instant: the provider reads its box only where that is cheap
    (this machine in-process, a remote one over an ssh connection that is already open).
    """
    return provider.agent_facts(machine, request_for(profile, provider, "status", machine))


def annotate(
    out: dict[str, Any], profile: Profile, provider: Provider, machine: Machine, st: dict[str, Any]
) -> None:
    """Add the agent's view to a status result, and why a workstation padlab did not stop is stopped."""
    if machine.state != "running":
        if st.get("phase") == "running":
            by_box = provider.stopped_by_box(machine, st)
            if by_box:
                out["stopped_at"], out["stop_reason"] = by_box
            else:
                out["stop_reason"] = (
                    "not by padlab down: autostop or a shutdown on the box; "
                    f"after `padlab up {profile.name}`, `padlab logs {profile.name} --agent` tells which"
                )
        return
    facts = agent_facts(profile, provider, machine)
    if facts and facts.get("tls"):
        # The box's own view: a renewal that failed since `up` says why here.
        out["tls"] = facts.pop("tls")
        out["tls_line"] = acme.summary(out["tls"])
    out["autostop"] = facts
    last = (facts or {}).get("last_stop")
    if not last:
        return
    ledger.stopped_by_agent(profile.name, float(last["at"]), str(last.get("result")))
    when = datetime.datetime.fromtimestamp(last["at"]).strftime("%Y-%m-%d %H:%M")
    text = f"by autostop at {when}: {last['reason']} ({last['result']})"
    if out["state"] == "stopped" and last["at"] > (st.get("stopped_at") or 0):
        out["stopped_at"] = last["at"]
        out["stop_reason"] = text
    elif facts is not None:
        facts["summary"] += f"; last stopped {text}"
