"""The core commands: init, up, status, down, card, doctor, passwd, ca, list, default."""

from __future__ import annotations

import sys
from typing import Any

import click

from padlab import registry
from padlab.cli import cli
from padlab.cli.cloud import cloud_options
from padlab.cli.common import CONTEXT, read_password, show_card


@cli.command(context_settings=CONTEXT)
@click.argument("name", required=False)
@click.option("--provider", type=click.Choice(registry.NAMES), help="Where the workstation runs.")
@click.option("--port", type=int, help="HTTPS port for Jupyter (default 8888).")
@click.option("--root-dir", help="Notebook folder on the box: absolute or under ~ (default ~/notebooks).")
@click.option("--listen", help="Address Jupyter listens on (default 0.0.0.0: every interface).")
@click.option("--force", is_flag=True, help="Replace an existing profile of that name (the box is kept).")
@click.option("--host", help="ssh: USER@HOST, a hostname, an address or a ~/.ssh/config alias.")
@click.option("--user", help="ssh/cloud: login user on the box (default: ssh's choice, or the image's).")
@click.option("--ssh-port", type=int, help="ssh: sshd's port when not 22.")
@click.option("--identity", help="ssh: private key file (default: ssh's own choice, agent included).")
@click.option(
    "--allow-from", help="Firewall: let only this CIDR reach Jupyter and mosh ('auto': your address)."
)
@click.option(
    "--firewall",
    type=click.Choice(["auto", "on"]),
    help="auto (default): open ports in an active firewall only; on: also turn one on if none is.",
)
@click.option("--autostop", help="Stop after this long idle, e.g. 45m, or off (default: 1h on clouds).")
@click.option("--max-uptime", help="Stop after this long up, even when busy, e.g. 8h (default: off).")
@click.option(
    "--clone",
    "clone_url",
    help="A git repository (e.g. a course) cloned into the notebook folder at `up` if missing.",
)
@click.option(
    "--autostop-action",
    type=click.Choice(["service", "poweroff"]),
    help="What a stop does: service (stop Jupyter) or poweroff; clouds default to poweroff.",
)
@click.option(
    "--tls",
    "tls_mode",
    type=click.Choice(["auto", "letsencrypt", "padlab-ca"]),
    help="Jupyter's certificate: auto (default: a public one where the box has a public IP), "
    "letsencrypt, or padlab-ca (the iPad then needs padlab's CA profile).",
)
@click.option("--acme-directory", help="Another ACME server's directory URL (default: Let's Encrypt).")
@click.option(
    "--acme-ca", help="PEM file of extra roots for that ACME server (its HTTPS and its certificates)."
)
@cloud_options
def init(
    name: str | None,
    provider: str | None,
    port: int | None,
    root_dir: str | None,
    listen: str | None,
    force: bool,
    host: str | None,
    user: str | None,
    ssh_port: int | None,
    identity: str | None,
    allow_from: str | None,
    firewall: str | None,
    autostop: str | None,
    max_uptime: str | None,
    autostop_action: str | None,
    clone_url: str | None,
    tls_mode: str | None,
    acme_directory: str | None,
    acme_ca: str | None,
    **cloud: Any,
) -> None:
    """Create a profile. With no flags in a terminal, it asks.

    \b
    The first profile becomes the default, so NAME can be left out later.

    \b
    Examples:
      padlab init lab --provider local --port 8888 --root-dir ~/notebooks
      padlab init box --provider ssh --host me@gpu.example.com --allow-from auto
      padlab init gpu --provider paperspace --machine-type A4000 --region ny2
      padlab init ec2 --provider aws --region us-east-1 --machine-type g5.xlarge --allow-from auto
      padlab init gpu --provider paperspace --user paperspace --identity ~/.ssh/id_ed25519
      padlab init do --provider digitalocean --machine-id 3164444
      padlab init gpu --provider paperspace --autostop 45m --max-uptime 8h
      padlab init gpu --provider paperspace --clone https://github.com/fastai/course22
      padlab init box --provider ssh --host me@203.0.113.7 --tls letsencrypt
      padlab init gpu --provider lambda --machine-type a10,a100 --region us-east-1
      padlab init pod --provider runpod --machine-type "NVIDIA A40" --region EU-RO-1
    """
    from padlab import profiles

    interactive = sys.stdin.isatty() and provider is None
    if interactive:
        name = name or click.prompt("Profile name", default="lab")
        provider = click.prompt("Provider", type=click.Choice(registry.NAMES), default="local")
        if registry.get(provider).needs_host:
            host = host or click.prompt("ssh destination (USER@HOST or a ~/.ssh/config alias)")
        port = port or click.prompt("Jupyter port", type=int, default=profiles.DEFAULT_PORT)
        root_dir = root_dir or click.prompt("Notebook folder", default="~/notebooks")
    from padlab import home

    fields = {
        "port": port,
        "root_dir": root_dir,
        "listen": listen,
        "host": host,
        "user": user,
        "ssh_port": ssh_port,
        "identity": identity,
        "allow_from": allow_from,
        "firewall": firewall,
        "autostop": autostop,
        "max_uptime": max_uptime,
        "autostop_action": autostop_action,
        "clone_url": clone_url,
        "tls_mode": tls_mode,
        "acme_directory": acme_directory,
        "acme_ca": acme_ca,
    }
    made = home.current().init(name, provider, force, cloud, fields)
    name, path = made["name"], made["path"]
    click.echo(
        f"Created profile {name!r} ({path}){' — the default' if made['default'] else ''}. Next: padlab up {name}"
    )


