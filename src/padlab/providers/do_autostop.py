"""Client side of autostop on DigitalOcean: the box's own narrowly scoped token, and what the agent needs.

A powered-off droplet is still billed, so the agent must snapshot and delete its
droplet (padlab/box/do_stop.py). It does that with a token of its own, never
with the user's full-access one: a custom-scoped token that can read, act on
(snapshot) and delete droplets and read snapshots. `padlab login digitalocean
--autostop-token` stores it here (0600); `up` and `padlab autostop` send it to
the box in the request on stdin, where it is kept 0600 and root's.
"""

from __future__ import annotations

from typing import Any

from padlab.box.do_stop import ACTION
from padlab.errors import PadlabError
from padlab.providers import credentials

CREDENTIAL = "digitalocean-autostop"
SCOPES = ("droplet:read", "droplet:update", "droplet:delete", "snapshot:read")
HOW = (
    "create a DigitalOcean token with only the custom scopes "
    + ", ".join(SCOPES)
    + ", then run `padlab login digitalocean --autostop-token`"
)

__all__ = ["ACTION", "CREDENTIAL", "SCOPES", "configured", "request_fields", "store"]


def configured() -> bool:
    return credentials.read_stored(CREDENTIAL) is not None


def request_fields(provider: Any, machine: Any) -> dict[str, Any]:
    """The `autostop.digitalocean` part of an `up` or `autostop` request (token included)."""
    from padlab.providers.digitalocean import DEFAULT_URL, URL_ENV
    from padlab.providers.http import base_url

    secret = credentials.read_stored(CREDENTIAL)
    if secret is None:
        raise PadlabError("no autostop token for DigitalOcean is stored", HOW)
    return {
        "droplet_id": machine.id if machine is not None else None,
        "api_url": base_url(provider.options, URL_ENV, DEFAULT_URL),
        "snapshot_prefix": provider.resource_name(),
        "token": secret.value,
    }


def store(value: str, api_url: str | None, verify: bool) -> str:
    """Keep the token for the box; refuse the full-access token padlab itself uses."""
    from padlab.providers import digitalocean

    try:
        main = digitalocean.secret()
    except PadlabError:
        main = None
    if main is not None and main.value == value.strip():
        raise PadlabError(
            f"that is the token padlab uses for up and down (from {main.source}); the box must not hold it",
            HOW,
        )
    if verify:
        _verify(value.strip(), api_url)
    return str(credentials.store(CREDENTIAL, value))


def _verify(value: str, api_url: str | None) -> None:
    """One droplet:read call: the one scope every step of the stop needs."""
    import pydo
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    from padlab.providers.digitalocean import DEFAULT_URL, URL_ENV
    from padlab.providers.http import base_url

    url = base_url({"api_url": api_url}, URL_ENV, DEFAULT_URL)
    try:
        pydo.Client(token=value, endpoint=url, retry_total=2).droplets.list(per_page=1)
    except (ClientAuthenticationError, HttpResponseError) as exc:
        raise PadlabError(
            f"DigitalOcean did not accept the autostop token for listing droplets ({type(exc).__name__})",
            HOW,
        ) from None
