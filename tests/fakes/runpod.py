"""Strict fake of RunPod's REST API (``https://rest.runpod.io/v1``): pods and network volumes.

Grounded in RunPod's published OpenAPI document, ``api-reference/openapi.json`` in
github.com/runpod/docs (commit 01242f8510a3aba07200e152c2e33e07bd0a8e3f, "Runpod API"
version 0.1.0, server ``https://rest.runpod.io/v1``):

* auth: ``securitySchemes.ApiKey`` is HTTP bearer; anything else is 401 (its
  ``UnauthorizedError``: ``{"message"}``);
* ``POST /pods`` takes a ``PodCreateInput`` (every property it lists is accepted, with
  its type and enum; anything else is 400), answers 201 with a ``Pod``;
* ``GET /pods`` (query: name, networkVolumeId, desiredStatus, includeMachine,
  includeNetworkVolume... as listed), ``GET``/``DELETE /pods/{podId}`` (204),
  ``POST /pods/{podId}/start`` ("Start or resume a Pod") and ``/stop``;
* ``Pod``: id, name, desiredStatus RUNNING|EXITED|TERMINATED, image, gpu {id, count,
  displayName, securePrice}, costPerHr, publicIp and portMappings (``{"22": 10341}``:
  empty while the pod initializes), machineId, machine (``includeMachine``),
  networkVolume (``includeNetworkVolume``), dockerStartCmd, env, ports,
  volumeMountPath, containerDiskInGb, lastStartedAt;
* ``POST /networkvolumes`` (``NetworkVolumeCreateInput``: name, size 0..4000,
  dataCenterId, all required), ``GET /networkvolumes``, ``GET``/``DELETE
  /networkvolumes/{networkVolumeId}``.

The GPU catalog, for the panel's new-workstation form, is RunPod's REST API **v2**:
``GET /v2/catalog/gpus`` (operation ``listGpuTypes``) of ``api-reference-v2/openapi.json`` in the
same repository (commit 098c7fb0c6c374b1d053f896757a2282bf18e796, "Runpod REST API" 2.0.0, server
``https://api.runpod.io``, ``bearerAuth``), served here beside v1 on the same listener:

* query ``include`` (AVAILABILITY, at most one), ``product`` (POD|CLUSTER|SERVERLESS, required
  with include=AVAILABILITY), ``count`` (>= 1), ``cloud`` (SECURE|COMMUNITY), ``countryCodes``,
  ``cudaVersions``, ``minCudaVersion``; an unknown parameter is a 400 (a strict choice);
* ``{"gpus": [GpuType]}``: id, name, pool, manufacturer, memory, secure, community, price
  {secure, community} per GPU-hour, maxCount {secure, community}; with include=AVAILABILITY also
  ``availability`` and ``dataCenters`` [{id, name, availability}], the latter omitted when the GPU
  is unavailable everywhere (``capacity`` below decides);
* errors are ``{"title", "status", "detail"}`` (its ``ErrorResponse``, served as JSON here);
  401 without the account's key, 403 with a pod's own key.

What the document leaves out, taken from RunPod's pod docs and kept strict:

* a stop wipes the container disk; the volume (``volumeMountPath``, default
  ``/workspace``) survives and is billed while the pod is stopped;
* a pod lives on one host machine; a stopped pod gives its GPUs back to that host, and
  a start when they have been taken resumes it with 0 GPUs (``gpu.count`` 0). Tests take
  them with ``take_gpus(pod_id)``; ``capacity`` (GPU type -> data centers) governs create;
* errors other than 401 are ``{"error": MESSAGE, "status": CODE}``; a create with no
  capacity is 400 "There are no longer any instances available with the requested
  specifications";
* every pod gets ``RUNPOD_POD_ID`` and ``RUNPOD_API_KEY`` in its environment, the latter
  "Pod-scoped" (pods/templates/environment-variables.mdx): here it may read, start and stop
  that pod and nothing else (403 otherwise);
* TCP ports are mapped to other public ports (``port_offset`` added; 0 keeps them), and
  only on a host with a public IP: a secure-cloud pod, or a community one created with
  ``supportPublicIp`` (``machine.supportPublicIp`` says which; without one, ``publicIp``
  stays empty and ssh goes through ssh.runpod.io, a terminal only: pods/configuration/use-ssh.mdx);
* HTTP ports are only reached through the proxy (https://{podId}-{port}.proxy.runpod.net),
  which terminates TLS with a publicly trusted certificate and speaks plain HTTP to the
  pod's port (pods/configuration/expose-ports.mdx). ``proxy(pod_id, port)`` stands in for
  it: a TLS listener on 127.0.0.1 (the fakes' CA) that forwards to the pod's port only
  when the pod exposes it as ``PORT/http`` and runs.

The backend builds a machine per pod whose spec carries ``start_cmd`` (the pod's
``dockerStartCmd``, run as PID 1, no systemd) and the network volume at its mount path;
``TestbedBackend`` makes those containers real (its ``container`` mode).
"""

