"""Cloud commands: login and destroy, and the cloud flags of `padlab init`."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

import click

from padlab.cli import cli
from padlab.cli.common import CONTEXT
from padlab.errors import PadlabError
from padlab.providers.do_api import AUTOSTOP_SCOPES
from padlab.registry import CLOUDS, PROVIDERS

_TYPES: dict[str, Any] = {"disk_size": int, "price": float}
# `padlab init` flag -> Profile.options key, for cloud profiles only.
CLOUD_SETTINGS = {
    "machine_id": "attach to this existing machine (instance id, droplet id, machine id)",
    "machine_name": "name of the machine to find or create (default padlab-PROFILE)",
    "region": "region (us-east-1, ny2, tor1…)",
    "machine_type": "machine type (g4dn.xlarge, A4000, gpu-h100x1-80gb…)",
    "image": "image: AMI id or name pattern, Paperspace template id, DigitalOcean image slug",
    "disk_size": "disk size in GB",
    "api_url": "API base URL (a proxy, another region, a test fake)",
    "price": "your price per hour in USD, shown instead of the API's or the bundled table's",
    "subnet": "AWS only: the public subnet to launch in (default: the region's default VPC)",
}


def cloud_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add `init`'s cloud flags; the command receives them as extra keyword arguments."""
    for key, text in reversed(CLOUD_SETTINGS.items()):
        fn = click.option(
            "--" + key.replace("_", "-"), key, type=_TYPES.get(key, str), help=f"Cloud: {text}."
        )(fn)
    return fn


@cli.command(context_settings=CONTEXT)
@click.argument("provider", type=click.Choice(CLOUDS))
@click.option(
    "--key-stdin", is_flag=True, help="Read the key from stdin (AWS: key id, then secret, one per line)."
)
@click.option("--no-verify", is_flag=True, help="Store the key without checking it against the provider.")
@click.option("--api-url", help="Check the key against this API base URL instead of the public one.")
@click.option(
    "--autostop-token",
    is_flag=True,
    help="DigitalOcean: store the droplet's own token for autostop (scopes "
    + ", ".join(AUTOSTOP_SCOPES)
    + "), not padlab's. Lambda: a second API key, for the box's own terminate.",
)
def login(provider: str, key_stdin: bool, no_verify: bool, api_url: str | None, autostop_token: bool) -> None:
    """Store a provider's API key for padlab, readable only by you (mode 0600).

    \b
    padlab looks for credentials in this order:
      paperspace    $PAPERSPACE_API_KEY, then this stored key
      digitalocean  $DIGITALOCEAN_TOKEN, then this stored key, then doctl's config
      lambda        $LAMBDA_API_KEY, then this stored key
      runpod        $RUNPOD_API_KEY, then this stored key
      aws           $AWS_ACCESS_KEY_ID/$AWS_PROFILE, then this stored pair, then ~/.aws

    \b
    Autostop on DigitalOcean snapshots and deletes the droplet from the box, with a
    second, custom-scoped token that padlab copies to the box (0600): --autostop-token.
    On Lambda the box terminates itself with a second API key (Lambda's keys are not
    scoped, so make one just for this, revocable alone): --autostop-token.
    On RunPod the pod stops itself with the pod-scoped key RunPod gives every pod: no
    second key.

    \b
    Examples:
      padlab login paperspace
      echo "$DO_TOKEN" | padlab login digitalocean --key-stdin
      echo "$DO_AUTOSTOP_TOKEN" | padlab login digitalocean --autostop-token --key-stdin
      printf '%s\\n%s\\n' "$KEY_ID" "$SECRET" | padlab login aws --key-stdin
      echo "$LAMBDA_AUTOSTOP_KEY" | padlab login lambda --autostop-token --key-stdin
      echo "$RUNPOD_API_KEY" | padlab login runpod --key-stdin
    """
    from padlab import home, onboard

    if autostop_token:
        onboard.autostop_key_module(provider)  # refused before a key is asked for
    parts = _read_key(provider, key_stdin)
    stored = home.current().login(provider, parts, api_url, not no_verify, autostop_token)
    if autostop_token:
        click.echo(
            f"Stored the {PROVIDERS[provider].label} autostop key in {stored['path']} (mode 0600); "
            "`padlab up` copies it to each box with autostop on."
        )
        click.echo(f"Checked: {stored['checked']}.")
        return
    click.echo(f"Stored the {provider} key in {stored['path']} (mode 0600).")