@cli.command(context_settings=CONTEXT)
@click.argument("name", required=False)
@click.option(
    "--password-stdin", is_flag=True, help="Read the Jupyter password from the first line of stdin."
)
@click.option("--generate-password", is_flag=True, help="Make an easy-to-type passphrase and print it once.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the card and the steps).")
@click.option("--qr", is_flag=True, help="Also draw the QR code when output is not a terminal.")
@click.option("--skip-setup", is_flag=True, help="Cloud: only start the machine and print its address.")
@click.option(
    "--over-budget", is_flag=True, help="Start even though the monthly budget is spent (this run only)."
)
@click.option(
    "--move", is_flag=True, help="RunPod: a new pod on the same volume (after a resume without GPUs)."
)
@click.option(
    "--check",
    is_flag=True,
    help="Run every setup step on the box, even when nothing changed since the last full run.",
)
def up(
    name: str | None,
    password_stdin: bool,
    generate_password: bool,
    as_json: bool,
    qr: bool,
    skip_setup: bool,
    over_budget: bool,
    move: bool,
    check: bool,
) -> None:
    """Make the workstation running and healthy, then print its connection card.

    \b
    The first run needs a password: typed, piped, or generated; later runs keep
    it (change it with `padlab passwd`).
    Running it again on a healthy workstation changes nothing and reprints the card:
    the box answers at once when nothing it checks changed since its last full run
    (--check runs every step anyway).
    With no profile at all, it creates 'lab' for this machine (provider local).

    \b
    Examples:
      padlab up --generate-password
      echo 'my long tablet password' | padlab up lab --password-stdin --json
      padlab up gpu --skip-setup
      padlab up gpu --over-budget       # once, past a spent `padlab budget`
      padlab up pod --move              # RunPod: a new pod with GPUs on the same volume
    """
    from padlab import home, ui

    where = home.current()
    if skip_setup:
        from padlab.cli.cloud import start_machine_only

        start_machine_only(where, name, as_json, over_budget)
        return
    ready = where.prepare_up(name)
    if ready["created"]:
        click.echo(
            "Created profile 'lab' for this machine (change it with: padlab init lab --force ...)", err=True
        )
    password = None
    generated = False
    if password_stdin or generate_password or ready["needs_password"]:
        password, generated = read_password(password_stdin, generate_password)
    with ui.progress(f"padlab up {ready['name']}") as stage:
        data = where.up(
            ready["name"], password, generated, stage, over_budget=over_budget, move=move, check=check
        )
    budget_notice(ready["name"], data["budget"])
    if generated and not data["password_kept"]:
        data["generated_password"] = password
        if not as_json:
            sys.stderr.write(f"Your Jupyter password (shown once, write it down): {password}\n")
    show_card(data, as_json, qr)


