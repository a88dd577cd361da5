"""padlab kernels: the box's Python environments as Jupyter kernels, and kernels built on demand."""

from __future__ import annotations

from typing import Any

import click

from padlab.cli import cli
from padlab.cli.common import CONTEXT


class _OptionalName(click.Group):
    """NAME is optional before a subcommand (`padlab kernels create KNAME`), and options may follow it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] in self.commands:
            args = ["", *args]
        if not any(a in self.commands for a in args):
            ctx.allow_interspersed_args = True  # `padlab kernels gpu --json`
        return super().parse_args(ctx, args)


@cli.group(cls=_OptionalName, invoke_without_command=True, context_settings=CONTEXT)
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the kernels as JSON.")
@click.option("--no-cuda", is_flag=True, help="Skip asking torch about CUDA (it imports torch in each env).")
@click.pass_context
def kernels(ctx: click.Context, name: str | None, as_json: bool, no_cuda: bool) -> None:
    """List the box's Python environments as kernels: interpreter, Python, torch, CUDA.

    \b
    Every `up` registers each environment that has ipykernel (the image's PyTorch
    included) as a kernel; one with torch or TensorFlow but no ipykernel is listed
    with the one command that adds it. padlab never changes those environments.

    \b
    Examples:
      padlab kernels gpu
      padlab kernels gpu --json
      padlab kernels gpu create fastai --packages "fastai fastbook"
    """
    ctx.obj = {"name": name or None}
    if ctx.invoked_subcommand:
        return
    from padlab import home, ui

    where = home.current()
    shown = where.name_of(name or None)
    with ui.progress(f"padlab kernels {shown or ''}".rstrip()) as stage:
        data = where.kernels(name or None, not no_cuda, stage)
    if as_json:
        ui.print_json(data)
        return
    from rich.table import Table

    table = Table("kernel", "interpreter", "Python", "torch", "CUDA", "note")
    for k in data["kernels"]:
        table.add_row(
            k["name"] + (" [green](default)[/green]" if k["name"] == data["default"] else ""),
            k["interpreter"],
            k.get("python") or "-",
            k.get("torch") or "-",
            _cuda_text(k),
            f"not a kernel yet: {k['fix']}" if k.get("fix") else k.get("display_name") or "",
        )
    ui.console().print(table)


def _cuda_text(k: dict[str, Any]) -> str:
    if not k.get("torch") or k.get("cuda") is None:
        return "-"
    return f"yes: {k['device']}" if k["cuda"] else "no"


@kernels.command(context_settings=CONTEXT)
@click.argument("kname")
@click.option("--packages", default="", help='Packages to install, space-separated, e.g. "fastai fastbook".')
@click.option(
    "--requirements",
    type=click.Path(exists=True, dir_okay=False),
    help="A requirements.txt (read here, sent to the box).",
)
@click.option(
    "--python", "python", help="Python version for the environment, e.g. 3.11 (default: the box's)."
)
@click.option("--torch-backend", help="uv's --torch-backend, e.g. cu126 or auto (needs the PyTorch index).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def create(
    ctx: click.Context,
    kname: str,
    packages: str,
    requirements: str | None,
    python: str | None,
    torch_backend: str | None,
    as_json: bool,
) -> None:
    """Build a kernel with uv on the box (under padlab's prefix) and register it.

    \b
    Progress streams from the box. Running it again as asked changes nothing.
    The profile remembers the kernel, so `up` on a re-created machine builds it again.
    Kernels share uv's cache on the box.

    \b
    Examples:
      padlab kernels gpu create fastai --packages "fastai fastbook"
      padlab kernels create fastai --packages fastai        # the default profile
      padlab kernels gpu create exp --requirements requirements.txt --python 3.11
      padlab kernels gpu create cu --packages torch --torch-backend cu126
    """
    from pathlib import Path

    from padlab import home, ui
    from padlab import kernels as kmod

    text = Path(requirements).read_text() if requirements else None
    want = kmod.declaration(packages.split(), text, python, torch_backend)
    where = home.current()
    shown = where.name_of(ctx.obj["name"])
    with ui.progress(" ".join(w for w in ("padlab kernels", shown, "create", kname) if w)) as stage:
        data = where.kernel_create(ctx.obj["name"], kname, want, stage)
    if as_json:
        ui.print_json(data)
        return
    kernel = data["kernel"] or {}
    verb = "built" if data["changed"] else "already built as asked"
    click.echo(
        f"kernel {kname!r} {verb}: {kernel.get('display_name', kname)} ({kernel.get('interpreter', '?')})"
    )
