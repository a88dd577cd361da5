"""Strict fake of the Lambda Cloud API (``/api/v1``): instances, instance types, ssh keys, filesystems, firewall.

Grounded in Lambda's published OpenAPI document (https://cloud.lambda.ai/api/v1/openapi.json):

* request bodies as its current version gives them, transcribed in
  github.com/wegotdocs/open-mcp servers/cloud_lambda_ai/src/tools/*.ts (commit 1bfb466):
  ``launchinstance.ts`` (POST /instance-operations/launch: region_name,
  instance_type_name, ssh_key_names, file_system_names, name (<= 64), image,
  user_data), ``terminateinstance.ts`` (instance_ids), ``addsshkey.ts`` (name 1..64,
  public_key), ``createfilesystem.ts`` (POST /filesystems: name
  ``^[a-zA-Z]+[0-9a-zA-Z-]*$`` 1..60, region), ``firewallrulesset.ts`` (PUT
  /firewall-rules: data[] of protocol tcp|udp|icmp|all, port_range [min, max] 1..65535
  (not for icmp), source_network, description <= 128);
* response objects and error codes from the document's version 1.5.3, as generated in
  github.com/sidnb13/toolbox src/mltoolbox/clients/lambda_client (commit 405851b):
  docs/Instance.md (status active|booting|unhealthy|terminating|terminated,
  ip, name, ssh_key_names, file_system_names, region, instance_type...),
  docs/FileSystem.md (id, name, created, created_by, mount_point, region, is_in_use,
  bytes_used), docs/InstanceType.md (name, description, gpu_description,
  price_cents_per_hour, specs), docs/InstanceTypes200ResponseDataValue.md
  (instance_type, regions_with_capacity_available), docs/ErrorResponseBody.md and
  docs/ErrorCode.md (``{"error": {"code", "message", "suggestion"}, "field_errors"?}``,
  codes global/invalid-api-key, global/invalid-parameters, global/object-does-not-exist,
  instance-operations/launch/insufficient-capacity,
  instance-operations/launch/file-system-in-wrong-region...).
* Every answer is ``{"data": ...}``. Auth: ``Authorization: Bearer KEY``, or HTTP Basic
  with the key as user name (the docs' ``curl -u API-KEY:``); anything else is 401.
* Rate limits (Lambda's docs, docs/public-cloud/cloud-api.md in
  github.com/cbrownstein-lambda/lambda-docs-mkdocs, and the issue's "one launch per 12 s"):
  a launch within ``launch_interval`` seconds of the last one is 429.

Choices where the reference is silent (kept strict on purpose): unknown body fields are
400 global/invalid-parameters; a terminated instance is gone from the list and its GET
is 404 once its machine is destroyed; a filesystem in use cannot be deleted (400); the
filesystem is mounted at ``/lambda/nfs/NAME`` (its ``mount_point``). Capacity is
``capacity`` (type -> regions), which a test changes to take it away. The instance types
and prices below are illustrative, not a price list.

The filesystem is a backend volume (``MachineBackend.create_volume``): the testbed
backend bind-mounts a host directory at its mount point, so what is written there
outlives a terminate, as on Lambda.
"""

from __future__ import annotations

import base64
import datetime
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._http import ApiError, FakeServer, Request, Response, route
from ._ops import MachineOps
from .backend import MachineBackend, MachineSpec, MemoryBackend
from .schema import Field, validate

REGIONS = {
    "us-east-1": "Virginia, USA",
    "us-west-1": "California, USA",
    "us-south-1": "Texas, USA",
    "europe-central-1": "Germany",
}


@dataclass(frozen=True)
class InstanceType:
    description: str
    gpu_description: str
    cents: int
    vcpus: int
    memory_gib: int
    storage_gib: int
    gpus: int


