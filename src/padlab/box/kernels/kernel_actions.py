"""The kernels actions: list the box's environments (read only) and build one on demand."""

from __future__ import annotations

import os

from .. import venv
from ..context import Context
from ..report import BoxError
from . import kernels


def listing(ctx: Context) -> None:
    """Every environment, ours and the image's, with what `import torch` sees in each (CUDA)."""
    layout, report = ctx.layout, ctx.report
    envs = kernels.discover(layout)
    if os.path.isdir(layout.venv):
        own = {
            "name": "python3",
            "display_name": "Python 3 (padlab's Jupyter)",
            "kind": "jupyter",
            "fix": None,
        }
        own.update(interpreter=venv.python_in(layout.venv), env=layout.venv)
        own.update(
            kernels.probe(layout, own["interpreter"]) or {"python": None, "torch": None, "ipykernel": None}
        )
        envs = [own] + envs
    for e in envs:
        e.update(cuda=None, device=None)
        if e.get("torch") and ctx.req["cuda"]:
            report.stage("asking torch about CUDA in %s" % (e.get("env") or e["interpreter"]))
            e.update(kernels.cuda(layout, e["interpreter"]))
    report.data["kernels"] = [dict(kernels.public(e), cuda=e["cuda"], device=e["device"]) for e in envs]
    report.data["default"] = kernels.default_kernel(envs)


def create(ctx: Context) -> None:
    """Build (or find already built) one declared kernel, then register it with the others."""
    host, layout, report = ctx.host, ctx.layout, ctx.report
    spec = ctx.req["kernel"] or {}
    if not spec:
        raise BoxError(
            "no kernel in the request", "this is a bug in padlab, please report it", code="bad_request"
        )
    kernels.build(host, layout, spec["name"], spec["want"], report)
    envs = kernels.discover(layout)
    changed = kernels.register(host, layout, envs)
    report.step("kernels", changed, ", ".join(e["display_name"] for e in envs if e["ipykernel"]))
    report.data["kernel"] = next(
        (kernels.public(e) for e in envs if e["name"] == kernels.PREFIX + spec["name"]), None
    )
