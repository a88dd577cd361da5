"""DigitalOcean GPU droplets through pydo, with `down` as snapshot-and-delete.

A powered-off droplet is billed in full, so `down` shuts the droplet down
cleanly, snapshots it, checks the snapshot exists, and only then deletes the
droplet; `up` re-creates it from the newest snapshot. The previous snapshot is
kept until the new one is verified; older ones are deleted after that. Each
step is recorded in state first, so an interrupted `down` resumes where it was.

Autostop does the same from the box (padlab/box/autostop/do_stop.py), with a token of its
own, never the user's full-access one: a custom-scoped token that can read, act on
(snapshot, which also needs image:create) and delete droplets and read snapshots
(``AUTOSTOP_SCOPES``; every call and its scopes are in ``do_api.OPERATIONS``). `padlab login digitalocean
--autostop-token` stores it here (0600); `up` and `padlab autostop` send it to
the box in the request on stdin, where it is kept 0600 and root's.

GPU droplets are listed only with ``type=gpus`` (which cannot be combined with
``tag_name``), so padlab lists both kinds and filters by its tag itself.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import time
from typing import Any, Callable

from padlab import registry
from padlab.errors import PadlabError
from padlab.providers import cloud, credentials, do_api, prices, retry
from padlab.providers.base import Machine, Progress
from padlab.providers.cloud import MISSING, OFF, RUNNING, STARTING, CloudProvider
from padlab.providers.http import base_url

DEFAULT_URL = "https://api.digitalocean.com"
URL_ENV = "PADLAB_DIGITALOCEAN_API_URL"
TOKEN_ENV = ("DIGITALOCEAN_TOKEN",)
DEFAULTS = {"machine_type": "gpu-4000adax1-20gb", "region": "tor1", "image": "gpu-h100x1-base"}
STATES = {"new": STARTING, "active": RUNNING, "off": OFF, "archive": MISSING}
SHUTDOWN_TIMEOUT = 300.0
SNAPSHOT_TIMEOUT = 3600.0
API_PRICE = "DigitalOcean API (size price_hourly)"
WHILE_UP = "the whole droplet while it exists, even powered off; `padlab down` snapshots and deletes it"
# The box's own token for autostop's snapshot-and-delete.
AUTOSTOP_CREDENTIAL = "digitalocean-autostop"
AUTOSTOP_SCOPES = do_api.AUTOSTOP_SCOPES
AUTOSTOP_HOW = (
    "create a DigitalOcean token with only the custom scopes "
    + ", ".join(AUTOSTOP_SCOPES)
    + ", then run `padlab login digitalocean --autostop-token`"
)
BOX_KEY = cloud.BoxKey(
    credential=AUTOSTOP_CREDENTIAL,
    action=registry.SNAPSHOT_DELETE,
    noun="token",
    needs="autostop on digitalocean needs its own token: a powered-off droplet is still billed, "
    "so the box must snapshot and delete itself",
    how=AUTOSTOP_HOW,
)


class _NotFound(Exception):
    pass


def secret() -> credentials.Secret:
    return credentials.lookup(
        "digitalocean",
        "DigitalOcean token",
        TOKEN_ENV,
        ((f"doctl's config ({credentials.doctl_config_paths()[0]})", credentials.from_doctl),),
    )


class DigitalOceanProvider(CloudProvider):
    name = "digitalocean"
    box_key = BOX_KEY

    def __init__(self, profile: Any) -> None:
        super().__init__(profile)
        self._client: Any = None
        self._secret: credentials.Secret | None = None

    # -- API ---------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        if self._client is None:
            import pydo

            self._secret = secret()
            url = base_url(self.options, URL_ENV, DEFAULT_URL)
            # padlab retries itself (with jitter and a clear final message), so pydo's own retries are off.
            self._client = pydo.Client(token=self._secret.value, endpoint=url, retry_total=0)
        return self._client

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One API call with retries; raises ``_NotFound`` on 404 and a PadlabError on refusals."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        def once() -> Any:
            try:
                body = fn(*args, **kwargs)
            except ResourceNotFoundError:
                raise _NotFound(what) from None
            except ClientAuthenticationError:
                assert self._secret is not None
                raise credentials.rejected(self._secret, "DigitalOcean token", "digitalocean") from None
            except HttpResponseError as exc:
                status = exc.status_code or 0
                if status == 429:
                    raise _rate_limited(getattr(exc.response, "headers", None) or {}) from None
                if status in retry.TRANSIENT_STATUS:
                    raise retry.Transient(f"HTTP {status}") from None
                if status == 403:
                    assert self._secret is not None
                    raise credentials.rejected(self._secret, "DigitalOcean token", "digitalocean") from None
                raise DoError(
                    status, f"DigitalOcean refused {what} (HTTP {status}): {_message(exc)}"
                ) from None
            except (ServiceRequestError, ServiceResponseError) as exc:
                raise retry.Transient(f"cannot reach DigitalOcean: {type(exc).__name__}") from None
            error = _error_body(body)
            if error == 404:
                raise _NotFound(what)
            if error is not None:
                raise DoError(error, f"DigitalOcean refused {what} (HTTP {error}): {body.get('message')}")
            return body

        return retry.call(once, f"DigitalOcean {what}")

    def _get(self, droplet_id: Any) -> dict[str, Any] | None:
        try:
            return self.call(f"GET droplet {droplet_id}", self.client.droplets.get, int(droplet_id))[
                "droplet"
            ]
        except _NotFound:
            return None

    def _list(self, what: str, fn: Callable[..., Any], key: str, **kwargs: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.call(what, fn, per_page=200, page=page, **kwargs)
            out += body.get(key) or []
            if not (body.get("links") or {}).get("pages", {}).get("next"):
                return out
            page += 1

    # -- finding -------------------------------------------------------------------------

    def tag(self) -> str:
        return f"padlab:{self.profile.name}"

    def _attached_may_vanish(self) -> bool:
        # Autostop on the box snapshots and deletes an attached droplet: then it is as after `down`.
        return bool(self.snapshots())

    def _search(self) -> dict[str, Any] | None:
        droplets = self._list("list droplets", self.client.droplets.list, "droplets", tag_name=self.tag())
        gpus = self._list("list GPU droplets", self.client.droplets.list, "droplets", type="gpus")
        found = {d["id"]: d for d in droplets + gpus if self.tag() in (d.get("tags") or [])}
        if len(found) > 1:
            raise PadlabError(
                f"several droplets carry the tag {self.tag()} ({', '.join(map(str, found))})",
                "delete the extra ones in the DigitalOcean console, then run the command again",
            )
        return next(iter(found.values()), None)

    def snapshots(self) -> list[dict[str, Any]]:
        """padlab's snapshots of this profile, oldest first (named RESOURCE-UNIXTIME)."""
        pattern = re.compile(rf"^{re.escape(self.resource_name())}-\d+$")
        found = self._list("list snapshots", self.client.snapshots.list, "snapshots", resource_type="droplet")
        return sorted((s for s in found if pattern.match(s.get("name", ""))), key=lambda s: s["created_at"])

    def describe(self) -> Machine:
        droplet = self.find()
        if droplet:
            return self._machine(droplet)
        snapshots = self.snapshots()
        if not snapshots:
            return self.missing()
        newest = snapshots[-1]
        size = str(self.options.get("machine_type") or self.memo().get("size") or DEFAULTS["machine_type"])
        price, source = prices.hourly(
            "digitalocean", size, self.options.get("price"), self._size_price(size), API_PRICE
        )
        gb = float(newest.get("size_gigabytes") or newest.get("min_disk_size") or 0)
        return Machine(
            state=OFF,
            price_per_hour=price,
            price_source=source,
            billed_while_down=f"snapshot {newest['name']}: {prices.per_month(gb, prices.DO_SNAPSHOT_GB_MONTH)}",
            down_usd_per_hour=prices.hourly_from_month(gb * prices.DO_SNAPSHOT_GB_MONTH),
            extra={
                "provider_state": "snapshot",
                "snapshot_id": str(newest["id"]),
                "snapshot_name": newest["name"],
                "machine_type": size,
            },
        )

    def _machine(self, droplet: dict[str, Any]) -> Machine:
        status = droplet.get("status", "")
        mapped = STATES.get(status, STARTING)
        size = droplet.get("size") or {}
        price, source = prices.hourly(
            "digitalocean",
            droplet.get("size_slug"),
            self.options.get("price"),
            size.get("price_hourly"),
            API_PRICE,
        )
        public = [
            n["ip_address"] for n in droplet.get("networks", {}).get("v4", []) if n.get("type") == "public"
        ]
        return Machine(
            state=mapped,
            host=public[0] if public and mapped == RUNNING else None,
            id=str(droplet["id"]),
            price_per_hour=price,
            price_source=source,
            billed_while_down=WHILE_UP,
            down_usd_per_hour=price,  # a powered-off droplet is billed in full
            started_at=self.uptime_start(mapped, None),
            extra={
                "provider_state": status,
                "region": (droplet.get("region") or {}).get("slug"),
                "machine_type": droplet.get("size_slug"),
            },
        )

    def billing(self, resource_ids: set[str]) -> dict[str, Any]:
        """DigitalOcean's own month-to-date figures, for `padlab costs --reconcile`.

        The balance is the whole account's; the invoice preview's items are
        narrowed to the droplets padlab's ledger knows. Needs a token that may
        read billing (billing:read); without it the error says so.
        """
        balance = self.call("read the account balance", self.client.balance.get)
        listing = self.call("list invoices", self.client.invoices.list)
        preview = listing.get("invoice_preview") or {}
        items = []
        if preview.get("invoice_uuid"):
            items = self._list(
                "read the invoice preview",
                self.client.invoices.get_by_uuid,
                "invoice_items",
                invoice_uuid=preview["invoice_uuid"],
            )
        mine = [i for i in items if str(i.get("resource_id")) in resource_ids]
        return {
            "provider_usd": float(balance.get("month_to_date_usage") or 0),
            "as_of": balance.get("generated_at"),
            "scope": "the whole DigitalOcean account, this month",
            "items_usd": round(sum(float(i.get("amount") or 0) for i in mine), 2),
            "items": [
                {
                    "description": i.get("description"),
                    "amount": float(i.get("amount") or 0),
                    "resource_id": i.get("resource_id"),
                    "hours": i.get("duration"),
                }
                for i in mine
            ],
        }

    def _size_price(self, slug: str) -> float | None:
        sizes = self._list("list sizes", self.client.sizes.list, "sizes")
        return next((s.get("price_hourly") for s in sizes if s.get("slug") == slug), None)

    # -- up ------------------------------------------------------------------------------

    def _create(self, progress: Progress) -> Machine:
        return self._new_droplet(str(self.options.get("image") or DEFAULTS["image"]), progress)

    def _power_on(self, machine: Machine, progress: Progress) -> None:
        if machine.id:
            self._action(machine.id, "power_on")
            return
        self.attempt_id()  # the intent, before the API call
        snapshot = machine.extra["snapshot_id"]
        progress(f"re-creating the droplet from snapshot {snapshot}")
        self._new_droplet(int(snapshot), progress)

    def _new_droplet(self, image: str | int, progress: Progress) -> Machine:
        size = str(self.options.get("machine_type") or self.memo().get("size") or DEFAULTS["machine_type"])
        region = self.options.get("region") or self.memo().get("region") or DEFAULTS["region"]
        body = {
            "name": self.resource_name(),
            "size": size,
            "region": region,
            "image": image,
            "ssh_keys": [self._ssh_key()],
            "tags": [self.tag()],
        }

        def find_or_post() -> dict[str, Any]:
            # A POST that failed in transit may have created the droplet: look before asking again.
            existing = self.find()
            if existing:
                return existing
            return self.call("create droplet", self.client.droplets.create, body=body)["droplet"]

        droplet = retry.call(find_or_post, "DigitalOcean create droplet")
        self.remember(machine_id=str(droplet["id"]), size=size, region=region, create_attempt=None)
        return self._machine(droplet)

    def _ssh_key(self) -> int:
        """The id of the user's public key in the account, importing it the first time."""
        text, _ = cloud.public_key(self.profile)
        fingerprint = _fingerprint(text)
        for _ in range(2):
            keys = self._list("list ssh keys", self.client.ssh_keys.list, "ssh_keys")
            for key in keys:
                if key.get("fingerprint") == fingerprint:
                    return int(key["id"])
            try:
                body = {"name": f"padlab {fingerprint[-11:]}", "public_key": text}
                return int(self.call("add ssh key", self.client.ssh_keys.create, body=body)["ssh_key"]["id"])
            except DoError as exc:
                if exc.status != 422:  # 422: added meanwhile by another padlab; list again
                    raise
        raise PadlabError(
            "DigitalOcean would not take your ssh public key", "add it in the console, then retry"
        )

    def _action(self, droplet_id: str, kind: str, **extra: Any) -> dict[str, Any] | None:
        """Post an action; None where DigitalOcean says 422 (already so, or another action runs)."""
        body = {"type": kind, **extra}
        try:
            answer = self.call(
                f"{kind} droplet {droplet_id}", self.client.droplet_actions.post, int(droplet_id), body=body
            )
        except DoError as exc:
            # The waits that follow sort a 422 out.
            if exc.status != 422:
                raise
            return None
        return answer.get("action")

    def _action_status(self, action_id: Any) -> str:
        try:
            return str(
                self.call(f"GET action {action_id}", self.client.actions.get, int(action_id))["action"][
                    "status"
                ]
            )
        except _NotFound:
            return "errored"

    # -- down: shut down, snapshot, verify, delete ------------------------------------------

    def stop(self, progress: Progress) -> Machine:
        droplet = self.find()
        if droplet is None:
            return self.describe()
        droplet_id = str(droplet["id"])
        if droplet.get("status") != "off":
            progress(f"shutting down droplet {droplet_id} cleanly")
            self._action(droplet_id, "shutdown")
            try:
                self._wait_status(droplet_id, "off", SHUTDOWN_TIMEOUT, progress)
            except PadlabError:
                progress("the guest did not shut down in time; powering it off")
                self._action(droplet_id, "power_off")
                self._wait_status(droplet_id, "off", cloud.STOP_TIMEOUT, progress)
        snapshot = self._snapshot(droplet_id, progress)
        progress(f"snapshot {snapshot['name']} verified; deleting droplet {droplet_id}")
        self._delete_droplet(droplet_id, progress)
        attached = self.options.get("machine_id")
        self.remember(
            machine_id=None,
            attached_gone=str(attached) if str(attached) == droplet_id else None,
            running_since=None,
        )
        self._delete_older_snapshots(str(snapshot["id"]), progress)
        return self.describe()

    def _snapshot(self, droplet_id: str, progress: Progress) -> dict[str, Any]:
        memo = self.memo()
        name = memo.get("pending_snapshot")
        if not name or memo.get("pending_droplet") != droplet_id:
            name = f"{self.resource_name()}-{int(time.time())}"
            memo = self.remember(pending_snapshot=name, pending_droplet=droplet_id, pending_action=None)
        running = memo.get("pending_action") and self._action_status(memo["pending_action"]) != "errored"
        if not running and not self._droplet_snapshot(droplet_id, name):
            progress(f"snapshotting droplet {droplet_id} as {name}")
            action = self._action(droplet_id, "snapshot", name=name)
            self.remember(pending_action=action["id"] if action else None)
        found: dict[str, Any] = {}

        def done() -> tuple[bool, str]:
            snap = self._droplet_snapshot(droplet_id, name)
            if snap:
                found["snapshot"] = snap
            return bool(snap), "snapshotting"

        retry.wait_for(
            done,
            f"waiting for snapshot {name}",
            SNAPSHOT_TIMEOUT,
            fix="the droplet is off and still billed; run `padlab down` again to finish",
            progress=progress,
        )
        snapshot_id = str(found["snapshot"]["id"])
        try:  # verify: the snapshot is listed account-wide, so a droplet can be made from it
            verified = self.call(f"GET snapshot {snapshot_id}", self.client.snapshots.get, snapshot_id)[
                "snapshot"
            ]
        except _NotFound:
            raise PadlabError(
                f"snapshot {name} is not available yet, so the droplet was kept",
                "run `padlab down` again in a minute",
            ) from None
        self.remember(
            snapshot_id=snapshot_id, pending_snapshot=None, pending_droplet=None, pending_action=None
        )
        return verified

    def _droplet_snapshot(self, droplet_id: str, name: str) -> dict[str, Any] | None:
        try:
            snaps = self._list(
                "list droplet snapshots",
                lambda **kw: self.client.droplets.list_snapshots(int(droplet_id), **kw),
                "snapshots",
            )
        except _NotFound:
            return None
        return next((s for s in snaps if s.get("name") == name), None)

    def _delete_droplet(self, droplet_id: str, progress: Progress) -> None:
        try:
            self.call(f"delete droplet {droplet_id}", self.client.droplets.destroy, int(droplet_id))
        except _NotFound:
            return

        def gone() -> tuple[bool, str]:
            droplet = self._get(droplet_id)
            return droplet is None, (droplet or {}).get("status", "deleted")

        retry.wait_for(
            gone,
            f"waiting for droplet {droplet_id} to be deleted",
            cloud.STOP_TIMEOUT,
            fix="check the DigitalOcean console, then run the command again",
            progress=progress,
        )

    def _delete_older_snapshots(self, keep: str, progress: Progress) -> None:
        for snap in self.snapshots():
            if str(snap["id"]) != keep:
                progress(f"deleting the older snapshot {snap['name']}")
                self._delete_snapshot(str(snap["id"]))

    def _delete_snapshot(self, snapshot_id: str) -> None:
        with contextlib.suppress(_NotFound):
            self.call(f"delete snapshot {snapshot_id}", self.client.snapshots.delete, snapshot_id)

    def _wait_status(self, droplet_id: str, status: str, timeout: float, progress: Progress) -> None:
        def check() -> tuple[bool, str]:
            droplet = self._get(droplet_id)
            now = (droplet or {}).get("status", "deleted")
            return now == status, now

        retry.wait_for(
            check,
            f"waiting for droplet {droplet_id} to be {status}",
            timeout,
            fix="check the DigitalOcean console, then run the same padlab command again",
            progress=progress,
        )

    # -- destroy -------------------------------------------------------------------------

    # -- autostop: the box snapshots and deletes itself ------------------------------------------

    def autostop_fields(self, action: str, machine: Machine | None) -> dict[str, Any]:
        """The `autostop.digitalocean` part of an `up` or `autostop` request (token included)."""
        if action != registry.SNAPSHOT_DELETE:
            return {}
        token = self.stored_box_key()
        return {
            "digitalocean": {
                "droplet_id": machine.id if machine is not None else None,
                "api_url": base_url(self.options, URL_ENV, DEFAULT_URL),
                "snapshot_prefix": self.resource_name(),
                "token": token,
            }
        }

    def stopped_by_box(self, machine: Machine, st: dict[str, Any]) -> tuple[float, str] | None:
        """A droplet gone, with a snapshot taken after the last `up`: only the agent does that.

        The box is deleted, so its stop record cannot be read; the snapshot's name
        (RESOURCE-UNIXTIME, as padlab names them) says when.
        """
        import datetime

        name = machine.extra.get("snapshot_name")
        if machine.extra.get("provider_state") != "snapshot" or not name:
            return None
        taken = float(name.rsplit("-", 1)[1])
        if taken < float(st.get("action_at") or 0):
            return None
        when = datetime.datetime.fromtimestamp(taken).strftime("%Y-%m-%d %H:%M")
        return taken, f"by autostop at {when} (snapshot {name}, droplet deleted)"

    def _delete(self, machine: Machine, progress: Progress) -> None:
        if machine.id:
            self._delete_droplet(machine.id, progress)
        for snap in self.snapshots():
            progress(f"deleting snapshot {snap['name']}")
            self._delete_snapshot(str(snap["id"]))


