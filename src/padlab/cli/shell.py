"""Commands for workstations reached over ssh: ssh, mosh, ssh-config, forget-host-key."""

from __future__ import annotations

import sys

import click

from padlab.cli import cli
from padlab.cli.common import CONTEXT, load_profile
from padlab.errors import PadlabError

PASSTHROUGH = dict(CONTEXT, ignore_unknown_options=True, allow_interspersed_args=False)


def _target(name: str | None):  # -> (Profile, ssh.Target)
    """The profile and how to reach its machine; refuses profiles that are not reached over ssh."""
    from padlab import state
    from padlab.providers import get
    from padlab.providers.base import Machine

    profile = load_profile(name)
    target = get(profile).target(Machine(state="unknown", host=state.load(profile.name).get("host")))
    if target is None:
        raise PadlabError(
            f"{profile.name!r} runs on this machine (provider {profile.provider}), not over ssh",
            "use a profile made with --provider ssh or a cloud provider",
        )
    return profile, target


@cli.command("ssh", context_settings=PASSTHROUGH)
@click.argument("name", required=False)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def ssh_cmd(name: str | None, command: tuple[str, ...]) -> None:
    """Open a shell on the workstation's machine, or run COMMAND there.

    \b
    Uses your ssh (agent, ~/.ssh/config) with padlab's known_hosts and the
    shared connection that `padlab up` opened, so it starts at once.

    \b
    Examples:
      padlab ssh box
      padlab ssh box -- nvidia-smi -L
    """
    import os
    import shlex

    from padlab import ssh

    _, target = _target(name)
    remote = shlex.join(command[1:] if command[:1] == ("--",) else command) or None
    argv = ssh.command(target, remote, tty=remote is None or sys.stdin.isatty())
    os.execvp(argv[0], argv)


@cli.command("mosh", context_settings=PASSTHROUGH)
@click.argument("name", required=False)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def mosh_cmd(name: str | None, command: tuple[str, ...]) -> None:
    """Open a mosh session to the workstation's machine (survives sleep and roaming).

    \b
    Needs mosh on this machine (apt install mosh, brew install mosh) and a
    `padlab up` first: it uses the ssh_config entry and the UDP ports (60001-60010)
    that up set up.

    \b
    Examples:
      padlab mosh box
      padlab mosh box -- tmux new -A -s main
    """
    import os
    import shutil

    from padlab import sshconfig
    from padlab.providers.remote import MOSH_PORTS

    profile, _ = _target(name)
    if not shutil.which("mosh"):
        raise PadlabError(
            "mosh is not installed on this machine", "install it: apt install mosh, or brew install mosh"
        )
    if not sshconfig.has_entry(profile.name):
        raise PadlabError(f"{profile.name!r} has no ssh entry yet", f"run `padlab up {profile.name}` first")
    cmd = command[1:] if command[:1] == ("--",) else command
    argv = sshconfig.mosh_argv(profile.name, list(cmd), MOSH_PORTS)
    os.execvp(argv[0], argv)


@cli.command("ssh-config", context_settings=CONTEXT)
@click.option("--install", is_flag=True, help="Add the Include line to ~/.ssh/config without asking.")
@click.option("--print", "show", is_flag=True, help="Print padlab's ssh_config.")
def ssh_config(install: bool, show: bool) -> None:
    """Show padlab's ssh_config, and offer to include it from ~/.ssh/config.

    \b
    padlab writes one Host entry per workstation (its current address, padlab's
    known_hosts, the shared connection) to PADLAB_HOME/ssh_config on every `up`.
    With one `Include` line at the top of ~/.ssh/config, plain `ssh NAME`,
    `mosh NAME`, scp and VS Code reach them too. padlab never edits
    ~/.ssh/config unless you say yes here or pass --install (a symlinked one is
    changed where it points). A NAME your own config already has as a Host keeps
    going where you set it; padlab's entry for it is padlab-NAME.

    \b
    Examples:
      padlab ssh-config
      padlab ssh-config --install
      padlab ssh-config --print
    """
    from padlab import sshconfig

    path = sshconfig.path()
    if show:
        click.echo(path.read_text() if path.exists() else f"# no entries yet: run `padlab up` ({path})")
        return
    if sshconfig.include_installed():
        click.echo(f"~/.ssh/config already includes {path}")
        return
    if not install and sys.stdin.isatty():
        install = click.confirm(
            f"Add `{sshconfig.include_line()}` at the top of ~/.ssh/config?", default=False
        )
    if install:
        sshconfig.install_include()
        click.echo(f"Added `{sshconfig.include_line()}` to {sshconfig.user_config()}")
    from padlab import profiles

    for name in profiles.names():
        if sshconfig.host_name(name) != name:
            click.echo(
                f"Your ~/.ssh/config has its own `Host {name}`, so padlab's entry is `{sshconfig.host_name(name)}`"
            )
    else:
        click.echo(
            f"padlab's entries are in {path}; to use them from plain ssh, add this line at the top of "
            f"~/.ssh/config (or run `padlab ssh-config --install`):\n  {sshconfig.include_line()}"
        )


@cli.command("forget-host-key", context_settings=CONTEXT)
@click.argument("name", required=False)
def forget_host_key(name: str | None) -> None:
    """Drop the ssh host key padlab recorded for a workstation's machine.

    \b
    Only after you know the machine was reinstalled: the next connection then
    trusts the new key on first use. padlab refuses a changed key until then.

    \b
    Example:
      padlab forget-host-key box
    """
    from padlab import ssh

    profile, target = _target(name)
    seen = ssh.resolved(target)
    host, port = seen.get("hostname") or target.host, int(seen.get("port") or 22)
    ssh.close_master(target)
    if ssh.forget_host(host, port, target.key_alias):
        click.echo(
            f"Forgot the host key of {profile.name!r} ({ssh.known_hosts_name(host, port)}); "
            f"`padlab up {profile.name}` trusts the next one."
        )
    else:
        click.echo(
            f"padlab had no host key recorded for {profile.name!r} ({ssh.known_hosts_name(host, port)})."
        )