def _read_key(provider: str, from_stdin: bool) -> list[str]:
    info = PROVIDERS[provider]
    if from_stdin:
        lines = [sys.stdin.readline().strip() for _ in info.key_parts]
    elif sys.stdin.isatty():
        import getpass

        lines = [getpass.getpass(f"{info.label} {part}: ").strip() for part in info.key_parts]
    else:
        raise PadlabError(
            "no terminal to ask for the key on", f"pipe it in: padlab login {provider} --key-stdin"
        )
    return lines


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@click.option("--yes-really-destroy", is_flag=True, help="Skip typing the profile name (for scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def destroy(name: str, yes_really_destroy: bool, as_json: bool) -> None:
    """Delete the profile's cloud machine, its disk and padlab's snapshots. Notebooks on it are lost.

    \b
    Asks you to type the profile name first. The profile itself is kept, so
    `padlab up NAME` later creates a fresh machine (and asks for a new password).

    \b
    Examples:
      padlab destroy gpu
      padlab destroy gpu --yes-really-destroy --json
    """
    from padlab import home, ui

    where = home.current()
    where.name_of(name)  # at home, an unknown profile is one line before the question
    typed = name
    if not yes_really_destroy:
        if not sys.stdin.isatty():
            raise PadlabError(
                "destroy needs confirmation and there is no terminal",
                f"pass --yes-really-destroy: padlab destroy {name} --yes-really-destroy",
            )
        from padlab import onboard

        typed = click.prompt(
            f"This deletes {name!r}'s machine and disk for good. Type the profile name to confirm"
        )
        onboard.confirm_destroy(name, typed)
    with ui.progress(f"padlab destroy {name}") as stage:
        data = where.destroy(name, typed, stage)
    if as_json:
        ui.print_json(data)
    else:
        click.echo(f"{name}: machine deleted. `padlab up {name}` creates a new one.")


def start_machine_only(where: Any, name: str | None, as_json: bool, over_budget: bool = False) -> None:
    """`padlab up NAME --skip-setup`: the machine runs and has an address; nothing else happens."""
    from padlab import ui

    shown = where.name_of(name)
    with ui.progress(" ".join(w for w in ("padlab up", shown, "--skip-setup") if w)) as stage:
        data = where.start_machine(name, over_budget, stage)
    shown = data.get("name") or shown
    if as_json:
        ui.print_json(data)
    else:
        click.echo(f"{shown}: the machine is running at {data['host']}. Set it up with: padlab up {shown}")


def cost_text(machine: dict[str, Any]) -> str:
    """'$0.76/h (Paperspace API (usageRate))', or '-' where no price is known."""
    price = machine.get("price_per_hour")
    return f"${price:.2f}/h ({machine.get('price_source')})" if price is not None else "-"


def machine_lines(data: dict[str, Any]) -> list[str]:
    """The cloud lines of `padlab status`: state and public IP, price, what `down` leaves billed, uptime."""
    from padlab import card

    machine = data.get("machine") or {}
    if not (machine.get("price_per_hour") is not None or machine.get("billed_while_down")):
        return []
    started = machine.get("started_at")
    uptime = card.uptime_text(time.time() - started) if started else "-"
    return [
        f"  machine: {machine.get('state')}  ip {machine.get('host') or '-'}  up {uptime}  id {machine.get('id') or '-'}",
        f"  price while running: {cost_text(machine)}",
        f"  still billed while down: {machine.get('billed_while_down') or '-'}",
        f"  this month: ${data.get('month_usd') or 0:.2f} (estimate; `padlab costs` has the detail)",
    ]
