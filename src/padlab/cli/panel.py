"""`padlab panel`: the web control panel for an iPad, its password, API tokens and service."""

from __future__ import annotations

import sys

import click

from padlab.cli import cli
from padlab.cli.common import CONTEXT, read_password

DEFAULT_PORT = 8443
DEFAULT_LISTEN = "0.0.0.0"

listen_option = click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    help="Address to listen on (0.0.0.0: every interface).",
)
port_option = click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="HTTPS port.")
name_option = click.option(
    "--name",
    "names",
    multiple=True,
    help="A DNS name the iPad uses for this machine (added to the certificate; passkeys need one).",
)


def _set_password(password_stdin: bool, generate_password: bool, required: bool) -> None:
    """The first run sets the panel password; later runs keep it unless asked."""
    from padlab.panel import store

    if not (password_stdin or generate_password or required):
        return
    password, generated = read_password(password_stdin, generate_password, what="panel")
    store.set_password(password)
    store.end_all_sessions()
    if generated:
        sys.stderr.write(f"Your panel password (shown once, write it down): {password}\n")


@cli.group("panel", invoke_without_command=True, context_settings=CONTEXT)
@listen_option
@port_option
@name_option
@click.option("--password-stdin", is_flag=True, help="Set the panel password from the first line of stdin.")
@click.option("--generate-password", is_flag=True, help="Set an easy-to-type panel password, printed once.")
@click.pass_context
def panel(
    ctx: click.Context,
    listen: str,
    port: int,
    names: tuple[str, ...],
    password_stdin: bool,
    generate_password: bool,
) -> None:
    """Run the web control panel in the foreground: start, stop and connect from an iPad.

    \b
    It serves HTTPS with a certificate from padlab's CA (which the iPad trusts
    for Juno), prints its URL and a QR code, and asks for a panel password the
    first time. Scripts and Siri use its API with a token (`padlab panel token`).
    This machine holds padlab's CA key and cloud keys: see docs/panel.md.

    \b
    Examples:
      padlab panel --generate-password
      padlab panel --port 8443 --name gpu-home.lan
      padlab panel install        # run it at boot (systemd user unit)
      padlab panel token add ipad-shortcuts
    """
    if ctx.invoked_subcommand is not None:
        return
    from padlab import card, tls
    from padlab.panel import server, store

    server.check_stack()
    _set_password(password_stdin, generate_password, required=not store.has_password())
    info = server.prepare(listen, port, list(names))
    click.echo(f"padlab panel: {info['urls'][0]}")
    for url in info["urls"][1:]:
        click.echo(f"           also {url}")
    click.echo(f"padlab CA SHA-256: {tls.pretty_fingerprint(info['ca_sha256'])}")
    click.echo("  (compare it on the iPad's /ca page before you trust the profile)")
    click.echo(card.qr_text(info["urls"][0]))
    click.echo("Ctrl-C stops the panel.", err=True)
    server.serve(listen, port, info)


@panel.command("passwd", context_settings=CONTEXT)
@click.option("--password-stdin", is_flag=True, help="Read the new password from the first line of stdin.")
@click.option("--generate-password", is_flag=True, help="Make an easy-to-type passphrase and print it once.")
def passwd(password_stdin: bool, generate_password: bool) -> None:
    """Change the panel password; everyone signed in is signed out.

    \b
    Example:
      padlab panel passwd --generate-password
    """
    _set_password(password_stdin, generate_password, required=True)
    click.echo("Panel password changed; every session was signed out.")


@panel.group("token", context_settings=CONTEXT)
def token() -> None:
    """API tokens for scripts and Siri Shortcuts (Authorization: Bearer TOKEN).

    \b
    Examples:
      padlab panel token add ipad-shortcuts
      padlab panel token list
      padlab panel token revoke ipad-shortcuts
    """


@token.command("add", context_settings=CONTEXT)
@click.argument("label")
@click.option(
    "--scope",
    type=click.Choice(["read", "start-stop", "admin"]),
    default="start-stop",
    show_default=True,
    help="read: status and costs; start-stop: also start, stop, keep, get; admin: also move profiles in.",
)
def token_add(label: str, scope: str) -> None:
    """Make a token and print it once; only its hash is kept.

    \b
    Examples:
      padlab panel token add ipad-shortcuts
      padlab panel token add dashboard --scope read
    """
    from padlab.panel import store

    value = store.add_token(label, scope)
    sys.stderr.write(f"API token {label!r} (shown once; put it in the Shortcut's Authorization header):\n")
    click.echo(value)


@token.command("list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def token_list(as_json: bool) -> None:
    """List token labels and when they were made (never the tokens).

    \b
    Example:
      padlab panel token list
    """
    import datetime

    from padlab import ui
    from padlab.panel import store

    tokens = store.list_tokens()
    if as_json:
        ui.print_json(tokens)
        return
    if not tokens:
        click.echo("no API tokens: padlab panel token add LABEL")
    for t in tokens:
        made = datetime.datetime.fromtimestamp(t["created_at"]).strftime("%Y-%m-%d %H:%M")
        click.echo(f"{t['label']}  scope {t['scope']}  (made {made})")


@token.command("revoke", context_settings=CONTEXT)
@click.argument("label")
def token_revoke(label: str) -> None:
    """Revoke a token: calls with it get 401 at once.

    \b
    Example:
      padlab panel token revoke ipad-shortcuts
    """
    from padlab.panel import store

    store.revoke_token(label)
    click.echo(f"Token {label!r} revoked.")


@panel.command("install", context_settings=CONTEXT)
@listen_option
@port_option
@name_option
def install(listen: str, port: int, names: tuple[str, ...]) -> None:
    """Run the panel as a service that starts at boot (a systemd user unit, as you).

    \b
    Example:
      padlab panel install --port 8443
    """
    from padlab.panel import server, service

    server.check_stack()
    out = service.install(listen, port, list(names))
    boot = (
        "starts at boot"
        if out["starts_at_boot"]
        else "starts at your login (enable lingering to start at boot)"
    )
    click.echo(f"Installed {out['unit']}: {out['active']}, {boot}.")


@panel.command("uninstall", context_settings=CONTEXT)
def uninstall() -> None:
    """Stop the panel service and remove its unit (password, tokens and certificate are kept).

    \b
    Example:
      padlab panel uninstall
    """
    from padlab.panel import service

    out = service.uninstall()
    click.echo(f"Removed {out['unit']}.")


@panel.command("status", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """Whether the panel service is installed, enabled and running.

    \b
    Example:
      padlab panel status
    """
    from padlab import ui
    from padlab.panel import service

    out = service.status()
    if as_json:
        ui.print_json(out)
    elif not out["installed"]:
        click.echo("The panel is not installed as a service (padlab panel install).")
    else:
        click.echo(f"{out['unit']}: {out['active']}, {out['enabled']}")