def budget_notice(name: str, budget: dict) -> None:
    """After `up`: the 80 % warning (its alert, once a month, is `up`'s budget step) and when the box stops itself."""
    import datetime

    from padlab import ui

    for line in budget["warnings"]:
        ui.warn(line)
    if budget.get("deadline_at"):
        when = datetime.datetime.fromtimestamp(budget["deadline_at"]).strftime("%Y-%m-%d %H:%M")
        sys.stderr.write(f"budget: the box stops itself at {when}, when {budget['deadline_why']}\n")
    elif budget.get("over_budget"):
        ui.warn(f"{name} runs past its budget (--over-budget): no budget deadline on the box this time")


@cli.command(context_settings=CONTEXT)
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object, or a list with --all).")
@click.option("--all", "all_profiles", is_flag=True, help="Every profile, as a table.")
def status(name: str | None, as_json: bool, all_profiles: bool) -> None:
    """Show state (running, stopped, starting, error…), URL and uptime.

    \b
    Examples:
      padlab status
      padlab status --all
      padlab status lab --json
    """
    from padlab import card, home, ui

    where = home.current()
    if all_profiles:
        results = where.status_all()
        _home_line(where, as_json)
        for line in dict.fromkeys(w for r in results for w in r.get("ledger_warnings", [])):
            ui.warn(line)
        if as_json:
            ui.print_json(results)
            return
        from rich.table import Table

        from padlab.cli.cloud import cost_text

        table = Table("profile", "provider", "state", "URL", "up for", "price", "billed while down")
        for r in results:
            machine = r.get("machine") or {}
            table.add_row(
                r["name"],
                r["provider"],
                r["state"],
                r["url"] or "-",
                card.uptime_text(r["uptime_s"]),
                cost_text(machine),
                machine.get("billed_while_down") or "-",
            )
        ui.console().print(table)
        return
    data = where.status(name)
    _home_line(where, as_json)
    for warning in data.get("ledger_warnings", []):
        ui.warn(warning)
    if as_json:
        ui.print_json(data)
        return
    line = f"{data['name']}: {data['state']}"
    if data["url"]:
        line += f"  {data['url']}"
    if data["uptime_s"] is not None:
        line += f"  up {card.uptime_text(data['uptime_s'])}"
    if data.get("last_error"):
        line += f"  (last error: {data['last_error']})"
    click.echo(line)
    from padlab.cli.cloud import machine_lines

    for extra in machine_lines(data):
        click.echo(extra)
    if data["state"] == "stopped" and data.get("stop_reason"):
        click.echo(f"  stopped: {data['stop_reason']}")
    if data.get("autostop") and data["state"] == "running":
        click.echo(f"  autostop: {data['autostop']['summary']}")


def _home_line(where: Any, as_json: bool) -> None:
    """A remote home says so in one line (on stderr: stdout is the same as at home)."""
    if not as_json and where.line():
        sys.stderr.write(where.line() + "\n")


@cli.command(context_settings=CONTEXT)
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the resulting state as JSON.")
def down(name: str | None, as_json: bool) -> None:
    """Stop the workstation. Notebooks, settings, certificate and password are all kept.

    \b
    Example:
      padlab down lab
    """
    from padlab import home, ui

    where = home.current()
    # A damaged profile or state file must not keep a running Jupyter up: the home uses what is readable.
    with ui.progress(f"padlab down {name or ''}".rstrip()) as stage:
        data = where.down(name, stage, ui.warn)
    for line in data.get("warnings", []) + data.get("ledger_warnings", []):
        ui.warn(line)
    if as_json:
        ui.print_json(data)
    else:
        click.echo(
            f"{data['name']}: stopped. Everything on disk is kept; `padlab up {data['name']}` brings it back."
        )


@cli.command(context_settings=CONTEXT)
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the card as one JSON object.")
@click.option("--qr", is_flag=True, help="Draw the QR code in the terminal, also when piped.")
@click.option(
    "--png", "png", type=click.Path(dir_okay=False, writable=True), help="Write the URL's QR code as a PNG."
)
def card(name: str | None, as_json: bool, qr: bool, png: str | None) -> None:
    """Reprint the connection card (URL, password hint, certificate, CA, QR code).

    \b
    Examples:
      padlab card --qr
      padlab card lab --png lab-qr.png
    """
    from padlab import card as cardmod
    from padlab import home

    data = home.current().status(name)
    if png:
        cardmod.write_png(data, png)
        if not as_json:
            click.echo(f"QR code of {data['url']} written to {png}", err=True)
    show_card(data, as_json, qr)


