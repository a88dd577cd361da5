"""`padlab panel install`: a systemd user unit that starts the panel at boot, as the current user.

KillMode=process: a local Jupyter that the panel started runs detached and must
outlive a restart of the panel. Lingering lets the user's units start at boot
without a login.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from padlab.errors import PadlabError
from padlab.fileio import write_atomic

UNIT = "padlab-panel.service"


def unit_path() -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "systemd" / "user" / UNIT


def _systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    if not shutil.which("systemctl"):
        raise PadlabError(
            "systemd is not on this machine, so padlab cannot run the panel as a service",
            "run `padlab panel` from your init system or a terminal multiplexer instead",
        )
    proc = subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise PadlabError(
            f"systemctl --user {' '.join(args)} failed: {why}",
            "the user's systemd must be running (log in once, or `loginctl enable-linger $USER` as root)",
        )
    return proc


def unit_text(listen: str, port: int, names: list[str]) -> str:
    argv = [sys.executable, "-m", "padlab", "panel", "--listen", listen, "--port", str(port)]
    for name in names:
        argv += ["--name", name]
    env = f"Environment=PADLAB_HOME={os.environ['PADLAB_HOME']}\n" if os.environ.get("PADLAB_HOME") else ""
    return (
        "[Unit]\n"
        "Description=padlab web control panel\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n\n"
        "[Service]\n"
        f"ExecStart={' '.join(argv)}\n"
        f"{env}"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "KillMode=process\n"
        "UMask=0077\n"
        "NoNewPrivileges=yes\n"
        "PrivateTmp=yes\n\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def install(listen: str, port: int, names: list[str]) -> dict[str, Any]:
    from padlab.panel import store

    if not store.has_password():
        raise PadlabError("the panel has no password yet", "run `padlab panel passwd` first")
    path = unit_path()
    write_atomic(path, unit_text(listen, port, names), mode=0o644)
    _systemctl("daemon-reload")
    _systemctl("enable", "--now", UNIT)
    linger = (
        subprocess.run(
            ["loginctl", "enable-linger", os.environ.get("USER", "")], capture_output=True, text=True
        )
        if shutil.which("loginctl")
        else None
    )
    return {
        "unit": str(path),
        "starts_at_boot": bool(linger and linger.returncode == 0),
        **status(),
    }


def uninstall() -> dict[str, Any]:
    path = unit_path()
    if path.exists():
        _systemctl("disable", "--now", UNIT, check=False)
        path.unlink()
        _systemctl("daemon-reload", check=False)
    return {"unit": str(path), "installed": False}


def status() -> dict[str, Any]:
    path = unit_path()
    out: dict[str, Any] = {"unit": str(path), "installed": path.exists(), "active": None, "enabled": None}
    if path.exists() and shutil.which("systemctl"):
        out["active"] = _systemctl("is-active", UNIT, check=False).stdout.strip() or "unknown"
        out["enabled"] = _systemctl("is-enabled", UNIT, check=False).stdout.strip() or "unknown"
    return out
