"""Strict fake of the Paperspace **v1** machines API (https://api.paperspace.com/v1).

Shapes follow Paperspace's published OpenAPI document for v1 ("Paperspace
OpenAPI", version 1, servers: https://api.paperspace.com/v1), as vendored in
github.com/PierreBeucher/cloudypad at
src/providers/paperspace/client/openapi/machines-only.json, and Paperspace's own
github.com/Paperspace/cli api/openapi.ts (generated from the same document): the
states, create body and list query below are pinned to them by
``paperspace_spec.py`` and ``test_paperspace_spec.py``:

* ``GET /machines`` -> ``{"hasMore", "nextPage"?, "items": [machine]}``; query
  ``after`` (cursor), ``limit`` (1..120), ``orderBy`` (dtCreated|name|state),
  ``order`` (asc|desc), ``name``, ``region``, ``agentType``, ``machineType``.
* ``POST /machines`` (required: name, machineType, templateId, diskSize, region;
  ``additionalProperties: false``), ``PUT /machines/{id}``, ``DELETE
  /machines/{id}``, ``PATCH /machines/{id}/start|stop|restart`` ->
  ``{"event": {...}, "data": machine}`` (PUT: ``{"data": machine}``).
* ``GET /machines/{id}`` -> the machine object itself.
* ``GET /os-templates`` -> ``{"hasMore", "nextPage"?, "items": [template]}`` (query ``after``,
  ``limit``, ``orderBy`` (name), ``order``, ``name``): each template's ``availableMachineTypes``
  (``machineTypeLabel``, ``isAvailable``) is the list of machine types it runs on. The reference
  lists no security for it: it answers without a key (a wrong key is still 401, see below).
* ``GET /machine-availability?machineType=&region=`` (both required) -> ``{"available": bool}``.
  The two listing calls are pinned by ``paperspace_spec`` (docs.digitalocean.com's Paperspace API
  reference); ``availability`` (machine type -> regions) starts as the GPU table of Paperspace's
  availability page (docs.digitalocean.com/products/paperspace/machines/details/availability: A6000
  in NY2 and CA1, A100-80G and H100 in NY2 only), and tests may change it.
* Auth: ``Authorization: Bearer <key>`` only.  The legacy ``X-Api-Key`` header
  of the retired api.paperspace.io API is not a credential here (401).
* Errors: ``{"message", "code", "details"?}`` (spec's ``components.responses.error``).

The v1 API is served by trpc-openapi (operation ids like ``query.auth.session``
in github.com/Paperspace/cli api/openapi.ts), so routing follows
github.com/jlalmes/trpc-openapi src/adapters/node-http/core.ts: an unknown path
*or an unsupported method* is ``404 {"message": "Not found", "code":
"NOT_FOUND"}`` and is answered before authentication; zod input failures are
``400 BAD_REQUEST "Input validation failed"``.

Choices where the reference is silent (kept strict on purpose):

* zod issues go in ``details.issues`` (the current spec allows ``details`` but
  not trpc-openapi's older top-level ``issues``).
* Unknown query parameters are rejected (400) while ``strict`` is on; the
  documented body rule ``additionalProperties: false`` is always enforced.
* ``nextPage`` is omitted on the last page: the schema does not mark it
  nullable or required, although its prose says "null".
* A key sent to ``/os-templates`` must still be the right one (401 otherwise).
* Unknown machineType or region in ``/machine-availability``: 400 (not ``available: false``).
* A create whose template lists the machine type with ``isAvailable: false``: 400.
* Start when not ``off``, stop when ``off`` or mid-transition, restart when not
  ``ready``: 400 BAD_REQUEST.  Unknown machineType/templateId/region: 400.
* ``startOnCreate`` defaults to true and ``publicIpType`` to ``dynamic``; a
  dynamic IP reads ``null`` while off and may change on every start.
* Machine types, templates and rates below are illustrative, not a price list.
"""

