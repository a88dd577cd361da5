"""Money commands: costs (the ledger added up), budget (a monthly cap), alert (ntfy, Web Push)."""

from __future__ import annotations

from typing import Any

import click

from padlab.cli import cli
from padlab.cli.common import CONTEXT
from padlab.errors import PadlabError


@cli.command("costs", context_settings=CONTEXT)
@click.argument("name", required=False)
@click.option("--month", help="A calendar month (UTC) as YYYY-MM; default: this month.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (total_usd, profiles, days).")
@click.option("--reconcile", is_flag=True, help="Compare with the provider's own billing, where it has one.")
def costs_cmd(name: str | None, month: str | None, as_json: bool, reconcile: bool) -> None:
    """What the machines cost this month: hours, USD, what is billed while down, per day.

    \b
    Figures are estimates from padlab's ledger: padlab's own up/down/destroy, the
    provider's state read now and at every `status`, and the box agent's stops.
    Where a start or stop was not seen, the earlier start and later end count.
    --reconcile asks the provider's billing (DigitalOcean) what it has charged.

    \b
    Examples:
      padlab costs
      padlab costs gpu --month 2026-05
      padlab costs --json | jq .total_usd
      padlab costs do --reconcile
    """
    from padlab import home, ui

    data = home.current().costs(name, month, reconcile)
    if as_json:
        ui.print_json(data)
        return
    ui.console().print(render(data))


