"""Autostop on DigitalOcean: the droplet snapshots and deletes itself, because off is still billed.

A powered-off droplet costs as much as a running one, so the only stop that ends
billing is the one `padlab down` does: snapshot, verify, delete. The agent does it
from the box, with a token of its own (mode 0600, root's on system boxes) that it never
logs. Its scopes are every scope of the calls below (``CALLS``), as DigitalOcean's
OpenAPI spec gives them (padlab/providers/do_api.py): droplet:read, droplet:update
and image:create (the snapshot action needs both), droplet:delete, snapshot:read and
block_storage_snapshot:read (the snapshot lookup lists both).

The snapshot is taken while the droplet runs. `padlab down` shuts the droplet down
first, but a shutdown from here would end the agent before it could verify the
snapshot and delete the droplet. Jupyter is stopped first (notebooks are saved,
kernels end) and the disks are synced, so the snapshot holds everything the user
did; what it does not hold is a clean unmount, as after a power cut (a journalled
file system replays its log at the next boot).

A snapshot of a GPU disk takes minutes to hours and a check runs for under a
minute, so the stop is a sequence of steps, one check at a time, with the progress
kept in the stop record (stopped.json): request the snapshot, wait for its action,
verify the snapshot, delete the droplet. A failed step records FAILED and that the
droplet is still billed; the next check tries again. The droplet is deleted only
after its snapshot was seen, and success is reported only after DigitalOcean
accepted the delete. The agent never deletes snapshots: the client's next `down`
removes the older ones once its own snapshot is verified.

Snapshots are named as the client names them (RESOURCE-UNIXTIME), so `padlab up`
re-creates the droplet from the newest one, whoever took it.
"""

from __future__ import annotations

import time

from .cloud_stop import StopError, call, read_key, sync

__all__ = [
    "ACTION",
    "BILLED",
    "CALLS",
    "DEFAULT_API",
    "PART",
    "StopError",
    "advance",
    "pending",
    "settings",
    "sync",
]

ACTION = "do-snapshot-destroy"
PART = "digitalocean"  # of the request's autostop part, and of the agent's config
DEFAULT_API = "https://api.digitalocean.com"
METADATA_ID = "http://169.254.169.254/metadata/v1/id"
# Seconds one check waits on the snapshot, so that a check stays within the timer's 50 s; the next
# check carries on. urllib is imported only when a stop runs: every other check stays light.
POLL_BUDGET = 25.0
POLL_EVERY = 5.0
BILLED = "the droplet is still billed"
# Every DigitalOcean operation this module calls, by the spec's operationId (as in
# padlab/providers/do_api.py, which the client and the tests read; the box cannot import it).
CALLS = (
    "dropletActions_post:snapshot",
    "dropletActions_get",
    "droplets_list_snapshots",
    "snapshots_get",
    "droplets_destroy",
)