from __future__ import annotations

import base64
import datetime
import itertools
import secrets
import string
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._http import ApiError, FakeServer, Request, Response, route
from ._ops import MachineOps
from .backend import MachineBackend, MachineSpec, MemoryBackend
from .schema import Field, Issue, validate

REGIONS = ("ny2", "ca1", "ams1")
TEMPLATES: Mapping[str, str] = {"t0nspur5": "Ubuntu 22.04", "tmlbox22": "Ubuntu 22.04"}
"""templateId -> OS label; t0nspur5 is the public Ubuntu 22.04 template (tmlbox22: a second, illustrative)."""


@dataclass(frozen=True)
class MachineType:
    cpus: int
    ram_gb: int
    usage_rate: float  # USD per hour
    gpu: str | None = None
    gpu_memory_gb: int = 0
    gpu_count: int = 0


MACHINE_TYPES: Mapping[str, MachineType] = {
    "C5": MachineType(cpus=4, ram_gb=8, usage_rate=0.09),
    "P4000": MachineType(8, 30, 0.51, "Quadro P4000", 8, 1),
    "A4000": MachineType(8, 45, 0.76, "A4000", 16, 1),
    "A6000": MachineType(8, 45, 1.89, "A6000", 48, 1),
    "A100-80G": MachineType(12, 90, 3.18, "A100", 80, 1),
    "H100": MachineType(20, 250, 5.95, "H100", 80, 1),
}

# templateId -> (name, defaultSizeGb, the machine types it lists with isAvailable) for GET /os-templates.
OS_TEMPLATES: Mapping[str, tuple[str, int, Mapping[str, bool]]] = {
    "t0nspur5": (
        "Ubuntu 22.04 Server",
        50,
        {"C5": True, "P4000": False, "A4000": True, "A6000": True, "A100-80G": True, "H100": True},
    ),
    "tmlbox22": ("ML-in-a-Box Ubuntu 22.04", 100, {"A4000": True, "A6000": True, "H100": True}),
}
# Machine type -> the regions where it can be created now (GET /machine-availability).
AVAILABILITY: Mapping[str, tuple[str, ...]] = {
    "C5": REGIONS,
    "P4000": REGIONS,
    "A4000": REGIONS,
    "A6000": ("ny2", "ca1"),
    "A100-80G": ("ny2",),
    "H100": ("ny2",),
}

API_STATES = {"off": "off", "booting": "starting", "running": "ready", "stopping": "stopping"}
PENDING_STATES = {"create": "provisioning", "start": "starting", "stop": "stopping", "restart": "restarting"}
ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    408: "TIMEOUT",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}
DEFAULT_MESSAGES = {401: "UNAUTHORIZED", 404: "Not found", 429: "Too many requests"}

_FREQUENCIES = ("hourly", "daily", "weekly", "monthly")


def _positive(value: float) -> str | None:
    return None if value > 0 else "Number must be greater than 0"


def _non_empty(value: str) -> str | None:
    return None if value else "String must contain at least 1 character(s)"


