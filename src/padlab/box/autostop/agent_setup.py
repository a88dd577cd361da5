"""Install and update the autostop agent: its config, its Jupyter credential, its timer, padlab-keep.

On a system box the agent runs as root from root-owned files (/var/lib/padlab),
because the workstation's user can write the box prefix and Jupyter runs as that
user: the code root runs, and the token, must be out of a notebook's reach.
"""

from __future__ import annotations

import json
import os
import pkgutil
import secrets
import sys

from .. import venv
from ..report import BoxError, Report
from ..service import Layout
from ..system import ROOT_DIR, Host, cron_running, has_systemd, sha256
from . import agent, do_stop, lambda_stop, runpod_stop

EXTENSION = "padlab_agent_ext"
# Same as agent_ext.HASH_FILE: that module runs inside Jupyter and imports nothing of ours.
HASH_FILE = "padlab-agent.sha256"


class BoxKey:
    """A key padlab sends for a cloud stop (DigitalOcean's token, Lambda's second key): where it
    comes in (the request's autostop part and field), the file it is kept in, how to get one."""

    def __init__(self, part: str, field: str, file: str, config_field: str, cloud: str, noun: str) -> None:
        self.part, self.field, self.file, self.config_field = part, field, file, config_field
        self.cloud, self.noun = cloud, noun


# The stops a cloud's API makes, by action: each module's PART of the request's autostop
# part and settings(raw, req), the agent's config part.
CLOUD_STOPS = {m.ACTION: m for m in (do_stop, lambda_stop, runpod_stop)}
# Stop action -> its key. RunPod's stop needs none from padlab: the pod has its own (runpod_stop.py).
BOX_KEYS = {
    do_stop.ACTION: BoxKey(
        do_stop.PART, "token", "digitalocean-token", "token_file", "DigitalOcean", "its own API token"
    ),
    lambda_stop.ACTION: BoxKey(lambda_stop.PART, "key", "lambda-key", "key_file", "Lambda", "an API key"),
}


class AgentLayout:
    """Where one workstation's agent keeps its files on the box."""

    def __init__(self, layout: Layout) -> None:
        self.system = layout.system
        if self.system:
            self.dir = os.path.join(ROOT_DIR, "agent-%s" % layout.name)
            self.keep_cmd = "/usr/local/bin/padlab-keep"
        else:
            self.dir = os.path.join(layout.prefix, "agent-%s" % layout.name)
            self.keep_cmd = os.path.join(layout.prefix, "bin", "padlab-keep")
        self.config = os.path.join(self.dir, "config.json")
        self.token = os.path.join(self.dir, "token")
        # The agent's own copy of padlab's CA: the one in TLS_DIR is the Jupyter user's to replace.
        self.ca = os.path.join(self.dir, "ca.crt")
        self.do_token = os.path.join(self.dir, BOX_KEYS[do_stop.ACTION].file)
        self.lambda_key = os.path.join(self.dir, BOX_KEYS[lambda_stop.ACTION].file)
        self.alert_url = os.path.join(self.dir, "alert-url")
        self.program = os.path.join(self.dir, "padlab_box.pyz")
        self.runner = os.path.join(self.dir, "padlab-agent")
        self.loop_pid = os.path.join(self.dir, "loop.pid")
        self.state = os.path.join(self.dir, "state.json")
        self.log = os.path.join(self.dir, "agent.log")
        self.stopped = os.path.join(self.dir, "stopped.json")
        self.keep_file = os.path.join(layout.run_dir, "keep-until")
        self.token_hash = os.path.join(layout.jupyter_dir, HASH_FILE)
        self.ext_config = os.path.join(layout.jupyter_dir, "jupyter_server_config.d", EXTENSION + ".json")
        self.timer = "padlab-agent-%s.timer" % layout.name
        self.unit = "padlab-agent-%s.service" % layout.name
        self.cron_file = "/etc/cron.d/padlab-agent-%s" % layout.name
        self.cron_marker = "# padlab-agent:%s" % layout.name


def settings(req: dict) -> dict:
    """The agent's policy from the request's autostop part (request.AUTOSTOP has the fields and defaults).

    The client chooses the policy (its defaults depend on the provider); a request
    without one leaves autostop off rather than inventing one on the box.
    """
    raw = req["autostop"]
    out = {key: raw[key] for key in ("idle_s", "max_uptime_s", "action", "warn_s", "gpu_threshold")}
    # The budget (padlab/money.py): a hard deadline, and when 80 % of it is spent; absent when unset.
    out.update((key, raw[key]) for key in MONEY_FIELDS if raw[key] is not None)
    return out