# DigitalOcean's error ids (specification/shared/responses/*.yml in digitalocean/openapi) and their status.
ERROR_IDS = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "unprocessable_entity": 422,
    "too_many_requests": 429,
    "server_error": 500,
}


def _error_body(body: Any) -> int | None:
    """The status of an error pydo returned as a result instead of raising, else None.

    pydo's generated operations return the body of every status the spec lists as a
    response: ``snapshots.get`` and ``snapshots.delete`` hand back 400 ("the resource
    is not a snapshot") and 404 bodies, ``droplets.get`` and others 404 bodies.
    """
    if isinstance(body, dict) and isinstance(body.get("id"), str) and "message" in body:
        return ERROR_IDS.get(body["id"])
    return None


def _rate_limited(headers: Any, now: Callable[[], float] = time.time) -> Exception:
    """A 429, read as DigitalOcean's API description says (digitalocean/openapi, description.yml).

    The per-minute burst limit answers with ``retry-after`` (seconds): wait that long.
    The hourly limit answers without it, with ``ratelimit-remaining: 0`` and
    ``ratelimit-reset`` (Unix time the oldest request expires): wait until then if that
    is soon, else stop at once with the time, instead of retrying into a closed door.
    """
    after = headers.get("retry-after")
    if after is not None:
        with contextlib.suppress(ValueError):
            return retry.Transient("HTTP 429 (burst rate limit)", retry_after=max(float(after), 0.0))
    reset = headers.get("ratelimit-reset")
    try:
        wait = float(reset) - now() if reset is not None else None
    except ValueError:
        wait = None
    if wait is None:
        return retry.Transient("HTTP 429")
    if wait <= retry.RATE_WAIT_MAX:
        return retry.Transient("HTTP 429 (hourly rate limit)", retry_after=max(wait, 0.0) + 1)
    when = time.strftime("%H:%M", time.localtime(float(reset)))
    return PadlabError(
        f"DigitalOcean's hourly API rate limit for this token is used up until {when} "
        f"(about {wait / 60:.0f} min from now)",
        f"wait until {when}, then run the command again; other programs using the same token count too",
    )