_SHARED_FIELDS = {
    "machineType": Field((str,)),
    "diskSize": Field((float,), check=_positive),
    "networkId": Field((str,)),
    "publicIpType": Field((str,), enum=("static", "dynamic", "none")),
    "autoSnapshotEnabled": Field((bool,)),
    "autoSnapshotFrequency": Field((str,), enum=_FREQUENCIES),
    "autoSnapshotSaveCount": Field((float,)),
    "autoShutdownEnabled": Field((bool,)),
    "autoShutdownTimeout": Field((float,)),
    "autoShutdownForce": Field((bool,)),
    "restorePointEnabled": Field((bool,)),
    "restorePointFrequency": Field((str,), enum=("shutdown",)),
}
_REQUIRED_ON_CREATE = {
    "name": Field((str,), required=True, check=_non_empty),
    "machineType": Field((str,), required=True),
    "templateId": Field((str,), required=True),
    "diskSize": Field((float,), required=True, check=_positive),
    "region": Field((str,), required=True),
}
CREATE_FIELDS = {
    **_REQUIRED_ON_CREATE,
    **{key: spec for key, spec in _SHARED_FIELDS.items() if key not in _REQUIRED_ON_CREATE},
    "takeInitialSnapshot": Field((bool,)),
    "startupScriptId": Field((str,)),
    "emailPassword": Field((bool,)),
    "startOnCreate": Field((bool,)),
    "enableNvlink": Field((bool,)),
    "accessorIds": Field((list,), items=(str,)),
}
UPDATE_FIELDS = {**_SHARED_FIELDS, "name": Field((str,)), "restorePointSnapshotId": Field((str,))}
LIST_QUERY = {
    "after": Field((str,)),
    "limit": Field((int,), check=lambda n: None if 1 <= n <= 120 else "Number must be between 1 and 120"),
    "orderBy": Field((str,), enum=("dtCreated", "name", "state")),
    "order": Field((str,), enum=("asc", "desc")),
    "name": Field((str,)),
    "region": Field((str,)),
    "agentType": Field((str,)),
    "machineType": Field((str,)),
}
OS_TEMPLATES_QUERY = {
    "after": Field((str,)),
    "limit": LIST_QUERY["limit"],
    "orderBy": Field((str,), enum=("name",)),
    "order": Field((str,), enum=("asc", "desc")),
    "name": Field((str,)),
}
AVAILABILITY_QUERY = {"machineType": Field((str,), required=True), "region": Field((str,), required=True)}
# Settings echoed back verbatim in the machine object, with their defaults.
SETTINGS = {
    "networkId": None,
    "autoShutdownEnabled": False,
    "autoShutdownTimeout": None,
    "autoShutdownForce": None,
    "autoSnapshotEnabled": False,
    "autoSnapshotFrequency": None,
    "autoSnapshotSaveCount": None,
    "restorePointEnabled": False,
    "restorePointFrequency": None,
    "restorePointSnapshotId": None,
}


def _now() -> str:
    return (
        datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@dataclass
class _Machine:
    id: str
    seq: int
    name: str
    machine_type: str
    template_id: str
    region: str
    disk_gb: int
    public_ip_type: str
    private_ip: str
    settings: dict[str, Any]
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)
    public_ip: str | None = None


