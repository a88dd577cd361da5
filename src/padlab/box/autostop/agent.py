"""The autostop agent: a short check every CHECK_S seconds (systemd timer or cron), no daemon.

Each check gathers what counts as use (see activity.py), works out since when
the box has been idle, warns every open terminal before a stop, and stops the
box the way its config says: stop the Jupyter service, or power the machine off.
A check also works out when the next one is due: the regular tick, or sooner, the
very moment a warning or the stop falls due, which the run then waits for itself
(see watch), so a stop starts on time rather than at the next tick.
Every decision is one line in the agent log; the latest one is in state.json,
which `padlab status` and `padlab-keep` read.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time

from ..request import WARN_S
from ..timefmt import MAX_KEEP_S, format_duration, parse_duration
from . import activity, alerts, do_stop
from .stops import STOPS, jupyter_pid, jupyter_running

TTY_DIR = "/dev/pts"
LOG_MAX_BYTES = 256 * 1024
RESTOP_AFTER = 300.0  # a power-off that has not happened after this long is tried again
# The regular tick: how late the end of a use with no timestamp of its own (an ssh login, GPU load)
# can be seen. The warning and the stop do not wait for it: a check wakes at their moment.
CHECK_S = 20.0
# The least time between a warning and its stop, when the warning itself came late (the end of a
# use seen after the lead time began, a hold released, a box that slept); on time, it is the lead.
NOTICE_S = 30.0
# Signals whose idle form says when the use ended (a mosh client's last contact, from utmp; a
# kernel's last message), so the idle clock starts there rather than at the check that saw the end.
ENDS_KNOWN = ("mosh", "download", "kernel")


def load_json(path: str) -> dict:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def paths(conf: dict) -> dict:
    base = conf["dir"]
    return {
        "state": os.path.join(base, "state.json"),
        "log": os.path.join(base, "agent.log"),
        "stopped": os.path.join(base, "stopped.json"),
    }


def gather(conf: dict, state: dict, now: float) -> list:
    """Every probe of activity.PROBES, in order, on one shared view of the box.

    A probe reads what the Jupyter user can write, so any probe may fail: its failure is a
    signal of kind "probe" ("probe: X failed: ..."), never the end of the check. It counts
    from the probe's last good reading (the idle clock starts no later than that, as for an
    unreadable Jupyter), so a broken probe neither hides the use it saw nor keeps the box up
    longer than one idle limit past its last reading; the hard stops never depend on it.
    """
    seen = activity.Seen(conf, state, now, lambda: jupyter_running(conf))
    ok = state.get("probe_ok")
    ok = dict(ok) if isinstance(ok, dict) else {}
    out = []
    for probe in activity.PROBES:
        try:
            signals = list(probe.run(seen))
            if not all(isinstance(s, activity.Signal) for s in signals):
                raise TypeError("returned something that is not a Signal")
        except Exception as exc:  # noqa: BLE001 - whatever a planted input makes a probe raise
            last = activity.number(ok.get(probe.name))
            out.append(activity.Signal("probe", "%s failed: %s" % (probe.name, _why(exc)), at=last))
            continue
        ok[probe.name] = now
        out += signals
    state["probe_ok"] = ok
    return out


def _why(exc: BaseException) -> str:
    return ("%s: %s" % (type(exc).__name__, exc))[:200]


def hard_stops(conf: dict, started: float) -> list:
    """The stops no activity holds off: the uptime cap and the budget's deadline, as (at, why).

    Worked out from the root-owned config and the machine's start alone, before and apart
    from any probe, so nothing a notebook writes can move or cancel them.
    """
    out = []
    cap_s = activity.number(conf.get("max_uptime_s"))
    if cap_s and started:
        out.append((started + cap_s, "maximum uptime of %s reached" % format_duration(cap_s)))
    deadline = activity.number(conf.get("deadline_at"))
    if deadline:
        # The budget's hard deadline: busy or held, the money has run out.
        out.append((deadline, str(conf.get("deadline_why") or "the budget ran out")))
    return out


def decide(
    conf: dict, state: dict, signals: list, now: float, started: float, hard: list | None = None
) -> dict:
    """When the box stops and why, from the signals; no side effects, so tests can drive the clock."""
    in_use = [s for s in signals if s.active]
    if in_use:
        state["last_in_use"] = now
        state["last_reasons"] = [s.text() for s in in_use]
        state["last_kinds"] = sorted({s.kind for s in in_use})
    elif state.get("in_use"):
        # The use ended at some moment since the last check. Counted as lasting until now, the
        # stop is up to one tick late but never early; unless every probe that saw it says when.
        kinds = set(state.get("last_kinds") or ["?"])
        ends = [s.at for s in signals if not s.active and s.at and s.kind in kinds]
        known = kinds <= set(ENDS_KNOWN) and ends
        state["last_in_use"] = min(max(ends), now) if known else now
    seen = [s for s in signals if not s.active and s.at]
    if state.get("last_in_use"):
        why = "; ".join(state.get("last_reasons") or [])
        seen.append(
            activity.Signal(
                "in use",
                "until %s (%s)" % (activity.clock(state["last_in_use"]), why),
                at=state["last_in_use"],
            )
        )
    last = max(seen, key=lambda s: s.at) if seen else None
    idle_since = min(last.at if last else now, now)
    hold, hold_problem = activity.keep_until(conf["keep_file"], now, MAX_KEEP_S)
    idle_s, cap_s = conf.get("idle_s"), conf.get("max_uptime_s")
    out = {
        "checked_at": now,
        "in_use": bool(in_use),
        "reasons": [s.text() for s in in_use],
        "last_activity": last.text() if last and not in_use else None,
        "idle_since": None if in_use else idle_since,
        "idle_s": idle_s,
        "max_uptime_s": cap_s,
        "action": conf["action"],
        "hold_until": hold if hold > now else None,
        "stop_at": None,
        "stop_why": None,
        "hold_problem": hold_problem,
    }
    candidates = list(hard_stops(conf, started) if hard is None else hard)
    if idle_s and not in_use:
        candidates.append((max(idle_since + idle_s, hold), "idle for %s" % format_duration(idle_s)))
    if candidates:
        out["stop_at"], out["stop_why"] = min(candidates)
    return out


def warn_lead(conf: dict) -> float:
    """Lead time of the warning: warn_s, at most the idle limit, at least one minute."""
    lead = float(conf.get("warn_s") or WARN_S)
    if conf.get("idle_s"):
        lead = min(lead, float(conf["idle_s"]))
    return max(lead, 60.0)


def next_check(conf: dict, stop_at: float | None, warned: dict, now: float) -> float:
    """When the next check is due: the regular tick, or sooner, the moment the warning or the stop is."""
    wake = now + CHECK_S
    if stop_at is not None:
        due = max(stop_at, warned["at"] + NOTICE_S) if warned else stop_at - warn_lead(conf)
        if due > now:  # a moment already past was dealt with (or deliberately let be) by this check
            wake = min(wake, due)
    return wake


def evaluate(conf: dict, state: dict, now: float) -> dict:
    """Gather and decide without acting; state (in memory) learns what the next check must remember.

    The hard stops come first, from the config alone; should anything after them fail,
    the decision still carries them (and no idle stop, since the activity is unknown).
    """
    started = _started(conf)
    hard = hard_stops(conf, started)
    try:
        signals = gather(conf, state, now)
        # A fresh boot and a change of settings each start the idle clock again.
        signals.append(activity.Signal("machine", "booted", at=activity.machine_started()))
        changed = _mtime(conf.get("config_file"))
        if changed:
            signals.append(activity.Signal("autostop", "settings changed", at=changed))
        decision = decide(conf, state, signals, now, started, hard)
        decision["notes"] = [s.text() for s in signals if s.kind == "probe" or (not s.active and not s.at)]
    except Exception as exc:  # noqa: BLE001 - the hard stops must survive any failure of the rest
        decision = hard_only(conf, now, hard, "activity unknown: %s" % _why(exc))
    if decision["hold_problem"]:
        decision["notes"].append(decision["hold_problem"])
    return decision


def hard_only(conf: dict, now: float, hard: list, note: str) -> dict:
    """A decision from the hard stops alone, for a check that could not read the activity."""
    stop_at, why = min(hard) if hard else (None, None)
    return {
        "checked_at": now,
        "in_use": False,
        "reasons": [],
        "last_activity": None,
        "idle_since": None,
        "idle_s": conf.get("idle_s"),
        "max_uptime_s": conf.get("max_uptime_s"),
        "action": conf["action"],
        "hold_until": None,
        "stop_at": stop_at,
        "stop_why": why,
        "hold_problem": None,
        "notes": [note],
    }


def check(conf: dict, now: float | None = None) -> dict:
    """One run of the agent: decide, log, warn or stop. Returns the decision (also saved as state)."""
    now = time.time() if now is None else now
    files = paths(conf)
    state = load_json(files["state"])
    decision = evaluate(conf, state, now)
    stop_at = decision["stop_at"]
    warned = state.get("warned") or {}
    if stop_at is None:
        warned = {}
    elif warned and abs(warned.get("stop_at", 0) - stop_at) > warn_lead(conf):
        warned = {}  # the projected stop moved (new activity, a new hold): the old warning is void
    action = None
    if stop_at is not None and now >= stop_at - warn_lead(conf):
        if not warned:
            warned = {"at": now, "stop_at": stop_at}
            action = "warn"
        elif now >= max(stop_at, warned["at"] + NOTICE_S):
            action = "stop"
    state["warned"] = warned
    state.update(decision)
    kind = STOPS[conf["action"]]
    if action == "stop" and kind.jupyter_only and not jupyter_running(conf):
        action = None
        decision["notes"].append("Jupyter is not running: nothing to stop")
    elif action == "stop" and kind.stepwise:
        pass  # one step per check; the stop record carries the progress (see do_stop)
    elif action == "stop" and now - float(state.get("stopping") or 0) < RESTOP_AFTER:
        # A power-off takes a while; the next check must not pile a second one on top.
        action = None
        decision["notes"].append("power-off already requested at %s" % activity.clock(state["stopping"]))
    log(files["log"], now, describe(decision, action), conf)
    _bookkeeping(files, conf, now, "alerts", send_due_alerts, conf, state, now)
    if action == "warn":
        _bookkeeping(files, conf, now, "the warning", warn_terminals, conf, decision, now)
    elif action == "stop":
        state["stopping"] = now
        if state.get("alerted_stop") != stop_at:
            # Before acting: after a power-off there is no network to send it on.
            state["alerted_stop"] = stop_at
            save_state(files["state"], state, conf)
            alerts.send(conf, "stopping", stop_alert_text(decision), "stop_sign", _logger(files, conf))
        save_state(files["state"], state, conf)
        stop(conf, files, decision, now)
        alert_failed_stop(conf, files, state, stop_at)
    if action != "stop" and kind.stepwise:
        settle_droplet_stop(conf, files, decision, now)
    state["next_check"] = decision["next_check"] = next_check(conf, stop_at, warned, now)
    save_state(files["state"], state, conf)
    decision["action_taken"] = action
    return decision


def _bookkeeping(files: dict, conf: dict, now: float, what: str, fn, *args) -> None:
    """Alerts and warnings are worth a line in the log when they fail; they never hold up a stop."""
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001 - bookkeeping never blocks a stop
        log(files["log"], now, "%s failed: %s" % (what, _why(exc)), conf)


def _logger(files: dict, conf: dict):
    return lambda at, line: log(files["log"], at, line, conf)


def stop_alert_text(decision: dict) -> str:
    what = STOPS[decision["action"]].alert
    return "%s: %s" % (what, decision["stop_why"])


def send_due_alerts(conf: dict, state: dict, now: float) -> None:
    """Long uptime and 80 % of the budget: each once (per boot, per budget deadline)."""
    for key, value, title, text, tags in alerts.due(conf, state, now, activity.machine_started()):
        state[key] = value
        alerts.send(conf, title, text, tags, _logger(paths(conf), conf))


def alert_failed_stop(conf: dict, files: dict, state: dict, stop_at: float) -> None:
    """A stop that failed is worth a message: the machine is still billed. Once per due stop."""
    record = load_json(files["stopped"])
    if str(record.get("result", "")).startswith("FAILED") and state.get("alerted_failure") != stop_at:
        state["alerted_failure"] = stop_at
        alerts.send(conf, "stop FAILED", record["result"], "rotating_light", _logger(files, conf))


def watch(conf: dict, clock=time.time, sleep=time.sleep) -> int:
    """One run of the scheduler: check now, then again at each moment due before the next run.

    The systemd timer starts a run CHECK_S after the previous one started, so a run waits
    only for a warning or a stop due sooner than that. Cron starts one each minute, so a
    cron run keeps the same CHECK_S tick until just before the next minute. One run at a
    time: a run that finds another still watching leaves it to that one. Returns how many
    checks it made.
    """
    start = clock()
    until = start + CHECK_S
    if conf.get("scheduler") == "cron":
        until = max(until, start - start % 60 + 57)
    fd = os.open(os.path.join(conf["dir"], "agent.lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0
        checks = 0
        while True:
            decision = check(conf, clock())
            checks += 1
            if decision["action_taken"] == "stop" or decision["next_check"] >= until:
                return checks
            sleep(max(decision["next_check"] - clock(), 0.0))
    finally:
        os.close(fd)


def loop(config: str, clock=time.time, sleep=time.sleep) -> int:
    """Where neither systemd nor cron runs (a container): the timer's runs, CHECK_S apart, in one process.

    The config is read again before each run, so `padlab autostop` and `up` change it in place;
    the loop ends when the config says another scheduler (or none) keeps the agent.
    """
    while True:
        conf = load_json(config)
        if not conf or conf.get("scheduler") != "loop":
            return 0
        began = clock()
        watch(conf, clock, sleep)
        sleep(max(began + CHECK_S - clock(), 1.0))


def _mtime(path: str | None) -> float:
    try:
        return os.stat(path).st_mtime if path else 0.0
    except OSError:
        return 0.0


def _started(conf: dict) -> float:
    """What the hard cap measures: the machine's uptime, or Jupyter's when only the service stops."""
    if not STOPS[conf["action"]].jupyter_only:
        return activity.machine_started()
    try:
        pid = jupyter_pid(conf)
    except Exception:  # noqa: BLE001 - the pidfile is the Jupyter user's; no Jupyter, nothing to cap
        return 0.0
    return activity.process_start(pid) if pid else 0.0


def describe(decision: dict, action: str | None) -> str:
    """One log line: in use or idle, and why."""
    if decision["in_use"]:
        text = "in use: " + "; ".join(decision["reasons"])
    elif decision["idle_since"] is not None:
        idle = decision["checked_at"] - decision["idle_since"]
        text = "idle %s" % format_duration(idle)
        if decision["last_activity"]:
            text += " (latest: %s)" % decision["last_activity"]
    else:
        text = "idle"
    if decision["hold_until"]:
        text += "; held by padlab-keep until %s" % activity.clock(decision["hold_until"])
    if decision["stop_at"] is not None:
        left = decision["stop_at"] - decision["checked_at"]
        text += "; %s in %s" % (decision["stop_why"], format_duration(max(left, 0)))
    elif not decision["idle_s"]:
        text += "; autostop off"
    if action:
        text = {"warn": "WARN ", "stop": "STOP "}[action] + text
    if decision.get("notes"):
        text += " [" + "; ".join(decision["notes"]) + "]"
    return text


def log(path: str, now: float, line: str, conf: dict) -> None:
    """Append one line; past LOG_MAX_BYTES the log moves to .1 (one old file kept)."""
    try:
        if os.path.getsize(path) > LOG_MAX_BYTES:
            os.replace(path, path + ".1")
    except OSError:
        pass
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(now))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, ("%s  %s\n" % (stamp, line)).encode())
    finally:
        os.close(fd)
    _share(path, conf)


def _share(path: str, conf: dict) -> None:
    """Root's agent files stay readable by the workstation's user (its group), by nobody else."""
    gid = conf.get("gid")
    if gid is not None and os.geteuid() == 0:
        try:
            os.chown(path, 0, int(gid))
            os.chmod(path, 0o640)
        except OSError:
            pass


def save_state(path: str, state: dict, conf: dict) -> None:
    tmp = path + ".new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh)
    _share(tmp, conf)
    os.replace(tmp, path)


def warning_text(decision: dict, now: float) -> str:
    left = format_duration(max(decision["stop_at"] - now, 0))
    what = STOPS[decision["action"]].warning
    text = "padlab autostop: %s in %s (%s)." % (what, left, decision["stop_why"])
    if decision["stop_why"].startswith("idle"):
        text += " To keep it up: padlab-keep 1h"
    return text


def warn_terminals(conf: dict, decision: dict, now: float) -> int:
    """Write the warning to every terminal (ssh, mosh, Jupyter terminals); returns how many took it."""
    message = "\r\n\a*** %s ***\r\n" % warning_text(decision, now)
    delivered = 0
    try:
        names = sorted(n for n in os.listdir(TTY_DIR) if n.isdigit())
    except OSError:
        names = []
    for name in names:
        try:
            fd = os.open(os.path.join(TTY_DIR, name), os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            os.write(fd, message.encode())
            delivered += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    log(paths(conf)["log"], now, "warning shown on %d terminal(s)" % delivered, conf)
    return delivered


def stop(conf: dict, files: dict, decision: dict, now: float) -> None:
    """Record why, then act (stops.STOPS). Nothing here claims success before the action reports it."""
    kind = STOPS[conf["action"]]
    if kind.stepwise:
        record = resumed_stop(conf, files, decision, now)
        if record is None:
            return
    else:
        # The intent goes on disk before the act: a power-off may end this program before it returns.
        intent = (kind.intent or "%s started at %%s" % kind.name) % activity.clock(now)
        record = {"at": now, "reason": decision["stop_why"], "action": conf["action"], "result": intent}
    save_state(files["stopped"], record, conf)
    try:
        kind.run(conf, record, lambda: save_state(files["stopped"], record, conf))
    except Exception as exc:  # noqa: BLE001 - the log must say what failed, whatever it was
        left = "; %s" % kind.while_failed if kind.while_failed else ""
        record["result"] = "FAILED: %s%s; will try again at the next check" % (exc, left)
    save_state(files["stopped"], record, conf)
    log(files["log"], time.time(), "stop (%s): %s" % (conf["action"], record["result"]), conf)


def resumed_stop(conf: dict, files: dict, decision: dict, now: float) -> dict | None:
    """A stepwise stop (DigitalOcean's): the record to carry on with, or None when it is already done."""
    record = load_json(files["stopped"])
    this_boot = float(record.get("at") or 0) >= activity.machine_started()
    if this_boot and record.get("action") == do_stop.ACTION and record.get("done"):
        log(files["log"], now, "stop (%s): already done: %s" % (conf["action"], record["result"]), conf)
        return None
    if not (this_boot and do_stop.pending(record)):
        # A record from before this boot came with the snapshot this droplet was made from.
        record = {"at": now, "reason": decision["stop_why"], "action": conf["action"], "result": "started"}
    return record


def settle_droplet_stop(conf: dict, files: dict, decision: dict, now: float) -> None:
    """Close a snapshot-and-delete that is no longer under way.

    A record for another droplet came with the snapshot this droplet was re-created
    from: that stop succeeded. A record from this boot while no stop is due means
    the box is in use again: the droplet is kept.
    """
    record = load_json(files["stopped"])
    if not do_stop.pending(record):
        return
    here = str(conf["digitalocean"].get("droplet_id") or "")
    if here and record.get("droplet_id") and record["droplet_id"] != here:
        record["done"] = True
        record["result"] = "snapshot %s taken, droplet %s deleted; droplet %s was re-created from it" % (
            record.get("snapshot"),
            record["droplet_id"],
            here,
        )
    elif float(record.get("at") or 0) >= activity.machine_started():
        why = "; ".join(decision["reasons"]) or decision.get("last_activity") or "the stop is no longer due"
        record["cancelled"] = True
        record["result"] = "cancelled, droplet kept: in use again (%s); `padlab up` starts Jupyter" % why
    else:
        return
    save_state(files["stopped"], record, conf)
    log(files["log"], now, "stop (%s): %s" % (conf["action"], record["result"]), conf)


def keep(keep_file: str, state_file: str, args: list) -> int:
    """padlab-keep: hold the box up for a while, release the hold, or show where autostop stands."""
    now = time.time()
    if not args or args[0] in ("status", "-s"):
        print(status_line(load_json(state_file), now, activity.keep_until(keep_file, now, MAX_KEEP_S)[0]))
        return 0
    if args[0] in ("-h", "--help"):
        print(KEEP_HELP)
        return 0
    try:
        seconds = parse_duration(args[0], MAX_KEEP_S, "a padlab-keep hold")
    except ValueError as exc:
        sys.stderr.write("padlab-keep: %s\n" % exc)
        return 2
    if seconds is None:
        _write_keep(keep_file, "0")
        print("Hold released: autostop applies its idle limit again.")
        return 0
    until = now + seconds
    _write_keep(keep_file, "%.0f" % until)
    print("Held: autostop will not stop this box for idleness before %s." % activity.clock(until))
    return 0


KEEP_HELP = """usage: padlab-keep DURATION | off | status

Hold this box up for a while, whatever the idle limit says (a hard cap still applies).

Examples:
  padlab-keep 2h      keep it up for two hours
  padlab-keep off     release the hold
  padlab-keep         show where autostop stands"""


def _write_keep(path: str, text: str) -> None:
    tmp = path + ".new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    os.replace(tmp, path)


def status_line(state: dict, now: float, hold: float = 0.0) -> str:
    """'idle 12 min, stops in 33 min' or 'in use: kernel: busy (train.ipynb)' from the last check."""
    if not state.get("checked_at"):
        return "autostop has not run a check yet"
    if state.get("in_use"):
        text = "in use: " + "; ".join(state.get("reasons") or [])
    else:
        text = "idle %s" % format_duration(now - (state.get("idle_since") or now))
    if hold > now:
        text += ", held until %s" % activity.clock(hold)
    stop_at = state.get("stop_at")
    if stop_at is not None:
        verb = STOPS[state["action"]].status
        text += ", %s in %s (%s)" % (verb, format_duration(max(stop_at - now, 0)), state.get("stop_why"))
    elif not state.get("idle_s"):
        text += ", autostop off"
    return text


def main(argv: list) -> int:
    """padlab-agent check CONFIG | status CONFIG | loop CONFIG | keep KEEP_FILE STATE_FILE [ARGS]."""
    if argv[:1] == ["check"] and len(argv) == 2:
        conf = load_json(argv[1])
        if not conf:
            sys.stderr.write("padlab-agent: cannot read %s\n" % argv[1])
            return 1
        watch(conf)
        return 0
    if argv[:1] == ["status"] and len(argv) == 2:
        # A dry run for `padlab status`: what a check would decide now; nothing is logged or done.
        conf = load_json(argv[1])
        now = time.time()
        decision = evaluate(conf, load_json(paths(conf)["state"]), now) if conf else {}
        hold = activity.keep_until(conf["keep_file"], now, MAX_KEEP_S)[0] if conf else 0.0
        summary = status_line(decision, now, hold)
        if conf and not conf.get("scheduler") and (conf.get("idle_s") or conf.get("max_uptime_s")):
            summary += " (but nothing runs the agent here: neither systemd nor cron)"
        print(json.dumps({"decision": decision, "summary": summary}))
        return 0 if conf else 1
    if argv[:1] == ["keep"] and len(argv) >= 3:
        return keep(argv[1], argv[2], argv[3:])
    if argv[:1] == ["loop"] and len(argv) == 2:
        return loop(argv[1])
    sys.stderr.write(
        "usage: padlab-agent check CONFIG | status CONFIG | loop CONFIG | keep KEEP_FILE STATE [DURATION|off]\n"
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
