"""Strict fake of the DigitalOcean API v2 (https://api.digitalocean.com/v2) for GPU droplets.

Shapes follow DigitalOcean's public OpenAPI spec, github.com/digitalocean/openapi
(specification/resources/droplets/{droplets_list,droplets_create}.yml,
models/{droplet,droplet_actions,droplet_snapshot}.yml, shared/description.md for
errors, pagination and rate-limit headers), the request params of the Stainless
SDK generated from it (``gpu_droplet_create_params.py`` in the ``gradient``
package) and pydo 0.44's generated operations (``pydo/operations/_operations.py``).

* Envelopes: ``{"droplet": {...}}``; collections ``{"droplets": [...], "links":
  {...}, "meta": {"total": N}}`` with ``per_page`` (1..200, default 20) and
  ``page``; ``links.pages`` holds first/prev/next/last URLs and is absent
  (``links: {}``) when everything fits on one page.
* ``GET /v2/droplets`` lists only non-GPU droplets unless ``type=gpus``;
  ``tag_name`` cannot be combined with ``name`` or ``type``; ``name`` is an
  exact, case-insensitive match.
* Errors: ``{"id": "not_found", "message": ..., "request_id": ...}``; 401 is
  ``unauthorized`` / "Unable to authenticate you."; 429 ``too_many_requests``.
* Tokens: the full-access ``token``, and ``scoped_tokens`` (custom scopes). Each
  route's scopes come from the one table, ``padlab.providers.do_api.OPERATIONS``
  (transcribed from the spec's ``security`` lists, the "Required Permissions" of
  droplet actions, and the "Requires `...` scope" notes on request fields, with
  file and commit per row); a request without all of them is 403 ``forbidden``.
  A request that is no row of the table is recorded in ``unlisted``.
* 429: ``ratelimit-remaining: 0`` with ``ratelimit-reset`` (the hourly limit);
  ``fail_next(429, retry_after=N)`` adds ``retry-after`` (the burst limit), as
  ``description.yml`` ("Rate Limit") describes them.
* ``GET``/``DELETE /v2/snapshots/{id}`` of an image that is not a snapshot is
  400 ``bad_request`` "the resource is not a snapshot" (``not_a_snapshot.yml``).
* Create answers 202 with ``links.actions``; actions answer 201; deletes 204.

Choices where the reference is silent (kept strict on purpose):

* Where an operation's ``security`` lists several scopes, all are required (the
  OpenAPI reading); whether DigitalOcean wants all or any is not published.
* Scopes are checked before anything is looked up; the spec does not say which
  comes first, so padlab never relies on it (a 404 for a made-up id proves nothing).

* Unknown body fields (422) and unknown query parameters (400) are rejected
  while ``strict`` is on; the live API is believed to ignore them.
* ``tag_name`` listings also hide GPU droplets (the docs only promise the
  ``type=gpus`` route), so a client must use ``type=gpus`` to find them.
* Power actions on a droplet already in that state, and any action while
  another is in progress, are 422 ``unprocessable_entity``.  Snapshots of an
  active droplet are allowed (DigitalOcean takes live snapshots); the snapshot
  appears in ``/v2/snapshots`` only once its action has completed.
* ``ssh_keys`` entries are key IDs (integers) or fingerprints (strings).
* Multi-create (``names``) and action types other than power_on, power_off,
  shutdown, reboot and snapshot answer 422: the fake does not implement them.
* The account offers the regions/sizes/images in ``do_catalog``.
* Billing (``/v2/customers/my/balance``, ``/invoices``, ``/invoices/{uuid}``):
  see ``do_billing``; the only invoice is the current month's preview.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urlencode

from padlab.providers import do_api

from . import do_billing, do_catalog
from ._http import ApiError, FakeServer, Request, Response, route
from ._ops import MachineOps
from .backend import BackendState, MachineBackend, MachineSpec, MemoryBackend
from .do_records import Action, Droplet, Snapshot, now, ssh_fingerprint
from .schema import Field, validate

ERROR_IDS = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "Unable to authenticate you."),
    403: ("forbidden", "You are not authorized to perform this operation."),
    404: ("not_found", "The resource you were accessing could not be found."),
    405: ("method_not_allowed", "The method is not allowed for the requested URL."),
    408: ("request_timeout", "The request timed out."),
    422: ("unprocessable_entity", "The request could not be processed."),
    429: ("too_many_requests", "API Rate limit exceeded."),
    500: ("server_error", "Unexpected server-side error"),
    502: ("bad_gateway", "Bad gateway"),
    503: ("service_unavailable", "Service unavailable"),
    504: ("gateway_timeout", "Gateway timeout"),
}
ACTION_PARAMS: dict[str, tuple[str, ...]] = {
    "enable_backups": ("backup_policy",), "disable_backups": (), "change_backup_policy": ("backup_policy",),
    "reboot": (), "power_cycle": (), "shutdown": (), "power_off": (), "power_on": (), "restore": ("image",),
    "password_reset": (), "resize": ("size", "disk"), "rebuild": ("image",), "rename": ("name",),
    "change_kernel": ("kernel",), "enable_ipv6": (), "snapshot": ("name",),
}  # fmt: skip
"""Documented droplet action types and the body parameters each one takes."""
HOSTNAME = re.compile(r"^[a-zA-Z0-9.-]{1,255}$")
TAG = re.compile(r"^[a-zA-Z0-9_:.-]{1,255}$")
RATE_LIMIT = 5000


def _hostname(value: str) -> str | None:
    return (
        None
        if HOSTNAME.match(value)
        else "Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)"
    )


def _tags(value: list[str] | None) -> str | None:
    bad = [tag for tag in value or [] if not TAG.match(tag)]
    return f"invalid tag name(s): {bad}" if bad else None


def _user_data(value: str) -> str | None:
    return None if len(value.encode()) <= 64 * 1024 else "user_data may not exceed 64 KiB"


CREATE_FIELDS = {
    "name": Field((str,), required=True, check=_hostname),
    "size": Field((str,), required=True),
    "image": Field((str, int), required=True),
    "region": Field((str,)),
    "ssh_keys": Field((list,), items=(str, int)),
    "backups": Field((bool,)),
    "backup_policy": Field((dict,)),
    "ipv6": Field((bool,)),
    "monitoring": Field((bool,)),
    "private_networking": Field((bool,)),
    "tags": Field((list,), nullable=True, items=(str,), check=_tags),
    "user_data": Field((str,), check=_user_data),
    "volumes": Field((list,), items=(str,)),
    "vpc_uuid": Field((str,)),
    "with_droplet_agent": Field((bool,)),
}
ACTION_FIELDS = {
    "type": Field((str,), required=True, enum=tuple(ACTION_PARAMS)),
    "name": Field((str,)),
    "size": Field((str,)),
    "disk": Field((bool,)),
    "image": Field((str, int)),
    "kernel": Field((int,)),
    "backup_policy": Field((dict,)),
}
KEY_FIELDS = {"name": Field((str,), required=True), "public_key": Field((str,), required=True)}
PAGING = ("per_page", "page")


ROUTE_OPERATIONS = {
    "list_droplets": "droplets_list",
    "create_droplet": "droplets_create",
    "get_droplet": "droplets_get",
    "delete_droplet": "droplets_destroy",
    "list_droplet_snapshots": "droplets_list_snapshots",
    "post_action": "dropletActions_post:{type}",
    "get_droplet_action": "dropletActions_get",
    "get_action": "actions_get",
    "list_snapshots": "snapshots_list",
    "get_snapshot": "snapshots_get",
    "delete_snapshot": "snapshots_delete",
    "list_sizes": "sizes_list",
    "list_keys": "sshKeys_list",
    "create_key": "sshKeys_create",
    "get_account": "account_get",
    "get_balance": "balance_get",
    "list_invoices": "invoices_list",
    "get_invoice": "invoices_get_byUUID",
}
"""Each route's operation in ``padlab.providers.do_api.OPERATIONS`` (the one table, transcribed from
DigitalOcean's OpenAPI spec with file and commit per row): its scopes are the ones enforced here.
A droplet action's operation depends on its ``type``."""
ACTION_SCOPES = ("droplet:update",)
"""What every droplet action needs (``dropletActions_post.yml``'s ``security``); types padlab never
sends are not in the table, so a request for one is recorded as unlisted."""
SCOPE_RE = re.compile(r"[a-z_]+:(create|read|update|delete)")