MONEY_FIELDS = ("deadline_at", "deadline_why", "budget_warn_at", "budget_warn_text")


def watching(conf: dict) -> bool:
    """Whether the agent has anything to do: a limit, a budget deadline or a timed alert."""
    alert = conf.get("alert") or {}
    return bool(conf["idle_s"] or conf["max_uptime_s"] or conf.get("deadline_at") or alert.get("after_s"))


def prepare_jupyter(host: Host, layout: Layout, report: Report) -> bool:
    """Token, its hash for Jupyter and the extension; returns whether Jupyter must restart to load it."""
    paths = AgentLayout(layout)
    host.makedirs(os.path.dirname(paths.dir), mode=0o755, root=paths.system)
    host.makedirs(paths.dir, mode=0o755 if paths.system else 0o700, root=paths.system)
    token = (host.read(paths.token) or b"").decode().strip()
    if not token:
        token = secrets.token_hex(32)
        host.write(paths.token, token + "\n", mode=0o600, root=paths.system)
    changed = host.write(
        paths.token_hash, sha256(token) + "\n", mode=0o600, owner=layout.user, root=layout.system
    )
    source = pkgutil.get_data(__package__, "agent_ext.py") or b""
    module = os.path.join(venv.purelib(layout.venv, layout.user), EXTENSION + ".py")
    restart = host.write(module, source, mode=0o644, owner=layout.user, root=layout.system)
    enable = json.dumps({"ServerApp": {"jpserver_extensions": {EXTENSION: True}}}, indent=2) + "\n"
    host.makedirs(os.path.dirname(paths.ext_config), mode=0o700, owner=layout.user, root=layout.system)
    restart |= host.write(paths.ext_config, enable, mode=0o600, owner=layout.user, root=layout.system)
    report.step("agent-credential", changed or restart, "token for the autostop agent, 0600")
    return restart


KEEP_PIN = "keep"


