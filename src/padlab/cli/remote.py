"""`padlab remote`: use a panel server as this CLI's home, come back, and move profiles there."""

from __future__ import annotations

import sys

import click

from padlab.cli import cli
from padlab.cli.common import CONTEXT
from padlab.errors import PadlabError

SCOPES = ("read", "start-stop", "admin")


@cli.group("remote", context_settings=CONTEXT)
def remote() -> None:
    """Which home this CLI uses: this machine, or a padlab panel (profiles, keys and ledger there).

    \b
    After `padlab remote login`, every command runs on the panel through its API,
    with the same output, but those that connect from here to the box (ssh, mosh,
    push, pull) or change its ssh setup, which say what to use instead;
    `padlab remote logout` comes back.
    A profile lives in one home: `padlab remote push NAME` moves it, with its keys.

    \b
    Examples:
      padlab remote login https://panel.example.com:8443
      padlab remote login https://10.0.0.5:8443 --ca-fingerprint 3A:7F:...
      echo "$TOKEN" | padlab remote login https://panel.example.com:8443 --token-stdin
      padlab remote status
      padlab remote push gpu
      padlab remote logout
    """


def _label() -> str:
    import re
    import secrets
    import socket

    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:24] or "cli"
    return f"cli-{host}-{secrets.token_hex(3)}"


@remote.command("login", context_settings=CONTEXT)
@click.argument("url")
@click.option("--token", help="An API token from the panel (padlab panel token add LABEL --scope ...).")
@click.option("--token-stdin", is_flag=True, help="Read the API token from the first line of stdin.")
@click.option("--password-stdin", is_flag=True, help="Read the panel password from stdin; it mints a token.")
@click.option(
    "--scope",
    type=click.Choice(SCOPES),
    default="start-stop",
    show_default=True,
    help="What a minted token may do: read; start-stop (up, down, get); admin (also remote push).",
)
@click.option("--ca-fingerprint", help="SHA-256 of padlab's CA as `padlab panel` printed it (no public CA).")
@click.option("--json", "as_json", is_flag=True, help="Print the saved login (never the token) as JSON.")
def login(
    url: str,
    token: str | None,
    token_stdin: bool,
    password_stdin: bool,
    scope: str,
    ca_fingerprint: str | None,
    as_json: bool,
) -> None:
    """Point this CLI at a padlab panel: every command then runs there.

    \b
    The panel's certificate is verified: by public CAs, or by padlab's CA of the
    panel, whose SHA-256 is shown once to compare with the one `padlab panel`
    printed (or given with --ca-fingerprint), then pinned. With a token, it is
    checked; without one, the panel password (asked, or --password-stdin) mints
    a token of --scope. The URL and token are kept 0600 on this machine.

    \b
    Examples:
      padlab remote login https://panel.example.com:8443
      padlab remote login https://10.0.0.5:8443 --ca-fingerprint 3A:7F:... --scope admin
      echo "$TOKEN" | padlab remote login https://panel.example.com:8443 --token-stdin
    """
    from padlab import ui
    from padlab.home import client

    if token_stdin:
        token = sys.stdin.readline().strip()
    password = None
    if token is None:
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        elif sys.stdin.isatty():
            import getpass

            password = getpass.getpass("Panel password: ")
        else:
            raise PadlabError(
                "a token or the panel password is needed, and there is no terminal to ask on",
                "pass --token-stdin, --token TOKEN or --password-stdin",
            )

    def confirm(pretty: str) -> bool:
        if not sys.stdin.isatty() or password_stdin or token_stdin:
            return False
        click.echo(f"The panel's certificate is signed by padlab's CA with SHA-256\n  {pretty}", err=True)
        return click.confirm("Is that the fingerprint `padlab panel` printed on its machine?", err=True)

    saved = client.login(url, token, password, scope, _label(), ca_fingerprint, confirm)
    if as_json:
        ui.print_json(saved)
        return
    trust = "padlab's CA, pinned" if saved["ca_pem"] else "a public CA"
    click.echo(
        f"Logged in to {saved['url']} (token {saved['label']}, scope {saved['scope']}, certificate: {trust})."
    )
    click.echo("padlab commands now run there; `padlab remote logout` comes back to this machine.")


@remote.command("logout", context_settings=CONTEXT)
def logout() -> None:
    """Come back to this machine's home (the panel's token stays valid until revoked there).

    \b
    Example:
      padlab remote logout
    """
    from padlab.home import config

    try:
        saved = config.load()
    except PadlabError:
        saved = None  # an unreadable login is removed all the same
    if not config.remove():
        click.echo("Not logged in to a panel: this machine is the home.")
        return
    url = saved["url"] if saved else "the panel"
    click.echo(f"Logged out of {url}: this machine is the home again.")
    if saved and saved.get("label"):
        click.echo(f"To end the token too, on the panel: padlab panel token revoke {saved['label']}")


@remote.command("status", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """Which home this CLI uses (reads only the local login; no call to the panel).

    \b
    Examples:
      padlab remote status
      padlab remote status --json
    """
    from padlab import paths, ui
    from padlab.home import config

    saved = config.load()
    out = (
        {"home": "remote", "url": saved["url"], "label": saved.get("label"), "scope": saved.get("scope"),
         "pinned_ca": bool(saved.get("ca_pem"))}
        if saved
        else {"home": "local", "path": str(paths.data_dir())}
    )  # fmt: skip
    if as_json:
        ui.print_json(out)
    elif saved:
        click.echo(f"home: the panel at {out['url']} (token {out['label']}, scope {out['scope']})")
    else:
        click.echo(f"home: this machine ({out['path']})")


@remote.command("push", context_settings=CONTEXT)
@click.argument("name")
@click.option(
    "--copy-key",
    is_flag=True,
    help="The profile reaches its box with your own ssh key (~/.ssh/...): send the panel a copy; yours stays.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def push(name: str, copy_key: bool, as_json: bool) -> None:
    """Move a profile, its cloud key, its ssh key and its ledger rows to the panel; no copy stays here.

    \b
    Needs a token of scope admin. The profile leaves this machine before it is
    sent: an interrupted move is finished by running the same command again, and
    a panel that refuses it gives it back.
    The ssh key padlab reaches the box with goes too: a key in padlab's home moves
    (unless another profile here uses it); your own key is copied only with --copy-key.

    \b
    Examples:
      padlab remote push gpu
      padlab remote push box --copy-key     # a profile that uses your ~/.ssh key
    """
    from padlab import ui
    from padlab.home import client

    out = client.push(name, copy_key)
    if as_json:
        ui.print_json(out)
        return
    click.echo(f"Moved {name!r} to {out['url']}; it is gone from this machine.")
    if out.get("credentials_kept_here"):
        click.echo("Its cloud key was copied: other profiles here still use it.")
    if out.get("ssh_key_kept_here"):
        click.echo(f"Its ssh key {out['ssh_key']} was copied and stays here too.")