class DoError(PadlabError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, "check the profile's settings (padlab init NAME --force ...) and try again")
        self.status = status


def _message(exc: Any) -> str:
    try:
        return str(exc.response.json().get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(getattr(exc, "reason", "") or "error")


def _fingerprint(public_key: str) -> str:
    """MD5 colon-hex of the key blob: how DigitalOcean names ssh keys."""
    blob = base64.b64decode(public_key.split()[1])
    digest = hashlib.md5(blob).hexdigest()  # noqa: S324 - DigitalOcean's fingerprint format, not security
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def verify_key(value: str, api_url: str | None = None) -> None:
    """A cheap authenticated call (the account), so `padlab login` stores only a token that works."""
    import pydo
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    url = base_url({"api_url": api_url}, URL_ENV, DEFAULT_URL)
    try:
        pydo.Client(token=value, endpoint=url, retry_total=2).account.get()
    except (ClientAuthenticationError, HttpResponseError) as exc:
        raise PadlabError(
            f"DigitalOcean did not accept the token you entered ({type(exc).__name__})",
            "check it (a personal access token with read and write scope), then run `padlab login digitalocean` again",
        ) from None


def store_autostop_token(value: str, api_url: str | None, verify: bool) -> tuple[str, str]:
    """Keep the box's token for autostop; refuse the full-access token padlab itself uses.

    Returns where it is stored and what the check could and could not verify.
    """
    check = (lambda key: _verify_autostop_token(key, api_url)) if verify else None
    return cloud.keep_box_key(BOX_KEY, value, secret, check)


# Scopes a read cannot show: DigitalOcean has no call that lists a token's scopes, and only the
# snapshot action and the droplet delete need these, so only acting on a droplet would tell.
AUTOSTOP_UNVERIFIABLE = {
    "droplet:update": "only the snapshot action needs it, and padlab will not act to check",
    "image:create": "only the snapshot action needs it, and padlab will not act to check",
    "droplet:delete": "only deleting a droplet needs it, and padlab will not act to check",
}


def _verify_autostop_token(value: str, api_url: str | None) -> str:
    """Read-only calls: what the stop reads must work, and a scope the box must never have must not.

    Nothing on the account changes. Reads prove droplet:read and snapshot:read (and the
    snapshot lookup's scopes when the account has a snapshot to look up). Reading the
    billing balance (billing:read) must be refused: a full-access token, or one wider
    than autostop's, is refused here. What no read can show is in the returned note.
    """
    import pydo
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    url = base_url({"api_url": api_url}, URL_ENV, DEFAULT_URL)
    client = pydo.Client(token=value, endpoint=url, retry_total=2)

    def read(op_id: str, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        scopes = ", ".join(do_api.BY_ID[op_id].scopes)
        try:
            body = fn(**kwargs)
        except ClientAuthenticationError:
            raise PadlabError(
                "DigitalOcean did not accept the autostop token (HTTP 401)", AUTOSTOP_HOW
            ) from None
        except HttpResponseError as exc:
            if exc.status_code == 403:
                raise PadlabError(
                    f"the autostop token may not {what} (DigitalOcean refused {op_id}, which needs {scopes})",
                    AUTOSTOP_HOW,
                ) from None
            raise PadlabError(
                f"could not check the autostop token: DigitalOcean answered HTTP {exc.status_code} to {what}",
                "try again; " + AUTOSTOP_HOW,
            ) from None
        if _error_body(body) is not None:
            raise PadlabError(
                f"could not check the autostop token: DigitalOcean answered {body.get('id')} to {what}",
                "try again; " + AUTOSTOP_HOW,
            )
        return body

    read("droplets_list", "list droplets", client.droplets.list, per_page=1)
    verified = ["droplet:read"]
    snaps = read(
        "snapshots_list", "list snapshots", client.snapshots.list, per_page=1, resource_type="droplet"
    )
    verified.append("snapshot:read")
    unverified = dict(AUTOSTOP_UNVERIFIABLE)
    if snaps.get("snapshots"):  # an existing snapshot: its lookup (the box's verify step) can be tried
        snapshot = str(snaps["snapshots"][0]["id"])
        read("snapshots_get", "look up a snapshot", client.snapshots.get, snapshot_id=snapshot)
        verified.append("block_storage_snapshot:read")
    else:
        unverified["block_storage_snapshot:read"] = "the account has no snapshot to look up"
    try:
        wide = client.balance.get()
    except HttpResponseError as exc:
        if exc.status_code != 403:
            raise PadlabError(
                f"could not confirm that the autostop token is scoped (DigitalOcean answered {exc.status_code})",
                "try again; " + AUTOSTOP_HOW,
            ) from None
    else:
        if _error_body(wide) is None:
            raise PadlabError(
                "that token may read billing (a full-access token?); the box must hold only autostop's scopes",
                AUTOSTOP_HOW,
            )
    missing = "; ".join(f"{scope} ({why})" for scope, why in unverified.items())
    return (
        f"verified by reading: {', '.join(verified)}; not verified: {missing}; make sure the token has them"
    )


def catalog(api_url: str | None = None) -> dict[str, Any]:
    """DigitalOcean's own list (GET /v2/sizes): its GPU sizes (all sizes if it has none) with their
    hourly price and the regions each is offered in; for the panel's new-workstation form."""
    from padlab.profiles import Profile

    provider = DigitalOceanProvider(
        Profile(name="catalog", provider="digitalocean", options={"api_url": api_url})
    )
    sizes = [
        s
        for s in provider._list("list sizes", provider.client.sizes.list, "sizes")
        if s.get("available", True)
    ]
    gpus = [s for s in sizes if str(s.get("slug", "")).startswith("gpu-")] or sizes
    return {
        "machine_types": [
            {
                "name": s["slug"],
                "price_per_hour": s.get("price_hourly"),
                "regions": list(s.get("regions") or []),
            }
            for s in gpus
        ],
        "source": "DigitalOcean API (sizes)",
    }