def install(
    host: Host,
    layout: Layout,
    req: dict,
    program: bytes,
    kind: str,
    report: Report,
    pin: str | None = KEEP_PIN,
) -> None:
    """Config, runner, padlab-keep and the schedule; a timer where systemd runs, else cron, else a warning.

    ``pin``: root's file with the public certificate Jupyter serves (acme_setup's chain), which the
    activity probe compares with the server's; None where Jupyter serves padlab's CA's; by default
    (`padlab autostop`, which changes no certificate) the one the config has.
    """
    paths = AgentLayout(layout)
    if pin == KEEP_PIN:
        pin = _current_pin(host, paths)
    conf = settings(req)
    listen = req["listen"]
    gid = _gid(layout.user) if paths.system else None
    conf.update(
        {
            "dir": paths.dir,
            "config_file": paths.config,
            "keep_file": paths.keep_file,
            "service_kind": kind,
            "scheduler": scheduler(paths),
            "gid": gid,
            "layout": {
                "name": layout.name,
                "prefix": layout.prefix,
                "etc": layout.etc,
                "user": layout.user,
                "system": layout.system,
            },
            "jupyter": {
                "host": {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(listen, listen),
                "port": int(req["port"]),
                "ca": paths.ca,
                "pin": pin,
                "token_file": paths.token,
            },
        }
    )
    enabled = bool(conf["idle_s"] or conf["max_uptime_s"])
    changed = False
    keys = {}
    for action, box_key in BOX_KEYS.items():
        keys[action], key_changed = key_settings(
            host, paths, req, box_key, enabled and conf["action"] == action
        )
        changed |= key_changed
    cloud = CLOUD_STOPS.get(conf["action"])
    if cloud is not None:  # which machine, where the API is; the key's file where padlab sent one
        raw = req["autostop"][cloud.PART] or {}
        conf[cloud.PART] = {**cloud.settings(raw, req), **keys.get(conf["action"], {})}
    conf["alert"], alert_changed = alert_settings(host, paths, req)
    changed |= alert_changed
    enabled = watching(conf)
    text = json.dumps(conf, indent=2, sort_keys=True) + "\n"
    changed |= host.write(paths.config, text, mode=0o600, root=paths.system)
    # From the client (up); a box set up before the agent kept its own copy takes Jupyter's once.
    ca_pem = req.get("ca_pem") or (
        None if host.read(paths.ca) else host.read(os.path.join(layout.tls_dir, "ca.crt"))
    )
    if ca_pem:
        changed |= host.write(paths.ca, ca_pem, mode=0o644, root=paths.system)
    new_program = bool(program) and host.write(paths.program, program, mode=0o644, root=paths.system)
    new_program |= host.write(paths.runner, runner_script(paths), mode=0o755, root=paths.system)
    changed |= new_program
    changed |= host.write(paths.keep_cmd, keep_script(paths), mode=0o755, root=paths.system)
    how = schedule(host, paths, conf["scheduler"], enabled, report, restart=new_program)
    limits = "idle limit %s" % agent.format_duration(conf["idle_s"])
    if conf["max_uptime_s"]:
        limits += ", max uptime %s" % agent.format_duration(conf["max_uptime_s"])
    if conf.get("deadline_at"):
        limits += ", budget deadline %s" % agent.activity.clock(conf["deadline_at"])
    report.step("autostop", changed or how[0], "%s, action %s, %s" % (limits, conf["action"], how[1]))
    report.data["autostop"] = facts(host, layout)


def _current_pin(host: Host, paths: AgentLayout) -> str | None:
    """The pin of the config in place (root's own file on a system box), None without one."""
    try:
        conf = json.loads(host.read(paths.config) or b"{}")
    except ValueError:
        return None
    pin = (conf.get("jupyter") or {}).get("pin") if isinstance(conf, dict) else None
    return pin if isinstance(pin, str) and pin else None


def key_settings(host: Host, paths: AgentLayout, req: dict, key: BoxKey, used: bool) -> tuple:
    """({config field: the key's file}, changed): the key padlab sent for a cloud stop.

    The key arrives in the request (stdin, never argv) and is kept in a file of its own,
    0600 and root's on system boxes; the config names only the file. A key the stop in use
    does not need is not kept.
    """
    path = os.path.join(paths.dir, key.file)
    raw = req["autostop"][key.part] or {}
    value = str(raw.get(key.field) or "").strip()
    if not used:
        if host.read(path) is None:
            return {key.config_field: path}, False
        host.run(["rm", "-f", path], root=paths.system)
        return {key.config_field: path}, True
    changed = False
    if value:
        changed = host.write(path, value + "\n", mode=0o600, root=paths.system)
    elif not host.read(path):
        raise BoxError(
            "autostop on %s needs %s on the box, and none was sent" % (key.cloud, key.noun),
            "run `padlab login %s --autostop-token`, then `padlab up` again" % key.part,
            code="no_autostop_token",
        )
    return {key.config_field: path}, changed


def alert_settings(host: Host, paths: AgentLayout, req: dict) -> tuple:
    """(config part, changed): the alert topic URL in a file of its own (0600, root's), the threshold."""
    raw = req["alerts"] or {}
    url = str(raw.get("ntfy") or "").strip()
    changed = False
    if url:
        changed = host.write(paths.alert_url, url + "\n", mode=0o600, root=paths.system)
    elif host.read(paths.alert_url) is not None:
        host.run(["rm", "-f", paths.alert_url], root=paths.system)
        changed = True
    return {"url_file": paths.alert_url if url else None, "after_s": raw.get("after_s")}, changed


def runner_script(paths: AgentLayout) -> str:
    """The one entry point the timer, cron and padlab-keep use: this Python, isolated, the copied program.

    -S as well as -I: the agent is standard library only, and site's .pth files cost a
    third of a check's start-up for nothing.
    """
    return """#!{py} -IS
# Written by padlab: the autostop agent (padlab-agent check CONFIG | keep ...).
import sys
sys.path.insert(0, {program!r})
from padlab_box.autostop.agent import main
sys.exit(main(sys.argv[1:]))
""".format(py=sys.executable, program=paths.program)


def keep_script(paths: AgentLayout) -> str:
    return """#!/bin/sh
# Written by padlab: hold this box up, e.g. `padlab-keep 2h`; `padlab-keep` alone shows autostop's view.
exec '{runner}' keep '{keep}' '{state}' "$@"
""".format(runner=paths.runner, keep=paths.keep_file, state=paths.state)


def scheduler(paths: AgentLayout) -> str | None:
    """A systemd timer where systemd runs and we may add system units, else cron, else a loop process.

    The loop is for containers (a RunPod pod): no systemd as PID 1 and no cron. It is started by
    `up`, as root on a system box, and ends with the container.
    """
    if has_systemd() and (paths.system or os.geteuid() == 0):
        return "systemd"
    if cron_running():
        return "cron"
    return "loop" if paths.system and (os.geteuid() == 0 or _sudo_ok()) else None


def _sudo_ok() -> bool:
    import subprocess

    return subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0


def schedule(
    host: Host, paths: AgentLayout, kind: str | None, enabled: bool, report: Report, restart: bool = False
) -> tuple:
    """(changed, how): run the check every agent.CHECK_S (cron: each minute), or remove it when autostop is off.

    `restart`: the program changed under a long-lived loop, which must not keep running the old one.
    """
    if kind == "systemd":
        return _systemd(host, paths, enabled)
    if kind == "cron":
        return _cron(host, paths, enabled)
    if kind == "loop":
        return _loop(host, paths, enabled, restart)
    if enabled:
        report.warn(
            "autostop cannot run here: neither systemd nor cron is running; "
            "install and start cron (e.g. apt-get install cron), then run `padlab up` again"
        )
    return False, "not scheduled (no systemd or cron)"


def timer_units(paths: AgentLayout) -> tuple:
    service = """[Unit]
Description=padlab autostop check

[Service]
Type=oneshot
ExecStart={runner} check {config}
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
MemoryMax=128M
TimeoutStartSec=120
# A check holds nothing that must finish (its files are written whole or not at all): at a
# shutdown, its own power-off included, it gets 5 s after SIGTERM instead of systemd's 90 s. CI
# saw a power-off wait 90 s on this unit ("State 'final-sigterm' timed out"), the agent's
# `systemctl poweroff` still waiting on the bus that the shutdown was stopping.
TimeoutStopSec=5s
""".format(runner=paths.runner, config=paths.config)
    timer = """[Unit]
Description=padlab autostop check every {tick} s

[Timer]
# {tick} s after the last check started, however long it took on a loaded box (from its end, a
# 10 s check made it 30 s apart); a check due sooner (a warning, the stop) is waited for by the
# run itself, to the second, and a run still waiting when the tick comes is not started twice.
# A first check as soon as the timer starts (boot, `padlab up`).
OnActiveSec=1s
OnUnitActiveSec={tick}s
AccuracySec=1s

[Install]
WantedBy=timers.target
""".format(tick=int(agent.CHECK_S))
    return service, timer


def _systemd(host: Host, paths: AgentLayout, enabled: bool) -> tuple:
    unit_dir = "/etc/systemd/system"
    if not enabled:
        gone = host.read(os.path.join(unit_dir, paths.timer)) is not None
        if gone:
            host.run(["systemctl", "disable", "--now", paths.timer], root=True, check=False)
            host.run(
                ["rm", "-f", os.path.join(unit_dir, paths.timer), os.path.join(unit_dir, paths.unit)],
                root=True,
            )
            host.run(["systemctl", "daemon-reload"], root=True)
        return gone, "off"
    service, timer = timer_units(paths)
    changed = host.write(os.path.join(unit_dir, paths.unit), service, mode=0o644, root=True)
    changed |= host.write(os.path.join(unit_dir, paths.timer), timer, mode=0o644, root=True)
    if changed:
        host.run(["systemctl", "daemon-reload"], root=True)
    active = host.run(["systemctl", "is-active", paths.timer], check=False).stdout.strip() == "active"
    if changed or not active:
        host.run(["systemctl", "enable", paths.timer], root=True)
        # A restart, not just a start: a timer already running keeps the schedule it started with.
        host.run(["systemctl", "restart", paths.timer], root=True)
        changed = True
    return changed, "systemd timer %s" % paths.timer


def _cron(host: Host, paths: AgentLayout, enabled: bool) -> tuple:
    line = "* * * * * %s check %s >/dev/null 2>&1" % (paths.runner, paths.config)
    if paths.system:
        why = "the autostop agent each minute; a run checks every %d s until the next" % agent.CHECK_S
        want = "# Written by padlab: %s.\n%s\n" % (why, line.replace("* * * * * ", "* * * * * root ", 1))
        if not enabled:
            gone = host.read(paths.cron_file) is not None
            if gone:
                host.run(["rm", "-f", paths.cron_file], root=True)
            return gone, "off"
        return host.write(paths.cron_file, want, mode=0o644, root=True), "cron (%s)" % paths.cron_file
    import subprocess

    current = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    lines = current.stdout.splitlines() if current.returncode == 0 else []
    kept = [x for x in lines if not x.endswith(paths.cron_marker)]
    wanted = kept + (["%s %s" % (line, paths.cron_marker)] if enabled else [])
    if wanted == lines:
        return False, "cron (user crontab)" if enabled else "off"
    subprocess.run(
        ["crontab", "-"], input="\n".join(wanted) + "\n", text=True, check=True, capture_output=True
    )
    return True, "cron (user crontab)" if enabled else "off"


def _loop_pid(host: Host, paths: AgentLayout) -> int | None:
    """The running loop's PID: root's pidfile, and a live process running this runner's loop."""
    raw = host.read(paths.loop_pid)
    try:
        pid = int((raw or b"").decode().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            argv = fh.read().split(b"\0")
    except (ValueError, OSError):
        return None
    return pid if paths.runner.encode() in argv and b"loop" in argv else None


def _loop(host: Host, paths: AgentLayout, enabled: bool, restart: bool = False) -> tuple:
    """A detached `padlab-agent loop CONFIG`, root's: it re-reads the config before each run.

    A new program replaces the running loop: Python's zipimport keeps the old zip's index, so
    the old process would fail its next import from the new file (the stop's own, at worst).
    """
    import signal
    import subprocess
    import time

    pid = _loop_pid(host, paths)
    if pid is not None and (restart or not enabled):
        host.run(["kill", "-%d" % signal.SIGTERM, str(pid)], root=paths.system, check=False)
        deadline = time.monotonic() + 10
        while _loop_pid(host, paths) == pid and time.monotonic() < deadline:
            time.sleep(0.05)
        if _loop_pid(host, paths) == pid:
            raise BoxError("the old autostop loop (pid %d) did not end" % pid, "run `padlab up` again")
    if not enabled:
        return pid is not None, "off"
    if pid is not None and not restart:
        return False, "a loop process (no systemd or cron here), pid %d" % pid
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    script = 'echo $$ > "$1" && exec "$2" loop "$3" >> "$4" 2>&1'
    argv = sudo + ["sh", "-c", script, "sh", paths.loop_pid, paths.runner, paths.config, paths.log]
    subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, close_fds=True)  # fmt: skip
    deadline = time.monotonic() + 10
    while _loop_pid(host, paths) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = _loop_pid(host, paths)
    if pid is None:
        raise BoxError("the autostop loop did not start", "see %s on the box" % paths.log)
    return True, "a loop process (no systemd or cron here), pid %d" % pid


def _gid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid


def facts(host: Host, layout: Layout) -> dict:
    """What `padlab status` shows: what a check would decide now, and the last stop.

    The runner does the dry run because on a system box only root may read the
    agent's token; the login user reaches it through sudo, as for every system file.
    """
    paths = AgentLayout(layout)
    out = {"summary": "autostop is not set up here; run `padlab up`", "decision": None}
    if host.read(paths.runner) is not None:
        proc = host.run([paths.runner, "status", paths.config], root=paths.system, check=False, timeout=60)
        try:
            out.update(json.loads(proc.stdout))
        except ValueError:
            out["summary"] = "the agent gave no answer: %s" % (proc.stderr.strip().splitlines() or ["?"])[-1]
    out["last_stop"] = agent.load_json(paths.stopped) or None
    out["keep_command"] = paths.keep_cmd
    return out


def keep(host: Host, layout: Layout, seconds: int | None) -> dict:
    """`padlab keep` from the client: the same file padlab-keep writes on the box."""
    import time

    paths = AgentLayout(layout)
    until = time.time() + seconds if seconds else 0
    host.write(paths.keep_file, "%.0f\n" % until, mode=0o644, owner=layout.user, root=layout.system)
    return facts(host, layout)


def read_log(host: Host, layout: Layout, lines: int) -> str:
    raw = host.read(AgentLayout(layout).log) or b""
    return "\n".join(raw.decode(errors="replace").splitlines()[-lines:])