@cli.command(context_settings=CONTEXT)
@click.argument("name", required=False)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from stdin to test login and a kernel."
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("--host", help="Check this address instead of the one on the card.")
def doctor(name: str | None, password_stdin: bool, as_json: bool, host: str | None) -> None:
    """Check the workstation as a client sees it, with a fix for each failure.

    \b
    Checks: port open, TLS chain valid against padlab's CA, login page served,
    password login, a kernel runs code, Jupyter's versions against padlab's
    lock, GPU visible (information only), and for
    each kernel with torch whether CUDA is available and the device name.

    \b
    Example:
      echo "$PASSWORD" | padlab doctor lab --password-stdin
    """
    from padlab import home, ui

    where = home.current()
    where.name_of(name)  # at home, an unknown profile is one line before the password is read
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    result = where.doctor(name, password, host)
    if as_json:
        ui.print_json(result)
    else:
        from rich.table import Table

        table = Table("check", "result", "detail", "fix")
        marks = {True: "[green]ok[/green]", False: "[red]FAIL[/red]", None: "[dim]info[/dim]"}
        for c in result["checks"]:
            table.add_row(c["name"], marks[c["ok"]], c["detail"], c["fix"])
        ui.console().print(table)
    if not result["ok"]:
        sys.exit(1)


@cli.command(context_settings=CONTEXT)
@click.argument("name", required=False)
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin.")
@click.option("--generate-password", is_flag=True, help="Make a new passphrase and print it once.")
def passwd(name: str | None, password_stdin: bool, generate_password: bool) -> None:
    """Change the Jupyter password. Notebooks on disk are untouched; Jupyter restarts.

    \b
    Example:
      padlab passwd lab --generate-password
    """
    from padlab import home, ui

    where = home.current()
    shown = where.name_of(name)
    password, generated = read_password(password_stdin, generate_password)
    with ui.progress(f"padlab passwd {shown or ''}".rstrip()) as stage:
        where.passwd(name, password, generated, stage)
    if generated:
        click.echo(f"Your new Jupyter password (shown once): {password}")
    else:
        click.echo("Password changed.")


@cli.group(context_settings=CONTEXT)
def ca() -> None:
    """padlab's personal certificate authority (trust it once on each device)."""


@ca.command("export", context_settings=CONTEXT)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Folder to write into.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the written paths as JSON.")
def ca_export(out_dir: str, as_json: bool) -> None:
    """Write the CA as .pem, .crt and an iOS/iPadOS .mobileconfig profile.

    \b
    On the iPad: open the .mobileconfig (AirDrop, Files or mail), install it in
    Settings > Profile Downloaded, then turn on full trust in
    Settings > General > About > Certificate Trust Settings.

    \b
    Example:
      padlab ca export --out ~/Desktop
    """
    from pathlib import Path

    from padlab import tls, ui

    files = tls.export(Path(out_dir).expanduser())
    if as_json:
        ui.print_json(files)
    else:
        for kind, path in files.items():
            click.echo(f"{kind:13} {path}")


@cli.command("list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_profiles(as_json: bool) -> None:
    """List profiles; the default is marked with *.

    \b
    Example:
      padlab list
    """
    from padlab import home, ui

    listed = home.current().profiles()
    known, default = listed["profiles"], listed["default"]
    if as_json:
        ui.print_json({"profiles": known, "default": default})
        return
    if not known:
        click.echo("no profiles yet: padlab init NAME --provider local")
    for n in known:
        click.echo(f"{'*' if n == default else ' '} {n}")


@cli.command(context_settings=CONTEXT)
@click.argument("name")
def default(name: str) -> None:
    """Make NAME the default profile.

    \b
    Example:
      padlab default lab
    """
    from padlab import home

    home.current().set_default(name)
    click.echo(f"{name!r} is now the default profile.")