INSTANCE_TYPES: Mapping[str, InstanceType] = {
    "gpu_1x_a10": InstanceType("1x A10 (24 GB PCIe)", "A10 (24 GB PCIe)", 75, 30, 200, 1400, 1),
    "gpu_1x_a6000": InstanceType("1x RTX A6000 (48 GB)", "RTX A6000 (48 GB)", 80, 14, 46, 512, 1),
    "gpu_1x_a100_sxm4": InstanceType("1x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 129, 30, 200, 512, 1),
    "gpu_8x_a100_80gb_sxm4": InstanceType(
        "8x A100 (80 GB SXM4)", "A100 (80 GB SXM4)", 1432, 240, 1800, 20480, 8
    ),
    "gpu_1x_h100_pcie": InstanceType("1x H100 (80 GB PCIe)", "H100 (80 GB PCIe)", 249, 26, 200, 1024, 1),
}
NAME_RE = re.compile(r"^[a-zA-Z]+[0-9a-zA-Z-]*$")
ERROR_STATUS = {
    "global/unknown": 500,
    "global/invalid-api-key": 401,
    "global/invalid-parameters": 400,
    "global/object-does-not-exist": 404,
    "global/quota-exceeded": 400,
    "instance-operations/launch/insufficient-capacity": 400,
    "instance-operations/launch/file-system-in-wrong-region": 400,
    "filesystems/in-use": 400,
    "ssh-keys/key-in-use": 400,
}


def _name_len(limit: int, minimum: int = 0) -> Any:
    return lambda v: None if minimum <= len(v) <= limit else f"must be {minimum}..{limit} characters"


def _ports(value: list) -> str | None:
    ok = (
        len(value) == 2
        and all(isinstance(p, int) and 1 <= p <= 65535 for p in value)
        and value[0] <= value[1]
    )
    return None if ok else "must be [min, max] within 1..65535"


LAUNCH_FIELDS = {
    "region_name": Field((str,), required=True, enum=tuple(REGIONS)),
    "instance_type_name": Field((str,), required=True),
    "ssh_key_names": Field((list,), required=True, items=(str,)),
    "file_system_names": Field((list,), items=(str,)),
    "name": Field((str,), check=_name_len(64)),
    "image": Field((dict,)),
    "user_data": Field((str,)),
}
TERMINATE_FIELDS = {"instance_ids": Field((list,), required=True, items=(str,))}
SSH_KEY_FIELDS = {
    "name": Field((str,), required=True, check=_name_len(64, 1)),
    "public_key": Field((str,), check=_name_len(4096, 1)),
}
FILESYSTEM_FIELDS = {
    "name": Field(
        (str,), required=True, check=lambda v: None if NAME_RE.match(v) and len(v) <= 60 else "invalid name"
    ),
    "region": Field((str,), required=True, enum=tuple(REGIONS)),
}
RULE_FIELDS = {
    "protocol": Field((str,), required=True, enum=("tcp", "udp", "icmp", "all")),
    "port_range": Field((list,), items=(int,), check=_ports),
    "source_network": Field((str,), required=True),
    "description": Field((str,), required=True, check=_name_len(128)),
}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class _Instance:
    id: str
    name: str | None
    type_name: str
    region: str
    ssh_key_names: list[str]
    file_system_names: list[str]
    ip: str | None = None
    terminating: bool = False


@dataclass
class _FileSystem:
    id: str
    name: str
    region: str
    created: str = field(default_factory=_now)


class FakeLambda(FakeServer):
    """``with FakeLambda(api_key="k") as fake: httpx.get(f"{fake.url}/instances", ...)``."""

    base_path = "/api/v1"

    def __init__(
        self,
        api_key: str,
        backend: MachineBackend | None = None,
        *,
        launch_interval: float = 12.0,
        tls: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(tls=tls, host=host)
        self.api_key = api_key
        # More keys of the same account (Lambda's keys are not scoped: each may do everything).
        self.extra_keys: set[str] = set()
        self.backend: MachineBackend = backend if backend is not None else MemoryBackend()
        self.launch_interval = launch_interval
        # Instance type -> regions with capacity now; tests take capacity away or give it back.
        self.capacity: dict[str, set[str]] = {name: set(REGIONS) for name in INSTANCE_TYPES}
        self.firewall: list[dict[str, Any]] = [
            {"protocol": "tcp", "port_range": [22, 22], "source_network": "0.0.0.0/0", "description": "SSH"}
        ]
        self._instances: dict[str, _Instance] = {}
        self._filesystems: dict[str, _FileSystem] = {}
        self._keys: dict[str, dict[str, str]] = {}
        self._last_launch: float | None = None
        self._lock2 = threading.Lock()
        self._ops = MachineOps(self.errors)

    # -- FakeServer hooks -------------------------------------------------------

    def authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        for key in (self.api_key, *self.extra_keys):
            basic = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
            if header in (f"Bearer {key}", basic):
                return
        raise self.fail("global/invalid-api-key", "API key was invalid, expired, or deleted.")

    def error(self, status: int, message: str | None = None) -> ApiError:
        code = {
            401: "global/invalid-api-key",
            404: "global/object-does-not-exist",
            400: "global/invalid-parameters",
        }
        return ApiError(
            status,
            {
                "error": {
                    "code": code.get(status, "global/unknown"),
                    "message": message or "Error",
                    "suggestion": None,
                }
            },
        )

    def fail(
        self, code: str, message: str, suggestion: str | None = None, status: int | None = None
    ) -> ApiError:
        body = {"error": {"code": code, "message": message, "suggestion": suggestion}}
        return ApiError(status or ERROR_STATUS[code], body)

    def on_close(self) -> None:
        self._ops.close()

    # -- helpers --------------------------------------------------------------------

    def _body(self, request: Request, fields: Mapping[str, Field]) -> dict[str, Any]:
        try:
            body = request.json()
        except ValueError:
            raise self.fail("global/invalid-parameters", "Request body is not valid JSON.") from None
        issues = validate(body, fields)
        if issues:
            raise self.fail("global/invalid-parameters", "; ".join(i.describe() for i in issues))
        return body

    def _status(self, instance: _Instance) -> str:
        if instance.terminating:
            return "terminating"
        op = self._ops.pending(instance.id)
        if op is not None:
            return "booting"
        return {"running": "active", "booting": "booting", "off": "unhealthy", "stopping": "unhealthy"}[
            self.backend.state(instance.id)
        ]

    def _region(self, name: str) -> dict[str, str]:
        return {"name": name, "description": REGIONS[name]}

    def _type(self, name: str) -> dict[str, Any]:
        kind = INSTANCE_TYPES[name]
        return {
            "name": name,
            "description": kind.description,
            "gpu_description": kind.gpu_description,
            "price_cents_per_hour": kind.cents,
            "specs": {
                "vcpus": kind.vcpus,
                "memory_gib": kind.memory_gib,
                "storage_gib": kind.storage_gib,
                "gpus": kind.gpus,
            },
        }

    def _render(self, instance: _Instance) -> dict[str, Any]:
        status = self._status(instance)
        return {
            "id": instance.id,
            "name": instance.name,
            "ip": instance.ip if status != "booting" else None,
            "private_ip": None,
            "status": status,
            "ssh_key_names": instance.ssh_key_names,
            "file_system_names": instance.file_system_names,
            "region": self._region(instance.region),
            "instance_type": self._type(instance.type_name),
            "hostname": None,
            "jupyter_token": secrets.token_hex(8),
            "jupyter_url": None,
            "is_reserved": False,
        }

    def filesystem_ids(self) -> list[str]:
        """Ids of the filesystems that exist, for tests that look inside their volumes."""
        with self._lock2:
            return list(self._filesystems)

    def mount_point(self, fs: _FileSystem) -> str:
        return f"/lambda/nfs/{fs.name}"

    def _render_fs(self, fs: _FileSystem) -> dict[str, Any]:
        in_use = any(fs.name in i.file_system_names for i in self._instances.values())
        return {
            "id": fs.id,
            "name": fs.name,
            "created": fs.created,
            "created_by": {"id": "user-0", "email": "learner@example.com", "status": "active"},
            "mount_point": self.mount_point(fs),
            "region": self._region(fs.region),
            "is_in_use": in_use,
            "bytes_used": self.backend.volume_bytes(fs.id),
        }

    def _instance(self, instance_id: str) -> _Instance:
        instance = self._instances.get(instance_id)
        if instance is None:
            raise self.fail("global/object-does-not-exist", "Specified instance does not exist.")
        return instance

    # -- instances --------------------------------------------------------------------

    @route("GET", "/instances")
    def list_instances(self, request: Request) -> Response:
        with self._lock2:
            return Response(200, {"data": [self._render(i) for i in self._instances.values()]})

    @route("GET", "/instances/{instance_id}")
    def get_instance(self, request: Request, instance_id: str) -> Response:
        with self._lock2:
            return Response(200, {"data": self._render(self._instance(instance_id))})

    @route("GET", "/instance-types")
    def instance_types(self, request: Request) -> Response:
        data = {
            name: {
                "instance_type": self._type(name),
                "regions_with_capacity_available": [
                    self._region(r) for r in sorted(self.capacity.get(name, ()))
                ],
            }
            for name in INSTANCE_TYPES
        }
        return Response(200, {"data": data})

    @route("POST", "/instance-operations/launch")
    def launch(self, request: Request) -> Response:
        body = self._body(request, LAUNCH_FIELDS)
        with self._lock2:
            now = time.monotonic()
            if self._last_launch is not None and now - self._last_launch < self.launch_interval:
                wait = self.launch_interval - (now - self._last_launch)
                raise ApiError(
                    429,
                    {
                        "error": {
                            "code": "global/unknown",
                            "message": "Too many requests.",
                            "suggestion": None,
                        }
                    },
                    {"Retry-After": str(max(1, round(wait)))},
                )
            kind, region = body["instance_type_name"], body["region_name"]
            if kind not in INSTANCE_TYPES:
                raise self.fail("global/invalid-parameters", f"Invalid instance type {kind}.")
            keys = body["ssh_key_names"]
            if len(keys) != 1 or keys[0] not in self._keys:
                raise self.fail(
                    "global/invalid-parameters", "Exactly one existing SSH key must be specified."
                )
            names = body.get("file_system_names") or []
            if len(names) > 1:
                raise self.fail("global/invalid-parameters", "Only one filesystem may be attached.")
            fss = [fs for fs in self._filesystems.values() if fs.name in names]
            if len(fss) != len(names):
                raise self.fail("global/object-does-not-exist", "Specified filesystem does not exist.")
            if any(fs.region != region for fs in fss):
                raise self.fail(
                    "instance-operations/launch/file-system-in-wrong-region",
                    "File system is in a different region.",
                )
            if region not in self.capacity.get(kind, ()):
                raise self.fail(
                    "instance-operations/launch/insufficient-capacity",
                    "Not enough capacity to fulfill launch request.",
                    "Choose an instance type with more availability, or try again later.",
                )
            self._last_launch = now
            instance = _Instance(
                id=secrets.token_hex(16),
                name=body.get("name"),
                type_name=kind,
                region=region,
                ssh_key_names=list(keys),
                file_system_names=list(names),
            )
            spec = MachineSpec(
                provider="lambda",
                name=instance.name or instance.id,
                size=kind,
                region=region,
                ssh_public_keys=[self._keys[keys[0]]["public_key"]],
                volumes={fs.id: self.mount_point(fs) for fs in fss},
            )

            def provision() -> None:
                self.backend.create(instance.id, spec)
                instance.ip = self.backend.start(instance.id)

            self._instances[instance.id] = instance
            self._ops.submit(instance.id, "launch", provision)
        return Response(200, {"data": {"instance_ids": [instance.id]}})

    @route("POST", "/instance-operations/terminate")
    def terminate(self, request: Request) -> Response:
        body = self._body(request, TERMINATE_FIELDS)
        with self._lock2:
            instances = [self._instance(i) for i in body["instance_ids"]]
            out = []
            for instance in instances:
                instance.terminating = True
                out.append({**self._render(instance), "status": "terminated"})

                def destroy(instance: _Instance = instance) -> None:
                    self.backend.destroy(instance.id)
                    with self._lock2:
                        self._instances.pop(instance.id, None)

                self._ops.submit(instance.id, "terminate", destroy)
                self._ops.retire(instance.id)
        return Response(200, {"data": {"terminated_instances": out}})

    # -- ssh keys -------------------------------------------------------------------------

    @route("GET", "/ssh-keys")
    def list_keys(self, request: Request) -> Response:
        return Response(200, {"data": list(self._keys.values())})

    @route("POST", "/ssh-keys")
    def add_key(self, request: Request) -> Response:
        body = self._body(request, SSH_KEY_FIELDS)
        if body["name"] in self._keys:
            raise self.fail("global/invalid-parameters", "An SSH key with this name already exists.")
        if "public_key" not in body:
            raise self.fail(
                "global/invalid-parameters", "Generating a key pair is not faked; send public_key."
            )
        key = {"id": secrets.token_hex(16), "name": body["name"], "public_key": body["public_key"].strip()}
        self._keys[body["name"]] = key
        return Response(200, {"data": key})

    # -- filesystems ------------------------------------------------------------------------

    @route("GET", "/file-systems")
    def list_filesystems(self, request: Request) -> Response:
        with self._lock2:
            return Response(200, {"data": [self._render_fs(fs) for fs in self._filesystems.values()]})

    @route("POST", "/filesystems")
    def create_filesystem(self, request: Request) -> Response:
        body = self._body(request, FILESYSTEM_FIELDS)
        with self._lock2:
            if any(fs.name == body["name"] for fs in self._filesystems.values()):
                raise self.fail("global/invalid-parameters", "A filesystem with this name already exists.")
            fs = _FileSystem(id=secrets.token_hex(16), name=body["name"], region=body["region"])
            self.backend.create_volume(fs.id)
            self._filesystems[fs.id] = fs
            return Response(200, {"data": self._render_fs(fs)})

    @route("DELETE", "/filesystems/{fs_id}")
    def delete_filesystem(self, request: Request, fs_id: str) -> Response:
        with self._lock2:
            fs = self._filesystems.get(fs_id)
            if fs is None:
                raise self.fail("global/object-does-not-exist", "Specified filesystem does not exist.")
            if self._render_fs(fs)["is_in_use"]:
                raise self.fail("filesystems/in-use", "Filesystem is in use by an instance.")
            del self._filesystems[fs_id]
            self.backend.delete_volume(fs_id)
        return Response(200, {"data": {"deleted_ids": [fs_id]}})

    # -- firewall ----------------------------------------------------------------------------

    @route("GET", "/firewall-rules")
    def list_rules(self, request: Request) -> Response:
        return Response(200, {"data": list(self.firewall)})

    @route("PUT", "/firewall-rules")
    def set_rules(self, request: Request) -> Response:
        body = self._body(request, {"data": Field((list,), required=True, items=(dict,))})
        for rule in body["data"]:
            issues = validate(rule, RULE_FIELDS)
            if not issues and rule["protocol"] != "icmp" and "port_range" not in rule:
                raise self.fail("global/invalid-parameters", "port_range is required for tcp, udp and all.")
            if issues:
                raise self.fail("global/invalid-parameters", "; ".join(i.describe() for i in issues))
        self.firewall = list(body["data"])
        return Response(200, {"data": list(self.firewall)})