class FakeDigitalOcean(FakeServer):
    """``with FakeDigitalOcean(token="t", tls=True) as fake: pydo.Client(token="t", endpoint=fake.url)``."""

    def __init__(
        self,
        token: str,
        backend: MachineBackend | None = None,
        *,
        strict: bool = True,
        tls: bool = False,
        scoped_tokens: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        super().__init__(tls=tls)
        self.token = token  # full access
        self.scoped_tokens = {t: frozenset(scopes) for t, scopes in (scoped_tokens or {}).items()}
        bad = [s for scopes in self.scoped_tokens.values() for s in scopes if not SCOPE_RE.fullmatch(s)]
        if bad:
            raise ValueError(f"not DigitalOcean scopes (resource:create|read|update|delete): {bad}")
        self.backend: MachineBackend = backend if backend is not None else MemoryBackend()
        self.strict = strict
        self._droplets: dict[int, Droplet] = {}
        self._actions: dict[int, Action] = {}
        self._snapshots: dict[int, Snapshot] = {}
        self._keys: dict[int, dict[str, Any]] = {}
        self._droplet_ids = itertools.count(3164444)
        self._action_ids = itertools.count(36804636)
        self._snapshot_ids = itertools.count(6372321)
        self._key_ids = itertools.count(289794)
        self._state_lock = threading.RLock()
        self._ops = MachineOps(self.errors)
        self.billing = do_billing.Billing(token)
        self.unlisted: list[str] = []
        """Requests that are none of ``do_api.OPERATIONS`` (padlab's tests require none)."""
        self.rate_limit_reset_s = 3600
        """Seconds until ``ratelimit-reset``: when the oldest request of the hour expires."""

    # -- FakeServer hooks -------------------------------------------------------

    def authenticate(self, request: Request) -> None:
        needed = self._scopes_of(request)
        given = request.headers.get("authorization") or ""
        if given == f"Bearer {self.token}":
            return
        scopes = next((s for t, s in self.scoped_tokens.items() if given == f"Bearer {t}"), None)
        if scopes is None:
            raise self.error(401)
        if not needed <= scopes:
            raise self.error(403)

    def _scopes_of(self, request: Request) -> frozenset[str]:
        """Every scope the operation this request reaches needs, from ``do_api.OPERATIONS``.

        A request that is not one of the table's operations (no route, or an action type
        padlab never sends) is recorded in ``unlisted``: the tests of padlab's client and
        box require that list to stay empty.
        """
        for method, pattern, name in self._routes:
            if method == request.method and pattern.fullmatch(request.path):
                op_id = ROUTE_OPERATIONS[name]
                needed: set[str] = set()
                if "{type}" in op_id:
                    kind = self._action_type(request)
                    op_id = op_id.format(type=kind)
                    needed.update(ACTION_SCOPES)
                op = do_api.BY_ID.get(op_id)
                if op is None:
                    self.unlisted.append(f"{request.method} {request.path} ({op_id})")
                    return frozenset(needed)
                needed.update(op.scopes)
                body = self._json_or_empty(request) if request.method == "POST" else {}
                needed.update(
                    scope for field, scope in op.field_scopes if field in request.query or field in body
                )
                return frozenset(needed)
        self.unlisted.append(f"{request.method} {request.path} (no route)")
        return frozenset()

    @staticmethod
    def _json_or_empty(request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _action_type(self, request: Request) -> str:
        return str(self._json_or_empty(request).get("type"))

    def error(self, status: int, message: str | None = None) -> ApiError:
        error_id, default = ERROR_IDS.get(status, ERROR_IDS[500])
        body = {"id": error_id, "message": message or default, "request_id": str(uuid.uuid4())}
        return ApiError(status, body, {"ratelimit-remaining": "0"} if status == 429 else None)

    def extra_headers(self) -> dict[str, str]:
        return {
            "ratelimit-limit": str(RATE_LIMIT),
            "ratelimit-remaining": str(max(RATE_LIMIT - len(self._log), 0)),
            "ratelimit-reset": str(int(time.time()) + self.rate_limit_reset_s),
        }

    def on_close(self) -> None:
        self._ops.close()

    # -- helpers ------------------------------------------------------------------

    def _reject_unknown(self, request: Request, allowed: tuple[str, ...]) -> None:
        unknown = [key for key in request.query if key not in allowed]
        if unknown and self.strict:
            raise self.error(400, f"unknown query parameter(s): {', '.join(unknown)}")

    def _paging(self, request: Request) -> tuple[int, int]:
        """Validated (page, per_page); the spec bounds per_page to 1..200."""
        values = []
        for name, default, maximum in (("page", 1, None), ("per_page", 20, 200)):
            raw = request.arg(name)
            value = default if raw is None else int(raw) if raw.isdigit() else 0
            if value < 1 or (maximum is not None and value > maximum):
                limit = f"between 1 and {maximum}" if maximum else "at least 1"
                raise self.error(400, f"{name} must be an integer {limit}")
            values.append(value)
        return values[0], values[1]

    def _page(self, request: Request, key: str, items: list[Any], allowed: tuple[str, ...] = ()) -> Response:
        self._reject_unknown(request, (*PAGING, *allowed))
        page, per_page = self._paging(request)
        last = max(1, math.ceil(len(items) / per_page))
        pages = {}

        def link(number: int) -> str:
            query = {k: request.arg(k) for k in request.query}
            return f"{self.url}{request.path}?{urlencode({**query, 'page': number})}"

        if page > 1:
            pages.update(first=link(1), prev=link(min(page - 1, last)))
        if page < last:
            pages.update(next=link(page + 1), last=link(last))
        chunk = items[(page - 1) * per_page : page * per_page]
        links = {"pages": pages} if pages else {}
        return Response(200, {key: chunk, "links": links, "meta": {"total": len(items)}})

    def _parse(self, request: Request) -> Any:
        try:
            return request.json()
        except ValueError:
            raise self.error(400, "The request body is not valid JSON.") from None

    def _validate(self, body: Any, fields: Mapping[str, Field]) -> dict[str, Any]:
        issues = validate(body, fields, allow_unknown=not self.strict)
        if issues:
            raise self.error(422, "; ".join(issue.describe() for issue in issues))
        return body

    def _droplet(self, droplet_id: str) -> Droplet:
        droplet = self._droplets.get(int(droplet_id)) if droplet_id.isdigit() else None
        if droplet is None:
            raise self.error(404)
        return droplet

    def _status(self, droplet: Droplet) -> str:
        if self._ops.pending(str(droplet.id)) == "create":
            return "new"
        state = self.backend.state(str(droplet.id))
        if state == "running":
            droplet.was_active = True
        if state in ("running", "stopping"):
            return "active"
        return "new" if state == "booting" and not droplet.was_active else "off"

    def _render(self, droplet: Droplet) -> dict[str, Any]:
        return droplet.render(self._status(droplet))

    def _action_status(self, action: Action) -> str:
        with self._state_lock:
            if action.status != "in-progress" or action.op.running:
                return action.status
            if action.op.error is not None:
                action.status = "errored"
            elif (
                action.target is None
                or action.droplet_id not in self._droplets  # destroyed: nothing left to wait for
                or self.backend.state(str(action.droplet_id)) == action.target
            ):
                action.status = "completed"
            if action.status != "in-progress":
                action.completed_at = now()
            return action.status

    def _render_action(self, action: Action) -> dict[str, Any]:
        return action.render(self._action_status(action))

    def _start_action(
        self, droplet: Droplet, kind: str, target: BackendState | None, fn: Callable[[], None]
    ) -> Action:
        op = self._ops.submit(str(droplet.id), kind, fn)
        action = Action(next(self._action_ids), kind, droplet.id, droplet.region, op, target)
        self._actions[action.id] = action
        return action

    def _boot(self, droplet: Droplet) -> None:
        droplet.public_ip = self.backend.start(str(droplet.id))

    def _resolve_image(
        self, image: str | int, size: do_catalog.Size, region: str
    ) -> tuple[dict[str, Any], MachineSpec]:
        if isinstance(image, str) and image in do_catalog.IMAGES:
            return do_catalog.IMAGES[image].render(), MachineSpec(image=image)
        for base in do_catalog.IMAGES.values():
            if image == base.id:
                return base.render(), MachineSpec(image=base.slug)
        snapshot = self._snapshots.get(image) if isinstance(image, int) else None
        if snapshot is None:
            raise self.error(422, "You specified an invalid image for Droplet creation.")
        if snapshot.region != region:
            raise self.error(422, f"Image {image} is not available in region {region}.")
        if size.disk_gb < snapshot.min_disk_size:
            raise self.error(422, f"Size {size.slug} is too small for image {image}.")
        rendered = {
            **snapshot.render_for_droplet(),
            "description": "",
            "tags": [],
            "status": "available",
            "error_message": "",
        }
        return rendered, MachineSpec(snapshot_id=str(snapshot.id))

    def _resolve_region(self, requested: str | None, size: do_catalog.Size) -> str:
        """An exact slug, a slug prefix such as ``nyc``, or any region offering the size."""
        if requested in do_catalog.REGION_NAMES:
            if requested not in size.regions:
                raise self.error(422, f"Size {size.slug} is not available in region {requested}.")
            return requested
        if requested is not None and not requested.isalpha():
            raise self.error(422, "You specified an invalid region for Droplet creation.")
        candidates = [slug for slug in size.regions if slug.startswith(requested or "")]
        if not candidates:
            raise self.error(422, "You specified an invalid region for Droplet creation.")
        return candidates[0]

    def _resolve_keys(self, refs: list[str | int]) -> list[str]:
        by_fingerprint = {key["fingerprint"]: key for key in self._keys.values()}
        keys = [self._keys.get(ref) if isinstance(ref, int) else by_fingerprint.get(ref) for ref in refs]
        if None in keys:
            raise self.error(422, "You specified an invalid SSH key ID or fingerprint.")
        return [key["public_key"] for key in keys if key is not None]

    # -- droplets -----------------------------------------------------------------

    @route("GET", "/v2/droplets")
    def list_droplets(self, request: Request) -> Response:
        tag, name, kind = request.arg("tag_name"), request.arg("name"), request.arg("type")
        if tag is not None and (name is not None or kind is not None):
            raise self.error(400, "tag_name can not be combined with name or type")
        if kind not in (None, "droplets", "gpus"):
            raise self.error(400, "type must be one of: droplets, gpus")
        with self._state_lock:
            droplets = sorted(self._droplets.values(), key=lambda d: d.id)
        droplets = [d for d in droplets if d.size.is_gpu == (kind == "gpus")]
        if tag is not None:
            droplets = [d for d in droplets if tag in d.tags]
        if name is not None:
            droplets = [d for d in droplets if d.name.lower() == name.lower()]
        items = [self._render(d) for d in droplets]
        return self._page(request, "droplets", items, ("tag_name", "name", "type"))

    @route("POST", "/v2/droplets")
    def create_droplet(self, request: Request) -> Response:
        body = self._parse(request)
        if isinstance(body, dict) and "names" in body:
            raise self.error(422, "creating several droplets at once (names) is not implemented by this fake")
        body = self._validate(body, CREATE_FIELDS)
        size = do_catalog.SIZES.get(body["size"])
        if size is None:
            raise self.error(422, "You specified an invalid size for Droplet creation.")
        with self._state_lock:
            region = self._resolve_region(body.get("region"), size)
            image, image_spec = self._resolve_image(body["image"], size, region)
            public_keys = self._resolve_keys(body.get("ssh_keys", []))
            droplet_id = next(self._droplet_ids)
            features = ["droplet_agent", "private_networking"]
            features += [flag for flag in ("backups", "ipv6", "monitoring") if body.get(flag)]
            droplet = Droplet(
                id=droplet_id,
                name=body["name"],
                size=size,
                region=region,
                image=image,
                tags=list(body.get("tags") or []),
                features=features,
                vpc_uuid=body.get("vpc_uuid", str(uuid.uuid5(uuid.NAMESPACE_DNS, f"vpc.{region}"))),
                private_ip=f"10.108.{droplet_id % 15}.{droplet_id % 250 + 2}",
                volume_ids=list(body.get("volumes", [])),
            )
            spec = MachineSpec(
                provider="digitalocean",
                name=droplet.name,
                size=size.slug,
                region=region,
                disk_gb=size.disk_gb,
                ssh_public_keys=public_keys,
                tags=droplet.tags,
                **image_spec,
            )
            if "user_data" in body:
                spec["user_data"] = body["user_data"]

            def provision() -> None:
                self.backend.create(str(droplet_id), spec)
                self._boot(droplet)

            self._droplets[droplet_id] = droplet
            self.billing.start(droplet_id, "Droplets", f"{droplet.name} ({size.slug})", size.price_hourly)
            action = self._start_action(droplet, "create", "running", provision)
            rendered = self._render(droplet)
        href = f"{self.url}/v2/actions/{action.id}"
        links = {"actions": [{"id": action.id, "rel": "create", "href": href}]}
        return Response(202, {"droplet": rendered, "links": links})

    @route("GET", "/v2/droplets/{droplet_id}")
    def get_droplet(self, request: Request, droplet_id: str) -> Response:
        self._reject_unknown(request, ())
        return Response(200, {"droplet": self._render(self._droplet(droplet_id))})

    @route("DELETE", "/v2/droplets/{droplet_id}")
    def delete_droplet(self, request: Request, droplet_id: str) -> Response:
        with self._state_lock:
            droplet = self._droplet(droplet_id)
            del self._droplets[droplet.id]
            self.billing.end(droplet.id, "Droplets")
            self._ops.submit(str(droplet.id), "destroy", lambda: self.backend.destroy(str(droplet.id)))
            self._ops.retire(str(droplet.id))
        return Response(204)

    @route("GET", "/v2/droplets/{droplet_id}/snapshots")
    def list_droplet_snapshots(self, request: Request, droplet_id: str) -> Response:
        droplet = self._droplet(droplet_id)
        items = [self._snapshots[i].render_for_droplet() for i in droplet.snapshot_ids]
        return self._page(request, "snapshots", items)

    # -- actions ------------------------------------------------------------------

    @route("POST", "/v2/droplets/{droplet_id}/actions")
    def post_action(self, request: Request, droplet_id: str) -> Response:
        droplet = self._droplet(droplet_id)
        body = self._validate(self._parse(request), ACTION_FIELDS)
        kind = body["type"]
        misplaced = [key for key in body if key != "type" and key not in ACTION_PARAMS[kind]]
        if misplaced and self.strict:
            raise self.error(422, f"{', '.join(misplaced)} is not a parameter of {kind} actions")
        with self._state_lock:
            busy = [a for a in self._actions.values() if a.droplet_id == droplet.id]
            if any(self._action_status(a) == "in-progress" for a in busy):
                raise self.error(422, "Droplet already has a pending event.")
            status = self._status(droplet)
            if kind == "power_on":
                if status != "off":
                    raise self.error(422, "Droplet is already powered on.")
                action = self._start_action(droplet, kind, "running", lambda: self._boot(droplet))
            elif kind in ("power_off", "shutdown"):
                if status == "off":
                    raise self.error(422, "Droplet is already powered off.")
                action = self._start_action(droplet, kind, "off", lambda: self.backend.stop(str(droplet.id)))
            elif kind == "reboot":
                if status != "active":
                    raise self.error(422, "Droplet is not powered on.")
                action = self._start_action(droplet, kind, "running", lambda: self._reboot(droplet))
            elif kind == "snapshot":
                name = body.get("name") or f"{droplet.name}-{int(time.time() * 1000)}"
                snapshot = Snapshot(
                    next(self._snapshot_ids),
                    name,
                    droplet.id,
                    droplet.region,
                    droplet.size.disk_gb,
                    str(droplet.image.get("distribution", "Unknown")),
                )
                action = self._start_action(
                    droplet, kind, None, lambda: self._take_snapshot(droplet, snapshot)
                )
            else:
                raise self.error(422, f"{kind} actions are not implemented by this fake")
            rendered = self._render_action(action)
        return Response(201, {"action": rendered})

    def _reboot(self, droplet: Droplet) -> None:
        self.backend.stop(str(droplet.id))
        self._boot(droplet)

    def _take_snapshot(self, droplet: Droplet, snapshot: Snapshot) -> None:
        self.backend.snapshot(str(droplet.id), str(snapshot.id))
        with self._state_lock:
            self._snapshots[snapshot.id] = snapshot
            droplet.snapshot_ids.append(snapshot.id)
            gb = float(snapshot.render()["size_gigabytes"])
            hourly = gb * do_billing.SNAPSHOT_GB_MONTH / do_billing.HOURS_PER_MONTH
            self.billing.start(snapshot.id, "Snapshots", f"{snapshot.name} ({gb:g} GB)", hourly)

    @route("GET", "/v2/droplets/{droplet_id}/actions/{action_id}")
    def get_droplet_action(self, request: Request, droplet_id: str, action_id: str) -> Response:
        droplet = self._droplet(droplet_id)
        action = self._actions.get(int(action_id)) if action_id.isdigit() else None
        if action is None or action.droplet_id != droplet.id:
            raise self.error(404)
        return Response(200, {"action": self._render_action(action)})

    @route("GET", "/v2/actions/{action_id}")
    def get_action(self, request: Request, action_id: str) -> Response:
        action = self._actions.get(int(action_id)) if action_id.isdigit() else None
        if action is None:
            raise self.error(404)
        return Response(200, {"action": self._render_action(action)})

    # -- snapshots ----------------------------------------------------------------

    @route("GET", "/v2/snapshots")
    def list_snapshots(self, request: Request) -> Response:
        resource_type = request.arg("resource_type")
        if resource_type not in (None, "droplet", "volume"):
            raise self.error(400, "resource_type must be one of: droplet, volume")
        with self._state_lock:
            snapshots = sorted(self._snapshots.values(), key=lambda s: s.id)
        items = [s.render() for s in snapshots] if resource_type != "volume" else []
        return self._page(request, "snapshots", items, ("resource_type",))

    def _snapshot(self, snapshot_id: str) -> Snapshot:
        snapshot = self._snapshots.get(int(snapshot_id)) if snapshot_id.isdigit() else None
        if snapshot is None and any(snapshot_id == str(image.id) for image in do_catalog.IMAGES.values()):
            # An image that is not a snapshot: snapshots/responses/not_a_snapshot.yml.
            raise self.error(400, "the resource is not a snapshot")
        if snapshot is None:
            raise self.error(404)
        return snapshot

    @route("GET", "/v2/snapshots/{snapshot_id}")
    def get_snapshot(self, request: Request, snapshot_id: str) -> Response:
        return Response(200, {"snapshot": self._snapshot(snapshot_id).render()})

    @route("DELETE", "/v2/snapshots/{snapshot_id}")
    def delete_snapshot(self, request: Request, snapshot_id: str) -> Response:
        with self._state_lock:
            snapshot = self._snapshot(snapshot_id)
            del self._snapshots[snapshot.id]
            self.billing.end(snapshot.id, "Snapshots")
            droplet = self._droplets.get(snapshot.droplet_id)
            if droplet is not None:
                droplet.snapshot_ids.remove(snapshot.id)
            queue = f"snapshot-{snapshot.id}"
            delete = self._ops.after(
                str(snapshot.droplet_id), lambda: self.backend.delete_snapshot(str(snapshot.id))
            )
            self._ops.submit(queue, "delete", delete)
            self._ops.retire(queue)
        return Response(204)

    # -- catalog and account --------------------------------------------------------

    @route("GET", "/v2/sizes")
    def list_sizes(self, request: Request) -> Response:
        return self._page(request, "sizes", [size.render() for size in do_catalog.SIZES.values()])

    @route("GET", "/v2/account/keys")
    def list_keys(self, request: Request) -> Response:
        with self._state_lock:
            keys = [dict(key) for key in self._keys.values()]
        return self._page(request, "ssh_keys", keys)

    @route("POST", "/v2/account/keys")
    def create_key(self, request: Request) -> Response:
        body = self._validate(self._parse(request), KEY_FIELDS)
        fingerprint = ssh_fingerprint(body["public_key"])
        if fingerprint is None:
            raise self.error(422, "Key invalid, key should be of the format `type key [comment]`")
        with self._state_lock:
            if any(key["fingerprint"] == fingerprint for key in self._keys.values()):
                raise self.error(422, "SSH Key is already in use on your account")
            key = {
                "id": next(self._key_ids),
                "fingerprint": fingerprint,
                "public_key": body["public_key"].strip(),
                "name": body["name"],
            }
            self._keys[key["id"]] = key
        return Response(201, {"ssh_key": dict(key)})

    @route("GET", "/v2/account")
    def get_account(self, request: Request) -> Response:
        account = {
            "droplet_limit": 25,
            "floating_ip_limit": 3,
            "email": "padlab-tests@example.com",
            "name": "padlab tests",
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.token)),
            "email_verified": True,
            "status": "active",
            "status_message": "",
            "team": {"uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, "team")), "name": "padlab"},
        }
        return Response(200, {"account": account})

    # -- billing ------------------------------------------------------------------

    @route("GET", "/v2/customers/my/balance")
    def get_balance(self, request: Request) -> Response:
        self._reject_unknown(request, ())
        return Response(200, self.billing.balance())

    @route("GET", "/v2/customers/my/invoices")
    def list_invoices(self, request: Request) -> Response:
        response = self._page(request, "invoices", [])
        response.body["invoice_preview"] = self.billing.preview()
        return response

    @route("GET", "/v2/customers/my/invoices/{invoice_uuid}")
    def get_invoice(self, request: Request, invoice_uuid: str) -> Response:
        if invoice_uuid != self.billing.preview_uuid:
            raise self.error(404)
        return self._page(request, "invoice_items", self.billing.items())
