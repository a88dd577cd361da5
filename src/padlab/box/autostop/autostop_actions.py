"""Box actions for autostop: apply new settings, hold the box up, read the agent's log."""

from __future__ import annotations

from .. import service
from ..context import Context
from ..report import BoxError
from . import agent_setup


def apply(ctx: Context) -> None:
    """`padlab autostop`: new limits take effect without touching Jupyter or its kernels."""
    host, layout = ctx.host, ctx.layout
    if not host.read(layout.config):
        raise BoxError("this workstation is not set up yet", "run `padlab up` first", code="not_set_up")
    agent_setup.install(host, layout, ctx.req, ctx.program, service.choose(host, layout), ctx.report)


def keep(ctx: Context) -> None:
    """`padlab keep`: the same hold that `padlab-keep` on the box writes."""
    seconds = ctx.req["keep_s"]
    ctx.report.data["autostop"] = agent_setup.keep(ctx.host, ctx.layout, seconds)
    ctx.report.step("keep", True, "held" if seconds else "released")


def logs(ctx: Context) -> None:
    """`padlab logs`: the tail of the agent's log, or of Jupyter's."""
    req, report, host, layout = ctx.req, ctx.report, ctx.host, ctx.layout
    lines = req["lines"]
    if req["agent"]:
        report.data["text"] = agent_setup.read_log(host, layout, lines)
    elif service.choose(host, layout) == "systemd":
        cmd = ["journalctl", "-u", layout.unit, "-n", str(lines), "--no-pager", "-o", "short-iso"]
        report.data["text"] = host.run(cmd, root=True, check=False).stdout.rstrip()
    else:
        raw = host.read(layout.log) or b""
        report.data["text"] = "\n".join(raw.decode(errors="replace").splitlines()[-lines:])
