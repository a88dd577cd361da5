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

allow_api_url_option = click.option(
    "--allow-api-url",
    "allow_api_urls",
    multiple=True,
    metavar="URL",
    help="An API URL besides each provider's own that the panel may send a stored key to (a staging API).",
)

allow_padlab_ca_option = click.option(
    "--allow-padlab-ca",
    is_flag=True,
    help="With a public certificate: a workstation whose box gets none may make padlab's CA here.",
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
@click.option(
    "--public-cert", hidden=True, help="Key and chain of a public certificate (the system service's)."
)
@allow_api_url_option
@allow_padlab_ca_option
@click.pass_context
def panel(
    ctx: click.Context,
    listen: str,
    port: int,
    names: tuple[str, ...],
    password_stdin: bool,
    generate_password: bool,
    public_cert: str | None,
    allow_api_urls: tuple[str, ...],
    allow_padlab_ca: bool,
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
      sudo padlab panel install --system   # an always-on host: system service, public cert
      padlab panel install --on panelhost  # the same onto an ssh host, from a computer
      padlab panel token add ipad-shortcuts
    """
    if ctx.invoked_subcommand is not None:
        return
    from padlab import card, tls
    from padlab.panel import server, store

    server.check_stack()
    _set_password(password_stdin, generate_password, required=not store.has_password())
    info = server.prepare(listen, port, list(names), public_cert)
    info["allow_api_urls"] = _checked_urls(allow_api_urls)
    info["allow_padlab_ca"] = allow_padlab_ca
    click.echo(f"padlab panel: {info['urls'][0]}")
    for url in info["urls"][1:]:
        click.echo(f"           also {url}")
    if info.get("tls_line"):
        click.echo(f"TLS: {info['tls_line']}")
    if info["ca_sha256"]:
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


@token.command("rotate", context_settings=CONTEXT)
@click.argument("label")
def token_rotate(label: str) -> None:
    """Replace a token with a new one, printed once; the old one gets 401 at once.

    \b
    Example:
      padlab panel token rotate ipad-shortcuts
    """
    from padlab.panel import store

    value = store.rotate_token(label)
    sys.stderr.write(f"New API token {label!r} (shown once; the old one no longer works):\n")
    click.echo(value)


@panel.command("install", context_settings=CONTEXT)
@listen_option
@port_option
@name_option
@click.option(
    "--system", is_flag=True, help="As root: a system service on this always-on host (see docs/ipad-only.md)."
)
@click.option(
    "--on", "on", metavar="PROFILE", help="Install it as a system service on PROFILE's host, over ssh."
)
@click.option("--tls", type=click.Choice(["auto", "letsencrypt", "padlab-ca"]), default=None,
              help="Certificate: a public one (Let's Encrypt) where the host has a public address (auto), always, or padlab's CA.")  # fmt: skip
@click.option("--acme-directory", metavar="URL", help="Another ACME server (default Let's Encrypt).")
@click.option("--acme-ca", metavar="FILE", help="PEM roots of that ACME server's own HTTPS (a private one).")
@click.option(
    "--public-address", metavar="IP", help="The address the iPad uses (default: this host's public one)."
)
@click.option("--firewall", type=click.Choice(["auto", "on"]), default="auto", show_default=True,
              help="auto: open the panel's port in an active firewall; on: turn one on (ssh and the panel only).")  # fmt: skip
@click.option(
    "--new-password", is_flag=True, help="Make a new panel password and print it once (signs everyone out)."
)
@allow_api_url_option
@allow_padlab_ca_option
def install(
    listen: str,
    port: int,
    names: tuple[str, ...],
    system: bool,
    on: str | None,
    tls: str | None,
    acme_directory: str | None,
    acme_ca: str | None,
    public_address: str | None,
    firewall: str,
    new_password: bool,
    allow_api_urls: tuple[str, ...],
    allow_padlab_ca: bool,
) -> None:
    """Run the panel as a service that starts at boot.

    \b
    Without options: a systemd user unit, as you, on this machine.
    --system (as root): a system service on a small always-on host, as the
    unprivileged user padlab-panel with its home in /var/lib/padlab-panel; a
    public certificate where the host has a public address; only the panel's
    port opened. Prints the URL, a QR code and the password (once). Re-running
    it changes nothing and keeps the password unless --new-password.
    --on PROFILE: the same onto PROFILE's ssh host, shipping this padlab.

    \b
    Examples:
      padlab panel install --port 8443
      sudo padlab panel install --system
      padlab panel install --on panelhost --tls letsencrypt
    """
    from padlab import acme

    acme.check(tls, acme_directory, acme_ca)
    urls = _checked_urls(allow_api_urls)
    if on:
        _install_on(
            on,
            listen,
            port,
            names,
            tls,
            acme_directory,
            acme_ca,
            public_address,
            firewall,
            new_password,
            urls,
            allow_padlab_ca,
        )
        return
    if system:
        _install_system(
            listen, port, names, tls, acme_directory, acme_ca, public_address, firewall, new_password, urls,
            allow_padlab_ca,
        )  # fmt: skip
        return
    system_only = tls or acme_directory or acme_ca or public_address or new_password or urls
    if system_only or firewall != "auto" or allow_padlab_ca:
        from padlab.errors import PadlabError

        raise PadlabError(
            "--tls, --acme-*, --public-address, --firewall, --new-password, --allow-api-url and "
            "--allow-padlab-ca are for a system service",
            "add --system (as root) or --on PROFILE",
        )
    from padlab.panel import server, service

    server.check_stack()
    out = service.install(listen, port, list(names))
    boot = (
        "starts at boot"
        if out["starts_at_boot"]
        else "starts at your login (enable lingering to start at boot)"
    )
    click.echo(f"Installed {out['unit']}: {out['active']}, {boot}.")


def _checked_urls(urls: tuple[str, ...]) -> list[str]:
    from padlab.errors import PadlabError

    for url in urls:
        if not url.startswith(("https://", "http://")):
            raise PadlabError(f"--allow-api-url {url!r} is not a URL", "give e.g. https://api.example.com/v1")
    return [u.rstrip("/") for u in urls]


def _install_system(
    listen: str,
    port: int,
    names: tuple[str, ...],
    tls: str | None,
    acme_directory: str | None,
    acme_ca: str | None,
    public_address: str | None,
    firewall: str,
    new_password: bool,
    allow_api_urls: list[str],
    allow_padlab_ca: bool = False,
) -> None:
    from padlab import card
    from padlab.panel import host

    # No check_stack(): the service runs from its own venv, which gets the web stack from the lock.
    out = host.install_system(listen, port, list(names), tls or "auto", acme_directory, acme_ca,
                              public_address, firewall == "on", new_password, allow_api_urls,
                              allow_padlab_ca)  # fmt: skip
    click.echo(f"padlab panel: {out['url']}")
    for url in out["urls"][1:]:
        click.echo(f"           also {url}")
    click.echo(card.qr_text(out["url"]))
    click.echo(f"TLS: {out['tls_line']}")
    if out["ca_sha256"]:
        click.echo(f"padlab CA SHA-256: {out['ca_sha256']}  (compare it on the iPad's /ca page)")
    click.echo(f"Firewall: {out['firewall']}")
    if out["password"]:
        click.echo(f"Panel password (shown once, write it down): {out['password']}")
    else:
        click.echo("Panel password: unchanged (--new-password makes a new one).")
    state = "restarted" if out["restarted"] else "unchanged"
    click.echo(f"{host.UNIT}: running, starts at boot ({state}; {out['seconds']} s).")


def _install_on(
    profile: str,
    listen: str,
    port: int,
    names: tuple[str, ...],
    tls: str | None,
    acme_directory: str | None,
    acme_ca: str | None,
    public_address: str | None,
    firewall: str,
    new_password: bool,
    allow_api_urls: list[str],
    allow_padlab_ca: bool = False,
) -> None:
    """The profile's TLS choices are the default; the remote install prints the URL and password."""
    from padlab import profiles
    from padlab.panel import host

    prof = profiles.load(profile)
    tls = tls or prof.tls
    acme_directory = acme_directory or prof.acme_directory
    acme_ca = acme_ca or prof.acme_ca
    args = ["--listen", listen, "--port", str(port), "--firewall", firewall]
    for name in names:
        args += ["--name", name]
    if tls:
        args += ["--tls", tls]
    if acme_directory:
        args += ["--acme-directory", acme_directory]
    if public_address:
        args += ["--public-address", public_address]
    if new_password:
        args.append("--new-password")
    for url in allow_api_urls:
        args += ["--allow-api-url", url]
    if allow_padlab_ca:
        args.append("--allow-padlab-ca")
    host.install_on(profile, args, acme_ca)


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
