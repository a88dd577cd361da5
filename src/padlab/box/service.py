"""Keep Jupyter running and bring it back at boot: systemd, else cron @reboot, else a pidfile.

All three start the same launcher script, which records its PID, so stopping
and status work the same way whichever keeps it alive.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import time

from .report import BoxError, Report
from .system import Host, cron_running, has_systemd, login_user, read_plain

STOP_TIMEOUT = 15.0


class Layout:
    """Where one workstation's files live on the box, and who runs it.

    ``user`` is the user Jupyter (and every kernel and terminal) runs as, who owns
    the notebooks and the prefix: the login user, or on a system box whose login
    user is root, padlab's unprivileged ``padlab-jupyter`` (box/account.py).
    Never root on a system box. Run things "as Jupyter would" with
    ``host.as_user(layout.user)``.
    """

    def __init__(self, name: str, prefix: str, etc: str, user: str, system: bool) -> None:
        self.name = name
        self.prefix = prefix
        self.etc = etc
        self.user = user
        self.system = system  # files owned by root under /opt and /etc, written through sudo
        self.venv = os.path.join(prefix, "venv")
        self.lib = os.path.join(prefix, "lib", "padlab_box.pyz")
        self.launcher = os.path.join(prefix, "bin", "padlab-jupyter-%s" % name)
        self.run_dir = os.path.join(prefix, "run")
        self.pidfile = os.path.join(self.run_dir, "jupyter-%s.pid" % name)
        self.log_dir = os.path.join(prefix, "log")
        self.log = os.path.join(self.log_dir, "jupyter-%s.log" % name)
        self.jupyter_dir = os.path.join(etc, "jupyter")
        self.config = os.path.join(self.jupyter_dir, "jupyter_server_config.json")
        self.tls_dir = os.path.join(etc, "tls")
        self.key = os.path.join(self.tls_dir, "server.key")
        self.cert = os.path.join(self.tls_dir, "server.crt")
        self.cookie_secret = os.path.join(etc, "cookie_secret")
        self.unit = "padlab-%s.service" % name


def launcher_script(layout: Layout) -> str:
    return """#!/bin/sh
# Written by padlab: starts Jupyter for workstation '{name}'.
umask 077
echo $$ > '{pidfile}'
export JUPYTER_CONFIG_DIR='{jdir}'
export JUPYTER_RUNTIME_DIR='{run}/jupyter-{name}'
exec '{venv}/bin/jupyter' lab
""".format(
        name=layout.name,
        pidfile=layout.pidfile,
        jdir=layout.jupyter_dir,
        run=layout.run_dir,
        venv=layout.venv,
    )


def unit_file(layout: Layout) -> str:
    # Hardening that leaves notebooks free to use the GPU, the network and the user's files.
    return """[Unit]
Description=padlab Jupyter workstation '{name}'
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={user}
ExecStart={launcher}
Restart=always
RestartSec=2
KillMode=mixed
TimeoutStopSec=20
NoNewPrivileges=true
PrivateTmp=true
ProtectSystem=full
ProtectControlGroups=true
ProtectKernelModules=true
LockPersonality=true
# Jupyter writes a 'migrated' marker into its config dir once ~/.ipython exists.
ReadWritePaths={jdir}