from __future__ import annotations

import datetime
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._http import ApiError, FakeServer, Request, Response, route
from ._ops import MachineOps
from .backend import MachineBackend, MachineSpec, MemoryBackend
from .schema import Field, validate

DATA_CENTERS = ("EU-RO-1", "CA-MTL-1", "EU-SE-1", "US-IL-1", "US-TX-3", "US-KS-2", "US-GA-2")


@dataclass(frozen=True)
class GpuType:
    display: str
    secure_price: float  # USD per GPU-hour; illustrative, not a price list
    memory_gb: int = 24


GPU_TYPES: Mapping[str, GpuType] = {
    "NVIDIA GeForce RTX 4090": GpuType("RTX 4090", 0.69, 24),
    "NVIDIA RTX A5000": GpuType("RTX A5000", 0.27, 24),
    "NVIDIA RTX A6000": GpuType("RTX A6000", 0.49, 48),
    "NVIDIA A40": GpuType("A40", 0.40, 48),
    "NVIDIA A100 80GB PCIe": GpuType("A100 PCIe", 1.64, 80),
}
# GET /v2/catalog/gpus: its query parameters (listGpuTypes) and their enums.
CATALOG_QUERY = {
    "include", "product", "count", "cloud", "countryCodes", "cudaVersions", "minCudaVersion",
}  # fmt: skip
CATALOG_ENUMS = {
    "include": ("AVAILABILITY",),
    "product": ("POD", "CLUSTER", "SERVERLESS"),
    "cloud": ("SECURE", "COMMUNITY"),
}
HOST_GPUS = 8  # GPUs on each host machine
CONTAINER_STATES = ("RUNNING", "EXITED", "TERMINATED")


def _strings(v: list) -> str | None:
    return None if all(isinstance(x, str) for x in v) else "must be strings"


def _env(v: dict) -> str | None:
    return None if all(isinstance(x, str) for x in v.values()) else "values must be strings"