def render(data: dict[str, Any]) -> Any:
    """A rich table per profile, a bar per day, the budgets, and the estimate's label."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"costs {data['month']} (estimate)", title_justify="left")
    for col in ("profile", "hours up", "compute", "billed while down", "total"):
        table.add_column(col, justify="left" if col == "profile" else "right")
    for prof, p in sorted(data["profiles"].items()):
        compute = p["usd"] - p["down_usd"]
        table.add_row(
            prof, f"{p['hours']:.2f}", f"${compute:.2f}", f"${p['down_usd']:.2f}", f"${p['usd']:.2f}"
        )
    table.add_row("[b]all[/b]", "", "", "", f"[b]${data['total_usd']:.2f}[/b]")
    parts: list[Any] = [table]
    if data["days"]:
        parts.append(Text(day_chart(data["days"])))
    for key, b in data.get("budgets", {}).items():
        who = "all profiles" if key == "*" else key
        parts.append(
            Text(f"budget {who}: ${b['spent_usd']:.2f} of ${b['budget_usd']:.2f} ({b['share']:.0%})")
        )
    for note in data.get("unread") or []:
        parts.append(Text(f"not read now: {note}", style="yellow"))
    for line in reconcile_lines(data.get("reconcile")):
        parts.append(Text(line))
    parts.append(Text(data["note"], style="dim"))
    return Group(*parts)


def day_chart(days: dict[str, float], width: int = 30) -> str:
    """One line per day: 'MM-DD ████▌ $1.23'."""
    top = max(days.values()) or 1.0
    lines = []
    for day, usd in days.items():
        eighths = round(usd / top * width * 8)
        bar = "█" * (eighths // 8) + ("▏▎▍▌▋▊▉"[eighths % 8 - 1] if eighths % 8 else "")
        lines.append(f"{day[5:]} {bar:<{width + 1}} ${usd:.2f}")
    return "\n".join(lines)


def reconcile_lines(rec: dict[str, Any] | None) -> list[str]:
    if not rec:
        return []
    out = []
    for prov, r in rec.items():
        if r.get("error"):
            out.append(f"{prov}: cannot compare: {r['error']}")
            continue
        out.append(
            f"{prov}: ${r['provider_usd']:.2f} billed ({r['scope']}, as of {r['as_of']}); "
            f"${r['items_usd']:.2f} of it for padlab's droplets; padlab's estimate ${r['ledger_usd']:.2f}"
        )
        for item in r.get("items", []):
            out.append(f"  {item['description']}: ${item['amount']:.2f} ({item['hours']} h)")
    return out


@cli.command("budget", context_settings=dict(CONTEXT, ignore_unknown_options=True))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--json", "as_json", is_flag=True, help="Print the budgets and this month's spend as JSON.")
def budget_cmd(args: tuple[str, ...], as_json: bool) -> None:
    """A monthly budget in USD: `up` refuses once it is spent, and a running box stops itself.

    \b
    At `up`, the money left becomes a deadline on the box: its agent stops it
    when the budget runs out, even if no padlab client runs again. At 80 %,
    padlab warns (and sends an alert, see `padlab alert`). Months are UTC
    calendar months. `padlab up --over-budget` starts once anyway, without a deadline.

    \b
    Examples:
      padlab budget 50            # all profiles together, USD per month
      padlab budget gpu 20        # one profile
      padlab budget gpu off
      padlab budget off
      padlab budget               # show budgets and this month's spend
    """
    from padlab import home, money, ui

    if len(args) > 2:
        raise PadlabError("budget takes at most a profile and an amount", "e.g. padlab budget gpu 20")
    if len(args) == 2:
        name, amount = args
    elif len(args) == 1:
        name, amount = None, args[0]
    else:
        name, amount = None, None
    value = None if amount is None or amount.lower() == "off" else money.parse_amount(amount)
    view = home.current().budget(name, amount is not None, value)
    if as_json:
        ui.print_json(view)
        return
    if amount is not None:
        who = name or "all profiles"
        click.echo(f"Budget for {who}: {'off' if value is None else f'${value:.2f} per month'}.")
    if not view["budgets"]:
        click.echo("No budget set. Set one with: padlab budget 50 (all profiles) or padlab budget NAME 20")
    for key, b in view["budgets"].items():
        who = "all profiles" if key == money.ALL else key
        click.echo(
            f"{who}: ${b['spent_usd']:.2f} of ${b['budget_usd']:.2f} spent in {view['month']} ({b['share']:.0%})"
        )


@cli.command("alert", context_settings=CONTEXT)
@click.argument("name", required=False)
@click.option("--ntfy", help="Send alerts to this ntfy topic URL ('off' stops them).")
@click.option("--after", help="Alert when NAME's box has been up this long, e.g. 3h ('off' removes it).")
@click.option("--test", "test", is_flag=True, help="Send a test alert now.")
@click.option("--json", "as_json", is_flag=True, help="Print the alert settings as JSON (the URL masked).")
def alert_cmd(name: str | None, ntfy: str | None, after: str | None, test: bool, as_json: bool) -> None:
    """Where alerts go: an autostop stop, a failed stop, 80 % of a budget, a box up too long.

    \b
    The box's agent sends its own alerts (stops, long uptime, the budget running
    low) straight to the ntfy topic, so they arrive while no padlab client runs;
    the topic URL is kept in a root-only file on the box. The panel's Home Screen
    app gets them by Web Push. Use a long random topic: whoever knows it can read it.
    Running boxes pick up changes at their next `padlab up` or `padlab autostop`.

    \b
    Examples:
      padlab alert --ntfy https://ntfy.sh/padlab-7f3a9c2e41
      padlab alert gpu --after 3h
      padlab alert --test
      padlab alert --ntfy off
    """
    from padlab import home, ui
    from padlab.box.timefmt import parse_duration

    where = home.current()
    if name:
        where.name_of(name)  # at home, an unknown profile is one line first
    after_s: Any = False
    if after is not None:
        try:
            after_s = parse_duration(after)
        except ValueError as exc:
            raise PadlabError(str(exc), "e.g. padlab alert gpu --after 3h") from exc
        if name is None:
            raise PadlabError("--after needs a profile", "padlab alert NAME --after 3h")
    shown = where.alert(name, ntfy, after_s if after is not None else None, after is not None, test)
    if as_json:
        ui.print_json(shown)
        return
    click.echo(f"ntfy: {shown['ntfy'] or 'off (padlab alert --ntfy URL)'}")
    for prof, seconds in (shown.get("after") or {}).items():
        click.echo(f"{prof}: alert after {seconds / 3600:g} h up")
    if test:
        click.echo("Test alert sent.")