class FakePaperspace(FakeServer):
    """``with FakePaperspace(api_key="k") as fake: httpx.get(f"{fake.url}/machines", ...)``."""

    base_path = "/v1"
    auth_before_routing = False

    def __init__(
        self,
        api_key: str,
        backend: MachineBackend | None = None,
        *,
        strict: bool = True,
        tls: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(tls=tls, host=host)
        self.api_key = api_key
        self.backend: MachineBackend = backend if backend is not None else MemoryBackend()
        self.strict = strict
        self._machines: dict[str, _Machine] = {}
        self._seq = itertools.count(1)
        self._state_lock = threading.Lock()
        self._ops = MachineOps(self.errors)
        self.availability: dict[str, set[str]] = {name: set(where) for name, where in AVAILABILITY.items()}
        """Machine type -> regions with capacity now; tests take some away."""

    # -- FakeServer hooks -------------------------------------------------------

    def authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization")
        if header is None and (request.method, request.path) == ("GET", "/os-templates"):
            return  # the reference lists no security for osTemplates-list
        if header != f"Bearer {self.api_key}":
            raise self.error(401)

    def error(self, status: int, message: str | None = None, details: Any = None) -> ApiError:
        body: dict[str, Any] = {
            "message": message or DEFAULT_MESSAGES.get(status, ERROR_CODES.get(status, "Error")),
            "code": ERROR_CODES.get(status, "INTERNAL_SERVER_ERROR"),
        }
        if details is not None:
            body["details"] = details
        return ApiError(status, body)

    def method_not_allowed(self, allowed: list[str]) -> ApiError:
        return self.error(404)  # trpc-openapi matches method and path together

    def on_close(self) -> None:
        self._ops.close()

    # -- helpers ------------------------------------------------------------------

    def _invalid(self, issues: list[Issue]) -> ApiError:
        return self.error(400, "Input validation failed", {"issues": [issue.as_zod() for issue in issues]})

    def _body(self, request: Request, fields: Mapping[str, Field]) -> dict[str, Any]:
        try:
            body = request.json()
        except ValueError:
            raise self.error(400, "Failed to parse request body") from None
        issues = validate(body, fields)
        if issues:
            raise self._invalid(issues)
        return body

    def _machine(self, machine_id: str) -> _Machine:
        machine = self._machines.get(machine_id)
        if machine is None:
            raise self.error(404, f"Machine {machine_id} not found")
        return machine

    def _state(self, machine: _Machine) -> str:
        pending = self._ops.pending(machine.id)
        if pending is not None:
            return PENDING_STATES.get(pending, "upgrading")
        return API_STATES[self.backend.state(machine.id)]

    def _render(self, machine: _Machine) -> dict[str, Any]:
        kind = MACHINE_TYPES[machine.machine_type]
        state = self._state(machine)
        public_ip = machine.public_ip
        if machine.public_ip_type == "none" or (state == "off" and machine.public_ip_type == "dynamic"):
            public_ip = None
        accelerators = []
        if kind.gpu:
            accelerators = [{"name": kind.gpu, "memory": kind.gpu_memory_gb * 2**30, "count": kind.gpu_count}]
        return {
            "id": machine.id,
            "name": machine.name,
            "state": state,
            "os": TEMPLATES[machine.template_id],
            "machineType": machine.machine_type,
            "agentType": "LinuxHeadless",
            "cpus": kind.cpus,
            "ram": kind.ram_gb * 2**30,
            "storageTotal": machine.disk_gb * 2**30,
            "storageUsed": 0,
            "accelerators": accelerators,
            "region": machine.region,
            "privateIp": machine.private_ip,
            "publicIp": public_ip,
            "publicIpType": machine.public_ip_type,
            **machine.settings,
            "updatesPending": False,
            "usageRate": kind.usage_rate,
            "storageRate": round(machine.disk_gb * 0.04, 2),
            "dtCreated": machine.created,
            "dtModified": machine.modified,
            "dtDeleted": None,
            "reservation": None,
        }

    def _event(self, machine: _Machine, name: str) -> dict[str, Any]:
        now = _now()
        return {
            "id": secrets.token_hex(8),
            "name": name,
            "state": "in progress",
            "machineId": machine.id,
            "dtCreated": now,
            "dtStarted": now,
            "dtFinished": None,
            "error": None,
        }

    def _check_catalog(self, body: Mapping[str, Any]) -> None:
        if "machineType" in body and body["machineType"] not in MACHINE_TYPES:
            raise self.error(400, f"Invalid machine type: {body['machineType']}")
        if "templateId" in body and body["templateId"] not in TEMPLATES:
            raise self.error(400, f"Invalid template: {body['templateId']}")
        if "region" in body and body["region"] not in REGIONS:
            raise self.error(400, f"Invalid region: {body['region']}")
        if "templateId" in body and "machineType" in body:
            listed = OS_TEMPLATES[body["templateId"]][2]
            if not listed.get(body["machineType"], False):
                raise self.error(
                    400,
                    f"Template {body['templateId']} is not available on machine type {body['machineType']}",
                )

    def _boot(self, machine: _Machine) -> None:
        machine.public_ip = self.backend.start(machine.id)

    # -- endpoints ----------------------------------------------------------------

    @route("GET", "/machines")
    def list_machines(self, request: Request) -> Response:
        query = {key: values[-1] for key, values in request.query.items()}
        if query.get("limit", "").isdigit():
            query["limit"] = int(query["limit"])
        issues = validate(query, LIST_QUERY, allow_unknown=not self.strict)
        if issues:
            raise self._invalid(issues)
        limit = query.get("limit", 20)

        with self._state_lock:
            machines = list(self._machines.values())
        for key, attr in (("name", "name"), ("region", "region"), ("machineType", "machine_type")):
            wanted = request.arg(key)
            if wanted is not None:
                machines = [m for m in machines if getattr(m, attr) == wanted]
        if request.arg("agentType") not in (None, "LinuxHeadless"):
            machines = []
        pairs = [(m, self._render(m)) for m in machines]
        order_by = request.arg("orderBy") or "dtCreated"
        pairs.sort(
            key=lambda pair: pair[0].seq if order_by == "dtCreated" else pair[1][order_by],
            reverse=(request.arg("order") or "desc") == "desc",
        )
        return self._page([r for _, r in pairs], request.arg("after"), limit)

    def _page(self, rendered: list[dict[str, Any]], after: str | None, limit: int) -> Response:
        """One page of a list, as Paperspace pages them: `after` is the last item's id, opaque."""
        start = 0
        if after is not None:
            ids = [r["id"] for r in rendered]
            cursor = self._decode_cursor(after)
            if cursor not in ids:
                raise self.error(400, "Invalid cursor")
            start = ids.index(cursor) + 1
        page = rendered[start : start + limit]
        body: dict[str, Any] = {"hasMore": start + limit < len(rendered), "items": page}
        if body["hasMore"]:
            body["nextPage"] = base64.urlsafe_b64encode(page[-1]["id"].encode()).decode()
        return Response(200, body)

    @route("GET", "/os-templates")
    def list_os_templates(self, request: Request) -> Response:
        query = self._query(request, OS_TEMPLATES_QUERY)
        limit = query.get("limit", 20)
        rendered = [
            {
                "id": template_id,
                "name": name,
                "agentType": "LinuxHeadless",
                "operatingSystemLabel": TEMPLATES[template_id],
                "defaultSizeGb": size,
                "availableMachineTypes": [
                    {"machineTypeLabel": label, "isAvailable": ok} for label, ok in listed.items()
                ],
                "dtCreated": "2023-01-10T00:00:00.000Z",
            }
            for template_id, (name, size, listed) in OS_TEMPLATES.items()
        ]
        if "name" in query:
            rendered = [t for t in rendered if t["name"] == query["name"]]
        rendered.sort(key=lambda t: t["name"], reverse=query.get("order", "desc") == "desc")
        return self._page(rendered, query.get("after"), limit)

    @route("GET", "/machine-availability")
    def machine_availability(self, request: Request) -> Response:
        query = self._query(request, AVAILABILITY_QUERY)
        self._check_catalog({"machineType": query["machineType"], "region": query["region"]})
        return Response(
            200, {"available": query["region"] in self.availability.get(query["machineType"], ())}
        )

    def _query(self, request: Request, fields: Mapping[str, Field]) -> dict[str, Any]:
        """The query as the documented types (strict: an unknown parameter is a 400 as well)."""
        query: dict[str, Any] = {key: values[-1] for key, values in request.query.items()}
        if "limit" in fields and str(query.get("limit", "")).isdigit():
            query["limit"] = int(query["limit"])
        issues = validate(query, fields, allow_unknown=not self.strict)
        if issues:
            raise self._invalid(issues)
        return query

    def _decode_cursor(self, cursor: str) -> str | None:
        try:
            return base64.urlsafe_b64decode(cursor.encode()).decode()
        except ValueError:
            return None

    @route("POST", "/machines")
    def create_machine(self, request: Request) -> Response:
        body = self._body(request, CREATE_FIELDS)
        self._check_catalog(body)
        suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(7))
        seq = next(self._seq)
        machine = _Machine(
            id=f"ps{suffix}",
            seq=seq,
            name=body["name"],
            machine_type=body["machineType"],
            template_id=body["templateId"],
            region=body["region"],
            disk_gb=int(body["diskSize"]),
            public_ip_type=body.get("publicIpType", "dynamic"),
            private_ip=f"10.64.{seq // 250}.{seq % 250 + 2}",
            settings={key: body.get(key, default) for key, default in SETTINGS.items()},
        )
        spec = MachineSpec(
            provider="paperspace",
            name=machine.name,
            size=machine.machine_type,
            region=machine.region,
            image=machine.template_id,
            disk_gb=machine.disk_gb,
        )
        start = body.get("startOnCreate", True)

        def provision() -> None:
            self.backend.create(machine.id, spec)
            if start:
                self._boot(machine)

        with self._state_lock:
            self._machines[machine.id] = machine
            self._ops.submit(machine.id, "create", provision)
        return Response(200, {"event": self._event(machine, "create"), "data": self._render(machine)})

    @route("GET", "/machines/{machine_id}")
    def get_machine(self, request: Request, machine_id: str) -> Response:
        return Response(200, self._render(self._machine(machine_id)))

    @route("PUT", "/machines/{machine_id}")
    def update_machine(self, request: Request, machine_id: str) -> Response:
        machine = self._machine(machine_id)
        body = self._body(request, UPDATE_FIELDS)
        self._check_catalog(body)
        if (
            body.get("machineType", machine.machine_type) != machine.machine_type
            and self._state(machine) != "off"
        ):
            raise self.error(400, "Machine must be off to change its machine type")
        if body.get("diskSize", machine.disk_gb) < machine.disk_gb:
            raise self.error(400, "Disk size cannot be decreased")
        machine.name = body.get("name", machine.name)
        machine.machine_type = body.get("machineType", machine.machine_type)
        machine.disk_gb = int(body.get("diskSize", machine.disk_gb))
        machine.public_ip_type = body.get("publicIpType", machine.public_ip_type)
        machine.settings.update({key: body[key] for key in SETTINGS if key in body})
        machine.modified = _now()
        return Response(200, {"data": self._render(machine)})

    @route("DELETE", "/machines/{machine_id}")
    def delete_machine(self, request: Request, machine_id: str) -> Response:
        with self._state_lock:
            machine = self._machine(machine_id)
            rendered = self._render(machine)
            del self._machines[machine_id]
            self._ops.submit(machine_id, "destroy", lambda: self.backend.destroy(machine_id))
            self._ops.retire(machine_id)
        return Response(200, {"event": self._event(machine, "deactivate"), "data": rendered})

    @route("PATCH", "/machines/{machine_id}/start")
    def start_machine(self, request: Request, machine_id: str) -> Response:
        return self._power(machine_id, "start", allowed=("off",), action=self._boot)

    @route("PATCH", "/machines/{machine_id}/stop")
    def stop_machine(self, request: Request, machine_id: str) -> Response:
        return self._power(
            machine_id,
            "stop",
            allowed=("ready", "serviceready", "starting"),
            action=lambda m: self.backend.stop(m.id),
        )

    @route("PATCH", "/machines/{machine_id}/restart")
    def restart_machine(self, request: Request, machine_id: str) -> Response:
        def restart(machine: _Machine) -> None:
            self.backend.stop(machine.id)
            self._boot(machine)

        return self._power(machine_id, "restart", allowed=("ready", "serviceready"), action=restart)

    def _power(
        self, machine_id: str, name: str, allowed: tuple[str, ...], action: Callable[[_Machine], None]
    ) -> Response:
        with self._state_lock:
            machine = self._machine(machine_id)
            state = self._state(machine)
            if state not in allowed:
                raise self.error(400, f"Cannot {name} machine {machine_id} while it is {state}")
            self._ops.submit(machine_id, name, lambda: action(machine))
            machine.modified = _now()
        return Response(200, {"event": self._event(machine, name), "data": self._render(machine)})
