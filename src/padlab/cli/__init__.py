"""padlab's command line: parse, call the modules that do the work, print. No logic lives here.

Commands live in small modules by area and register on the one group below;
each imports what it needs inside the command, so `padlab --help` stays instant.
"""

from __future__ import annotations

import os
import sys

import click

from padlab import __version__
from padlab.cli.common import CONTEXT
from padlab.errors import PadlabError


class _Padlab(click.Group):
    """Keeps the subcommand's own arguments for the group's callback (click hands it none):
    `--help` always works, and a refusal names the profile."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta["padlab.rest"] = list(rest)
        return name, command, rest


@click.group(cls=_Padlab, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="padlab")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Turn a GPU machine into a notebook workstation for an iPad or any thin client.

    \b
    A password-protected JupyterLab over HTTPS that comes back after every reboot,
    with a connection card (URL, CA, QR code) for Juno or a browser.

    \b
    Quick start on this machine:
      padlab init lab --provider local
      padlab up --generate-password
      padlab ca export --out ~/Desktop     # AirDrop padlab-ca.mobileconfig to the iPad

    PADLAB_HOME, when set, holds everything padlab writes on this machine.
    `padlab remote login URL` makes a padlab panel the home instead.
    """
    rest = ctx.meta.get("padlab.rest", [])
    if ctx.invoked_subcommand not in HOME_AWARE and not {"-h", "--help"} & set(rest):
        from padlab import home

        names = [a for a in rest if not a.startswith("-")]
        home.current().only_here(str(ctx.invoked_subcommand), names[0] if names else None)


# Commands that run against whichever home `padlab remote` chose (padlab.home); the others run
# only on this machine's home, and refuse in one line while the CLI uses a panel.
HOME_AWARE = {
    None,
    "status",
    "up",
    "down",
    "costs",
    "get",
    "list",
    "remote",
    "panel",
    "ca",
    "passwd",
    "kernels",
    "card",
    "autostop",
    "keep",
    "budget",
    "logs",
    "default",
    "destroy",
    "init",
    "login",
    "doctor",
    "alert",
}


from padlab.cli import autostop, core, files, kernels, money, panel, remote, shell  # noqa: E402,F401  (registers the commands)


def _finished() -> None:
    """A command that succeeded ends here, as `padlab ssh` does (exec): its output flushed, its files
    closed and synced (fileio), nothing left but the interpreter's teardown of every module it
    imported (~5 ms of a no-op `up`, several times that on a busy machine). Where a thread still
    works (a pool that joins at exit), Python's own exit waits for it as usual."""
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return  # a reader that went (`| head`): Python's own exit says so, as before
    os._exit(0)


def main() -> None:
    """Entry point: known failures print one line with a fix, never a traceback."""
    try:
        cli.main(standalone_mode=False, prog_name="padlab")
        _finished()
    except PadlabError as exc:
        from padlab import ui

        ui.error(str(exc))
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.stderr.write("padlab: interrupted\n")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("padlab: interrupted; run the same command again to finish\n")
        sys.exit(130)
    except Exception as exc:  # the last resort: one line, traceback only on request
        if os.environ.get("PADLAB_DEBUG"):
            raise
        sys.stderr.write(
            f"padlab: internal error: {type(exc).__name__}: {exc} (PADLAB_DEBUG=1 shows details)\n"
        )
        sys.exit(70)