# PodCreateInput, property by property (types, enums and minimums as the document gives them).
POD_FIELDS = {
    "allowedCudaVersions": Field((list,), items=(str,)),
    "cloudType": Field((str,), enum=("SECURE", "COMMUNITY")),
    "computeType": Field((str,), enum=("GPU", "CPU")),
    "containerDiskInGb": Field((int,), check=lambda v: None if v >= 1 else "must be >= 1"),
    "containerRegistryAuthId": Field((str,)),
    "countryCodes": Field((list,), items=(str,)),
    "cpuFlavorIds": Field((list,), items=(str,)),
    "cpuFlavorPriority": Field((str,), enum=("availability", "custom")),
    "dataCenterIds": Field((list,), items=(str,)),
    "dataCenterPriority": Field((str,), enum=("availability", "custom")),
    "dockerEntrypoint": Field((list,), items=(str,)),
    "dockerStartCmd": Field((list,), items=(str,)),
    "env": Field((dict,), check=_env),
    "globalNetworking": Field((bool,)),
    "gpuCount": Field((int,), check=lambda v: None if v >= 1 else "must be >= 1"),
    "gpuTypeIds": Field((list,), items=(str,)),
    "gpuTypePriority": Field((str,), enum=("availability", "custom")),
    "imageName": Field((str,)),
    "interruptible": Field((bool,)),
    "locked": Field((bool,)),
    "minDiskBandwidthMBps": Field((float,)),
    "minDownloadMbps": Field((float,)),
    "minRAMPerGPU": Field((int,)),
    "minUploadMbps": Field((float,)),
    "minVCPUPerGPU": Field((int,)),
    "name": Field((str,), check=lambda v: None if len(v) <= 191 else "at most 191 characters"),
    "networkVolumeId": Field((str,)),
    "ports": Field((list,), items=(str,)),
    "supportPublicIp": Field((bool,)),
    "templateId": Field((str,)),
    "vcpuCount": Field((int,)),
    "volumeInGb": Field((int,)),
    "volumeMountPath": Field((str,)),
}
VOLUME_FIELDS = {
    "name": Field((str,), required=True),
    "size": Field((int,), required=True, check=lambda v: None if 0 <= v <= 4000 else "must be 0..4000"),
    "dataCenterId": Field((str,), required=True),
}
# The query parameters the document lists for GET /pods and GET /pods/{podId}.
LIST_QUERY = {
    "computeType", "cpuFlavorId", "dataCenterId", "desiredStatus", "endpointId", "gpuTypeId", "id",
    "imageName", "includeMachine", "includeNetworkVolume", "includeSavingsPlans", "includeTemplate",
    "includeWorkers", "name", "networkVolumeId", "templateId",
}  # fmt: skip
GET_QUERY = {
    "includeMachine",
    "includeNetworkVolume",
    "includeSavingsPlans",
    "includeTemplate",
    "includeWorkers",
}