[Install]
WantedBy=multi-user.target
""".format(name=layout.name, user=layout.user, launcher=layout.launcher, jdir=layout.jupyter_dir)


def choose(host: Host, layout: Layout) -> str:
    """systemd when it is PID 1 and we may write system units; else cron; else detached."""
    if has_systemd() and (layout.system or os.geteuid() == 0):
        return "systemd"
    if cron_running():
        return "cron"
    return "detached"


PF_KTHREAD = 0x00200000  # the kernel's flag for its own threads (/proc/PID/stat, field 9)


def read_pid(host: Host, layout: Layout) -> int | None:
    """The PID of this workstation's live Jupyter, or None.

    The pidfile is the Jupyter user's to write, and root acts on this PID (the
    agent stops Jupyter, `down` signals it), so the PID counts only when that
    process belongs to the Jupyter user and is not a kernel thread.
    """
    raw = read_small(layout.pidfile, host)
    if not raw:
        return None
    try:
        pid = int(raw.decode().strip())
        uid = pwd.getpwnam(layout.user).pw_uid
    except (ValueError, KeyError):
        return None
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            cmdline = fh.read().replace(b"\0", b" ")
        with open("/proc/%d/stat" % pid) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open("/proc/%d/status" % pid) as fh:
            owner = [int(line.split()[1]) for line in fh if line.startswith("Uid:")][0]
        proc_state, flags = fields[0], int(fields[6])
    except (OSError, IndexError, ValueError):
        return None
    if proc_state in ("Z", "X") or flags & PF_KTHREAD or owner != uid:
        return None
    # An empty cmdline is a process in the middle of execve (jupyter re-execs jupyter-lab).
    return pid if not cmdline.strip() or b"jupyter" in cmdline else None


def read_small(path: str, host: Host | None = None, limit: int = 64) -> bytes | None:
    """The head of a small file the Jupyter user may have replaced: never through a link, never a
    FIFO or device (an open or read there could wait forever). Through sudo only when unreadable."""
    try:
        return read_plain(path, limit)
    except PermissionError:
        return host.read(path) if host is not None and getattr(host, "sudo", False) else None
    except OSError:
        return None


def process_started(pid: int) -> float:
    """Wall-clock start time of a process, from /proc, for the uptime on the card."""
    with open("/proc/%d/stat" % pid) as fh:
        ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as fh:
        uptime = float(fh.read().split()[0])
    return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")


def status(host: Host, layout: Layout, kind: str, enabled: bool | None = None) -> dict:
    """Running, since when, and enabled at boot (``enabled``: as the caller already asked systemd)."""
    pid = read_pid(host, layout)
    out = {"kind": kind, "running": pid is not None, "pid": pid, "started_at": None, "enabled": None}
    if pid is not None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            out["started_at"] = process_started(pid)
    if kind == "systemd" and enabled is not None:
        out["enabled"] = enabled
    elif kind == "systemd":
        out["enabled"] = (
            host.run(["systemctl", "is-enabled", layout.unit], check=False).stdout.strip() == "enabled"
        )
    elif kind == "cron":
        out["enabled"] = _cron_line(layout) in _crontab(host, layout)
    return out


def install(host: Host, layout: Layout, kind: str, report: Report) -> bool:
    """Make the workstation start at boot; returns whether anything changed."""
    if kind == "systemd":
        path = "/etc/systemd/system/%s" % layout.unit
        changed = host.write(path, unit_file(layout), mode=0o644, root=True)
        if changed:
            host.run(["systemctl", "daemon-reload"], root=True)
        enabled = host.run(["systemctl", "is-enabled", layout.unit], check=False).stdout.strip() == "enabled"
        if not enabled:
            host.run(["systemctl", "enable", layout.unit], root=True)
            changed = True
        report.step("service", changed, "systemd unit %s, Restart=always, enabled at boot" % layout.unit)
        return changed
    if kind == "cron":
        lines = _crontab(host, layout)
        line = _cron_line(layout)
        changed = line not in lines
        if changed:
            _write_crontab(host, layout, [x for x in lines if not x.endswith(_marker(layout))] + [line])
        report.step("service", changed, "cron @reboot entry")
        return changed
    report.step("service", False, "detached process with a pidfile")
    if has_systemd():  # systemd runs, but its system units are root's to write
        why = "padlab runs as %s here, and a systemd service needs root (or cron for an @reboot line)" % (
            login_user()
        )
    else:
        why = "neither systemd nor cron runs here"
    report.warn("%s, so Jupyter will not come back after a reboot: run `padlab up` again after one" % why)
    return False


def start(host: Host, layout: Layout, kind: str, restart: bool) -> bool:
    """Start (or restart) Jupyter; returns whether it acted."""
    running = read_pid(host, layout) is not None
    if running and not restart:
        return False
    if kind == "systemd":
        host.run(["systemctl", "restart" if running else "start", layout.unit], root=True)
        _wait_pidfile(host, layout)
        return True
    if running:
        stop_process(host, layout)
    _spawn(host, layout)
    return True


def stop(host: Host, layout: Layout, kind: str, disable: bool) -> bool:
    """Stop Jupyter cleanly; with disable, also keep it from starting at boot."""
    acted = False
    if kind == "systemd":
        active = host.run(["systemctl", "is-active", layout.unit], check=False).stdout.strip()
        if disable:
            host.run(["systemctl", "disable", layout.unit], root=True, check=False)
        if active in ("active", "activating", "reloading"):
            host.run(["systemctl", "stop", layout.unit], root=True)
            acted = True
    elif kind == "cron" and disable:
        lines = _crontab(host, layout)
        kept = [x for x in lines if not x.endswith(_marker(layout))]
        if kept != lines:
            _write_crontab(host, layout, kept)
            acted = True
    return stop_process(host, layout) or acted


def stop_process(host: Host, layout: Layout) -> bool:
    """SIGTERM, wait, then SIGKILL: Jupyter gets time to shut kernels down."""
    pid = read_pid(host, layout)
    if pid is None:
        return False
    _signal(host, pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if read_pid(host, layout) is None:
            return True
        time.sleep(0.2)
    _signal(host, pid, signal.SIGKILL)
    while read_pid(host, layout) is not None and time.monotonic() < deadline + 5:
        time.sleep(0.1)
    return True


def _signal(host: Host, pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        host.run(["kill", "-%d" % sig, str(pid)], root=True, check=False)


def _spawn(host: Host, layout: Layout) -> None:
    os.makedirs(layout.log_dir, exist_ok=True)
    fd = os.open(layout.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    argv = host.as_user(layout.user) + [layout.launcher]
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True, close_fds=True
    )
    os.close(fd)
    deadline = time.monotonic() + 10
    while read_pid(host, layout) is None:
        if proc.poll() is not None:
            raise BoxError("Jupyter exited at once (code %s)" % proc.returncode, "see %s" % layout.log)
        if time.monotonic() > deadline:
            raise BoxError("Jupyter did not start within 10 s", "see %s" % layout.log)
        time.sleep(0.05)


def _wait_pidfile(host: Host, layout: Layout, timeout: float = 10.0) -> None:
    """systemctl returns before the launcher wrote its PID; callers then probe a live Jupyter."""
    deadline = time.monotonic() + timeout
    while read_pid(host, layout) is None:
        if time.monotonic() > deadline:
            raise BoxError(
                "Jupyter did not start within %d s" % timeout,
                "see its log on the box: journalctl -u %s" % layout.unit,
            )
        time.sleep(0.05)


def _marker(layout: Layout) -> str:
    return "# padlab:%s" % layout.name


def _cron_line(layout: Layout) -> str:
    return "@reboot %s >> %s 2>&1 %s" % (layout.launcher, layout.log, _marker(layout))


def _crontab_cmd(host: Host, layout: Layout) -> list:
    """The Jupyter user's crontab, whoever runs the box program."""
    if not host.as_user(layout.user):
        return ["crontab"]
    return (["sudo", "-n"] if host.sudo else []) + ["crontab", "-u", layout.user]


def _crontab(host: Host, layout: Layout) -> list:
    proc = subprocess.run(_crontab_cmd(host, layout) + ["-l"], capture_output=True, text=True)
    return proc.stdout.splitlines() if proc.returncode == 0 else []


def _write_crontab(host: Host, layout: Layout, lines: list) -> None:
    proc = subprocess.run(
        _crontab_cmd(host, layout) + ["-"], input="\n".join(lines) + "\n", capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise BoxError(
            "could not update the crontab: %s" % proc.stderr.strip(), "check `crontab -l` on the box"
        )
