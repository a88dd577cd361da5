"""Box actions for autostop: apply new settings, hold the box up, read the agent's log."""

from __future__ import annotations

from . import agent_setup, service
from .bootstrap import layout_from
from .report import BoxError, Report
from .system import Host


def apply(req: dict, program: bytes) -> dict:
    """`padlab autostop`: new limits take effect without touching Jupyter or its kernels."""
    report = Report()
    host = Host(sudo=bool(req.get("system")))
    layout = layout_from(req)
    host.check_sudo()
    if not host.read(layout.config):
        raise BoxError("this workstation is not set up yet", "run `padlab up` first", code="not_set_up")
    agent_setup.install(host, layout, req, program, service.choose(host, layout), report)
    return report.as_dict()


def keep(req: dict) -> dict:
    """`padlab keep`: the same hold that `padlab-keep` on the box writes."""
    report = Report()
    host = Host(sudo=bool(req.get("system")))
    layout = layout_from(req)
    host.check_sudo()
    report.data["autostop"] = agent_setup.keep(host, layout, req.get("keep_s"))
    report.step("keep", True, "held" if req.get("keep_s") else "released")
    return report.as_dict()


def logs(req: dict) -> dict:
    """`padlab logs`: the tail of the agent's log, or of Jupyter's."""
    report = Report()
    host = Host(sudo=bool(req.get("system")))
    layout = layout_from(req)
    lines = int(req.get("lines") or 50)
    if req.get("agent"):
        report.data["text"] = agent_setup.read_log(host, layout, lines)
    elif service.choose(host, layout) == "systemd":
        cmd = ["journalctl", "-u", layout.unit, "-n", str(lines), "--no-pager", "-o", "short-iso"]
        report.data["text"] = host.run(cmd, root=True, check=False).stdout.rstrip()
    else:
        raw = host.read(layout.log) or b""
        report.data["text"] = "\n".join(raw.decode(errors="replace").splitlines()[-lines:])
    return report.as_dict()