def _now() -> str:
    return (
        datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@dataclass
class _Host:
    id: str
    gpu_type: str
    data_center: str
    free: int = HOST_GPUS
    public_ip: bool = True


@dataclass
class _Pod:
    id: str
    body: dict[str, Any]
    host: _Host
    gpu_type: str
    want_gpus: int
    gpus: int
    volume_id: str | None
    status: str = "RUNNING"  # desiredStatus
    key: str = field(default_factory=lambda: "rpa_pod_" + secrets.token_hex(16))  # RUNPOD_API_KEY
    ip: str | None = None
    started_at: str = field(default_factory=_now)


@dataclass
class _Volume:
    id: str
    name: str
    size: int
    data_center: str


class FakeRunPod(FakeServer):
    """``with FakeRunPod(api_key="k") as fake: httpx.get(f"{fake.url}/pods", headers=...)``."""

    base_path = "/v1"

    def __init__(
        self,
        api_key: str,
        backend: MachineBackend | None = None,
        *,
        port_offset: int = 10000,
        tls: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(tls=tls, host=host)
        self.api_key = api_key
        self.backend: MachineBackend = backend if backend is not None else MemoryBackend()
        self.port_offset = port_offset
        # GPU type -> data centers with a host that has free GPUs now; tests take it away.
        self.capacity: dict[str, set[str]] = {name: set(DATA_CENTERS) for name in GPU_TYPES}
        self.hosts: dict[str, _Host] = {}
        self._pods: dict[str, _Pod] = {}
        self._volumes: dict[str, _Volume] = {}
        self._lock2 = threading.Lock()
        self._ops = MachineOps(self.errors)
        self._proxies: list[Any] = []

    # -- FakeServer hooks -------------------------------------------------------

    def authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        if header == f"Bearer {self.api_key}":
            return
        with self._lock2:
            owner = next((p for p in self._pods.values() if header == f"Bearer {p.key}"), None)
        if owner is None:
            raise ApiError(401, {"message": "Unauthorized"})
        allowed = {
            ("GET", f"/pods/{owner.id}"),
            ("POST", f"/pods/{owner.id}/start"),
            ("POST", f"/pods/{owner.id}/stop"),
        }
        if (request.method, request.path) not in allowed:
            raise ApiError(403, {"error": f"this key is scoped to pod {owner.id}", "status": 403})

    def error(self, status: int, message: str | None = None) -> ApiError:
        return ApiError(status, {"error": message or "error", "status": status})

    def problem(self, status: int, title: str, detail: str) -> ApiError:
        """v2's error: ``application/problem+json`` ``{"title", "status", "detail"}``."""
        return ApiError(status, {"title": title, "status": status, "detail": detail})

    def _dispatch(self, record: Any) -> Response:
        """v1 under ``/v1`` (FakeServer's routing); the v2 catalog beside it."""
        path = record.path.rstrip("/")
        if not path.startswith("/v2/"):
            return super()._dispatch(record)
        request = Request(record.method, path, record.query, record.headers, record.body)
        self._inject_fault(request)
        if path != "/v2/catalog/gpus":
            raise self.problem(404, "Not Found", f"no route {path}")
        header = request.headers.get("authorization", "")
        if header != f"Bearer {self.api_key}":
            with self._lock2:
                pod_key = any(header == f"Bearer {p.key}" for p in self._pods.values())
            if pod_key:
                raise self.problem(403, "Forbidden", "this key is scoped to one pod")
            raise self.problem(
                401, "Unauthorized", "missing bearer token" if not header else "invalid api key"
            )
        if request.method != "GET":
            raise self.problem(405, "Method Not Allowed", f"{request.method} {path}")
        return self.catalog_gpus(request)

    def catalog_gpus(self, request: Request) -> Response:
        errors = [f"unknown query parameter {name!r}" for name in sorted(set(request.query) - CATALOG_QUERY)]
        # form style, explode false: one value, comma-separated
        given = {
            name: (request.arg(name) or "").split(",") for name in CATALOG_ENUMS if name in request.query
        }
        for name, values in given.items():
            errors += [
                f"{name}: {v!r} is not one of {list(CATALOG_ENUMS[name])}"
                for v in values
                if v not in CATALOG_ENUMS[name]
            ]
        if len(given.get("include", [])) > 1:
            errors.append("include: at most 1 item")
        count = request.arg("count")
        if count is not None and (not count.isdigit() or int(count) < 1):
            errors.append("count: must be an integer >= 1")
        with_availability = "AVAILABILITY" in given.get("include", [])
        if with_availability and "product" not in given:
            errors.append("product is required when include=AVAILABILITY")
        if errors:
            return Response(
                400, {"title": "Bad Request", "status": 400, "detail": "invalid query", "errors": errors}
            )
        gpus = []
        with self._lock2:
            capacity = {name: sorted(where) for name, where in self.capacity.items()}
        for gpu_id, kind in GPU_TYPES.items():
            entry: dict[str, Any] = {
                "id": gpu_id,
                "name": kind.display,
                "pool": None,
                "manufacturer": "NVIDIA",
                "memory": kind.memory_gb,
                "secure": True,
                "community": True,
                "price": {"secure": kind.secure_price, "community": round(kind.secure_price * 0.7, 2)},
                "maxCount": {"secure": HOST_GPUS, "community": 4},
            }
            if with_availability:
                where = capacity.get(gpu_id, [])
                entry["availability"] = "HIGH" if where else "NONE"
                if where:
                    entry["dataCenters"] = [{"id": dc, "name": dc, "availability": "HIGH"} for dc in where]
            gpus.append(entry)
        return Response(200, {"gpus": gpus})

    def on_close(self) -> None:
        for proxy in self._proxies:
            proxy.shutdown()
            proxy.server_close()
        self._ops.close()

    def proxy(self, pod_id: str, port: int) -> str:
        """RunPod's HTTPS proxy for one pod's port: TLS here (the fakes' CA), plain TCP to the pod."""
        import contextlib
        import socket
        import socketserver

        from . import _tls

        fake = self

        class Pipe(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with fake._lock2:
                    pod = fake._pods.get(pod_id)
                    open_ = pod is not None and f"{port}/http" in (pod.body.get("ports") or [])
                    ip = pod.ip if pod is not None and pod.status == "RUNNING" else None
                if not open_ or not ip:
                    return  # the real proxy answers 404/502; a closed connection will do
                try:
                    upstream = socket.create_connection((ip, port), timeout=10)
                except OSError:
                    return
                upstream.settimeout(None)

                def pump(src: socket.socket, dst: socket.socket) -> None:
                    try:
                        while data := src.recv(65536):
                            dst.sendall(data)
                    except OSError:
                        pass
                    finally:
                        for sock in (src, dst):
                            with contextlib.suppress(OSError):
                                sock.shutdown(socket.SHUT_RDWR)

                back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
                back.start()
                pump(self.request, upstream)
                back.join()
                upstream.close()

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Pipe)
        server.daemon_threads = True
        server.socket = _tls.server_context().wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._proxies.append(server)
        return f"https://127.0.0.1:{server.server_address[1]}/"

    # -- test knobs -------------------------------------------------------------------

    def take_gpus(self, pod_id: str) -> None:
        """Another user rents the GPUs of this (stopped) pod's host: its next start gets 0 GPUs."""
        with self._lock2:
            self._pods[pod_id].host.free = 0

    def settled(self, pod_id: str) -> bool:
        """Whether the backend has finished what the API accepted for this pod (a stop's disk wipe)."""
        return self._ops.pending(pod_id) is None

    def volume_ids(self) -> list[str]:
        with self._lock2:
            return list(self._volumes)

    # -- helpers --------------------------------------------------------------------

    def _body(self, request: Request, fields: Mapping[str, Field]) -> dict[str, Any]:
        try:
            body = request.json()
        except ValueError:
            raise self.error(400, "invalid JSON body") from None
        issues = validate(body, fields)
        if issues:
            raise self.error(400, "; ".join(i.describe() for i in issues))
        return body

    def _query(self, request: Request, allowed: set[str]) -> None:
        unknown = sorted(set(request.query) - allowed)
        if unknown:
            raise self.error(400, f"unknown query parameter(s): {', '.join(unknown)}")

    def _pod(self, pod_id: str) -> _Pod:
        pod = self._pods.get(pod_id)
        if pod is None:
            raise self.error(404, "pod not found")
        return pod

    def _render(self, pod: _Pod, request: Request) -> dict[str, Any]:
        kind = GPU_TYPES[pod.gpu_type]
        # The pending op first: until the create has run, the backend has no such machine.
        live = (
            pod.status == "RUNNING"
            and not self._ops.pending(pod.id)
            and self.backend.state(pod.id) == "running"
        )
        tcp = [int(p.split("/")[0]) for p in pod.body.get("ports") or [] if p.endswith("/tcp")]
        out: dict[str, Any] = {
            "id": pod.id,
            "name": pod.body.get("name", "my pod"),
            "desiredStatus": pod.status,
            "image": pod.body.get("imageName"),
            "gpu": {
                "id": pod.gpu_type,
                "count": pod.gpus,
                "displayName": kind.display,
                "securePrice": kind.secure_price,
            },
            "costPerHr": round(kind.secure_price * pod.gpus, 3),
            "adjustedCostPerHr": round(kind.secure_price * pod.gpus, 3),
            "publicIp": pod.ip if live and pod.host.public_ip else None,
            "portMappings": {str(p): p + self.port_offset for p in tcp}
            if live and pod.host.public_ip
            else {},
            "ports": pod.body.get("ports") or [],
            "machineId": pod.host.id,
            "dockerStartCmd": pod.body.get("dockerStartCmd") or [],
            "dockerEntrypoint": pod.body.get("dockerEntrypoint") or [],
            "env": pod.body.get("env") or {},
            "volumeMountPath": pod.body.get("volumeMountPath", "/workspace"),
            "containerDiskInGb": pod.body.get("containerDiskInGb", 50),
            "lastStartedAt": pod.started_at,
            "interruptible": False,
            "locked": False,
        }
        if request.arg("includeMachine") == "true":
            out["machine"] = {
                "gpuTypeId": pod.gpu_type,
                "dataCenterId": pod.host.data_center,
                "gpuAvailable": pod.host.free,
                "secureCloud": True,
                "supportPublicIp": pod.host.public_ip,
            }
        if request.arg("includeNetworkVolume") == "true" and pod.volume_id in self._volumes:
            out["networkVolume"] = self._render_volume(self._volumes[pod.volume_id])
        return out

    def _render_volume(self, volume: _Volume) -> dict[str, Any]:
        return {"id": volume.id, "name": volume.name, "size": volume.size, "dataCenterId": volume.data_center}

    # -- pods -------------------------------------------------------------------------------

    @route("GET", "/pods")
    def list_pods(self, request: Request) -> Response:
        self._query(request, LIST_QUERY)
        with self._lock2:
            pods = list(self._pods.values())
            for key, attr in (("name", "name"), ("networkVolumeId", "networkVolumeId")):
                want = request.arg(key)
                if want is not None:
                    pods = [p for p in pods if p.body.get(attr) == want]
            status = request.arg("desiredStatus")
            if status is not None:
                pods = [p for p in pods if p.status == status]
            return Response(200, [self._render(p, request) for p in pods])

    @route("GET", "/pods/{pod_id}")
    def get_pod(self, request: Request, pod_id: str) -> Response:
        self._query(request, GET_QUERY)
        with self._lock2:
            return Response(200, self._render(self._pod(pod_id), request))

    @route("POST", "/pods")
    def create_pod(self, request: Request) -> Response:
        body = self._body(request, POD_FIELDS)
        if body.get("computeType", "GPU") != "GPU":
            raise self.error(400, "CPU pods are not faked")
        if "imageName" not in body and "templateId" not in body:
            raise self.error(400, "imageName or templateId is required")
        types = body.get("gpuTypeIds") or []
        unknown = [t for t in types if t not in GPU_TYPES]
        if unknown or not types:
            raise self.error(400, f"invalid gpuTypeIds: {unknown or 'none given'}")
        count = body.get("gpuCount", 1)
        with self._lock2:
            volume = None
            if "networkVolumeId" in body:
                volume = self._volumes.get(body["networkVolumeId"])
                if volume is None:
                    raise self.error(400, "network volume not found")
            centers = [volume.data_center] if volume else body.get("dataCenterIds") or list(DATA_CENTERS)
            place = next(((t, dc) for t in types for dc in centers if dc in self.capacity.get(t, ())), None)
            if place is None or count > HOST_GPUS:
                raise self.error(
                    400,
                    "There are no longer any instances available with the requested specifications. "
                    "Please refresh and try again.",
                )
            public = body.get("cloudType", "SECURE") == "SECURE" or bool(body.get("supportPublicIp"))
            host = _Host(id=secrets.token_hex(6), gpu_type=place[0], data_center=place[1], public_ip=public)
            host.free -= count
            self.hosts[host.id] = host
            pod = _Pod(
                id=secrets.token_hex(7)[:14],
                body=body,
                host=host,
                gpu_type=place[0],
                want_gpus=count,
                gpus=count,
                volume_id=volume.id if volume else None,
            )
            mount = body.get("volumeMountPath", "/workspace")
            spec = MachineSpec(
                provider="runpod",
                name=body.get("name", pod.id),
                size=place[0],
                region=place[1],
                image=body.get("imageName", ""),
                start_cmd=list(body.get("dockerStartCmd") or []),
                env={**(body.get("env") or {}), "RUNPOD_POD_ID": pod.id, "RUNPOD_API_KEY": pod.key},
                volumes={volume.id: mount} if volume else {},
            )

            def provision() -> None:
                self.backend.create(pod.id, spec)
                pod.ip = self.backend.start(pod.id)

            self._pods[pod.id] = pod
            self._ops.submit(pod.id, "create", provision)
            return Response(201, self._render(pod, request))

    @route("POST", "/pods/{pod_id}/start")
    def start_pod(self, request: Request, pod_id: str) -> Response:
        with self._lock2:
            pod = self._pod(pod_id)
            if pod.status == "RUNNING":
                return Response(200, self._render(pod, request))
            # Resume on the same host: with its GPUs taken, the pod comes back with none.
            pod.gpus = pod.want_gpus if pod.host.free >= pod.want_gpus else 0
            pod.host.free -= pod.gpus
            pod.status, pod.started_at = "RUNNING", _now()

            def start() -> None:
                pod.ip = self.backend.start(pod.id)

            self._ops.submit(pod.id, "start", start)
            return Response(200, self._render(pod, request))

    @route("POST", "/pods/{pod_id}/stop")
    def stop_pod(self, request: Request, pod_id: str) -> Response:
        with self._lock2:
            pod = self._pod(pod_id)
            if pod.status == "RUNNING":
                pod.status = "EXITED"
                pod.host.free += pod.gpus
                self._ops.submit(pod.id, "stop", lambda: self.backend.stop(pod.id))
            return Response(200, self._render(pod, request))

    @route("DELETE", "/pods/{pod_id}")
    def delete_pod(self, request: Request, pod_id: str) -> Response:
        with self._lock2:
            pod = self._pod(pod_id)
            del self._pods[pod_id]
            if pod.status == "RUNNING":
                pod.host.free += pod.gpus

            def destroy() -> None:
                self.backend.destroy(pod.id)

            self._ops.submit(pod.id, "delete", destroy)
            self._ops.retire(pod.id)
        return Response(204)

    # -- network volumes ------------------------------------------------------------------

    @route("GET", "/networkvolumes")
    def list_volumes(self, request: Request) -> Response:
        with self._lock2:
            return Response(200, [self._render_volume(v) for v in self._volumes.values()])

    @route("POST", "/networkvolumes")
    def create_volume(self, request: Request) -> Response:
        body = self._body(request, VOLUME_FIELDS)
        if body["dataCenterId"] not in DATA_CENTERS:
            raise self.error(400, f"invalid dataCenterId {body['dataCenterId']}")
        with self._lock2:
            volume = _Volume(
                id=secrets.token_hex(5),
                name=body["name"],
                size=body["size"],
                data_center=body["dataCenterId"],
            )
            self.backend.create_volume(volume.id)
            self._volumes[volume.id] = volume
            return Response(200, self._render_volume(volume))

    @route("GET", "/networkvolumes/{volume_id}")
    def get_volume(self, request: Request, volume_id: str) -> Response:
        with self._lock2:
            volume = self._volumes.get(volume_id)
            if volume is None:
                raise self.error(404, "network volume not found")
            return Response(200, self._render_volume(volume))

    @route("DELETE", "/networkvolumes/{volume_id}")
    def delete_volume(self, request: Request, volume_id: str) -> Response:
        with self._lock2:
            if volume_id not in self._volumes:
                raise self.error(404, "network volume not found")
            if any(p.volume_id == volume_id for p in self._pods.values()):
                raise self.error(400, "network volume is attached to a pod")
            del self._volumes[volume_id]
            self.backend.delete_volume(volume_id)
        return Response(204)