class Api:
    """The few DigitalOcean v2 calls the agent makes (cloud_stop.call: HTTPS with the box's CA store)."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self._token = token

    def call(self, method: str, path: str, body: dict | None = None) -> tuple:
        """(status, JSON body); raises StopError on anything but 2xx and 404."""
        return call(self.base, method, path, self._token, body, "DigitalOcean", _explain)


def _explain(status: int, body: dict, headers) -> str:
    message = str(body.get("message") or "")
    return "%s (%s)" % (message, rate_limit(headers)) if status == 429 else message


def rate_limit(headers) -> str:
    """Which of DigitalOcean's limits a 429 is, and when it lifts (digitalocean/openapi description.yml).

    The burst limit (250 a minute) says ``retry-after`` in seconds; the hourly one (5,000)
    gives only ``ratelimit-reset``, the Unix time its oldest request expires. Either way
    the next check tries again; the record says when that can work.
    """
    after = headers.get("retry-after")
    if after:
        return "burst rate limit: retry after %s s" % after
    reset = headers.get("ratelimit-reset")
    try:
        when = time.strftime("%H:%M UTC", time.gmtime(float(reset)))
    except (TypeError, ValueError):
        return "rate limited"
    return "hourly API rate limit used up until %s" % when


def droplet_id(settings: dict) -> str:
    """From the config (`up` writes it); on a droplet without it, from the metadata service."""
    import urllib.error
    import urllib.request

    if settings.get("droplet_id"):
        return str(settings["droplet_id"])
    try:
        with urllib.request.urlopen(METADATA_ID, timeout=5) as resp:
            return resp.read().decode().strip()
    except (urllib.error.URLError, OSError) as exc:
        raise StopError(
            "this droplet's id is not in the config and the metadata service said: %s" % exc
        ) from None


def settings(raw: dict, req: dict) -> dict:
    """The agent's config part from the request's ``autostop.digitalocean`` (the token's file aside)."""
    return {
        "droplet_id": str(raw["droplet_id"]) if raw.get("droplet_id") else None,
        "api_url": raw.get("api_url") or DEFAULT_API,
        "snapshot_prefix": raw.get("snapshot_prefix") or "padlab-%s" % req["name"],
    }


def pending(record: dict) -> bool:
    """Whether the stop record is a snapshot-and-delete still under way."""
    return record.get("action") == ACTION and not record.get("done") and not record.get("cancelled")


def advance(conf: dict, record: dict, prepare, save, clock=time.time, sleep=time.sleep) -> bool:
    """Take the stop one step further; True once the droplet is deleted.

    prepare() quiets the box before the snapshot (Jupyter stopped, disks synced);
    save() writes the record, before each request to DigitalOcean and after it.
    """
    settings = conf["digitalocean"]
    api = Api(
        settings.get("api_url") or DEFAULT_API, read_key(settings["token_file"], "token", "digitalocean")
    )
    droplet = record.get("droplet_id") or droplet_id(settings)
    record["droplet_id"] = droplet
    if not record.get("snapshot_action"):
        prepare()
        name = "%s-%d" % (settings["snapshot_prefix"], int(clock()))
        record.update(snapshot=name, snapshot_requested_at=clock())
        record["result"] = "snapshot %s requested; %s" % (name, BILLED)
        save()
        _, body = _ok(
            api.call("POST", "/v2/droplets/%s/actions" % droplet, {"type": "snapshot", "name": name})
        )
        record["snapshot_action"] = (body.get("action") or {}).get("id")
        save()
    name = record["snapshot"]
    status = _wait(api, droplet, record["snapshot_action"], clock, sleep)
    if status == "errored":
        record.pop("snapshot_action", None)
        raise StopError("DigitalOcean reports snapshot %s as errored" % name)
    if status != "completed":
        minutes = (clock() - float(record.get("snapshot_requested_at") or clock())) / 60
        record["result"] = "snapshot %s in progress (%d min so far); %s" % (name, minutes, BILLED)
        return False
    snapshot_id = _verify(api, droplet, name)
    record["snapshot_id"] = snapshot_id
    record["result"] = "snapshot %s verified; deleting droplet %s" % (name, droplet)
    save()
    status, _ = api.call("DELETE", "/v2/droplets/%s" % droplet)
    gone = " (it was already gone)" if status == 404 else ""
    record["done"] = True
    record["result"] = "snapshot %s (id %s) taken, droplet %s deleted%s: billing ended" % (
        name,
        snapshot_id,
        droplet,
        gone,
    )
    return True


def _ok(answer: tuple) -> tuple:
    if answer[0] == 404:
        raise StopError("DigitalOcean does not know this droplet (HTTP 404)")
    return answer


def _wait(api: Api, droplet: str, action_id, clock, sleep) -> str:
    """The snapshot action's status, polled for up to POLL_BUDGET seconds."""
    deadline = clock() + POLL_BUDGET
    while True:
        _, body = _ok(api.call("GET", "/v2/droplets/%s/actions/%s" % (droplet, action_id)))
        status = str((body.get("action") or {}).get("status"))
        if status in ("completed", "errored") or clock() >= deadline:
            return status
        sleep(POLL_EVERY)


def _verify(api: Api, droplet: str, name: str) -> str:
    """The snapshot's id once DigitalOcean lists it for this droplet and serves it account-wide."""
    page = 1
    found = None
    while found is None:
        _, body = _ok(api.call("GET", "/v2/droplets/%s/snapshots?per_page=200&page=%d" % (droplet, page)))
        found = next((s for s in body.get("snapshots") or [] if s.get("name") == name), None)
        if found is None and not ((body.get("links") or {}).get("pages") or {}).get("next"):
            raise StopError("snapshot %s finished but is not listed for droplet %s" % (name, droplet))
        page += 1
    status, body = api.call("GET", "/v2/snapshots/%s" % found["id"])
    if status == 404 or not body.get("snapshot"):
        raise StopError("snapshot %s is listed but not available yet" % name)
    return str(found["id"])
