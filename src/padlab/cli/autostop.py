"""Autostop commands: autostop (set the policy), keep (hold the box up), logs (Jupyter's or the agent's)."""

from __future__ import annotations

import click

from padlab.cli import cli
from padlab.cli.common import CONTEXT
from padlab.errors import PadlabError


@cli.command("autostop", context_settings=CONTEXT)
@click.argument("name", required=False)
@click.argument("limit", required=False)
@click.option("--max-uptime", help="Also stop after this long up, even when busy, e.g. 8h; 'off' removes it.")
@click.option(
    "--action",
    type=click.Choice(["service", "poweroff"]),
    help="service: stop only Jupyter; poweroff: power the machine off (Paperspace and AWS do this by default; "
    "DigitalOcean snapshots and deletes the droplet instead, see `padlab login --help`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the policy and the box's view as JSON.")
def autostop_cmd(
    name: str | None, limit: str | None, max_uptime: str | None, action: str | None, as_json: bool
) -> None:
    """Set how long the workstation may sit idle before it stops, or turn that off.

    \b
    Idle means: no Jupyter activity or open connection, no busy kernel, no ssh
    login, no mosh client heard from, GPU below 10 %, and no `padlab keep` hold.
    A warning reaches every open terminal 5 minutes before a stop.
    A running box takes the new setting at once; Jupyter and its kernels are untouched.
    With no LIMIT and no options, it shows the current setting.

    \b
    Examples:
      padlab autostop lab 30m
      padlab autostop lab off
      padlab autostop lab 45m --max-uptime 8h
      padlab autostop box 1h --action poweroff     # an ssh box you allow padlab to power off
      padlab autostop do 45m    # DigitalOcean: needs `padlab login digitalocean --autostop-token` first
    """
    from padlab import autostop, home, ui

    if name and limit is None and _looks_like_limit(name):
        name, limit = None, name
    result = home.current().autostop(name, limit, max_uptime, action)
    shown, changed, fields, facts = result["name"], result["changed"], result["policy"], result["box"]
    if as_json:
        ui.print_json({"name": shown, "policy": fields, "box": facts})
        return
    where = (
        ""
        if not changed
        else (" (applied on the box)" if facts else f" (applies at the next `padlab up {shown}`)")
    )
    click.echo(f"{shown}: {autostop.describe_policy(fields)}{where}.")


def _looks_like_limit(text: str) -> bool:
    import math

    from padlab.box.timefmt import parse_duration

    try:
        parse_duration(text, math.inf)  # a duration, even one too long to accept, is not a name
    except ValueError:
        return False
    return True


@cli.command(context_settings=CONTEXT)
@click.argument("name", required=False)
@click.argument("duration", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the box's autostop view as JSON.")
def keep(name: str | None, duration: str | None, as_json: bool) -> None:
    """Hold the workstation up for DURATION, whatever the idle limit says; 'off' releases the hold.

    \b
    A hold lasts at most 7 days. A hard cap (--max-uptime) still applies. On the box itself, from an ssh or
    mosh shell, `padlab-keep 2h` does the same.

    \b
    Examples:
      padlab keep lab 2h
      padlab keep lab off
    """
    from padlab import home, ui

    if name and duration is None and _looks_like_limit(name):
        name, duration = None, name
    if duration is None:
        raise PadlabError("keep needs a duration", "e.g. padlab keep lab 2h (or off)")
    held = home.current().keep(name, duration)
    if as_json:
        ui.print_json(held["facts"])
    else:
        click.echo(f"{held['name']}: {held['facts']['summary']}")


@cli.command(context_settings=CONTEXT)
@click.argument("name", required=False)
@click.option("--agent", is_flag=True, help="The autostop agent's decisions instead of Jupyter's log.")
@click.option(
    "-n", "--lines", type=click.IntRange(1, 100000), default=50, show_default=True, help="How many lines."
)
def logs(name: str | None, agent: bool, lines: int) -> None:
    """Show the end of Jupyter's log on the box, or with --agent every autostop decision.

    \b
    Each agent line has the time, in use or idle, and why; WARN and STOP lines
    mark the warning and the stop.

    \b
    Examples:
      padlab logs lab
      padlab logs lab --agent -n 200
    """
    from padlab import home

    text = home.current().logs(name, agent, lines)["text"]
    click.echo(text if text else "(the log is empty)")
