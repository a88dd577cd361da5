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


@click.group(context_settings=CONTEXT)
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
    if ctx.invoked_subcommand not in HOME_AWARE and not {"-h", "--help"} & set(ctx.protected_args + ctx.args):
        from padlab import home

        home.current().only_here(str(ctx.invoked_subcommand))


# Commands that run against whichever home `padlab remote` chose (padlab.home); the others run
# only on this machine's home, and refuse in one line while the CLI uses a panel.
HOME_AWARE = {None, "status", "up", "down", "costs", "get", "list", "remote", "panel", "ca"}


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
