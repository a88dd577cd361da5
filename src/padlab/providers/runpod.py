"""RunPod pods through its REST API (https://rest.runpod.io/v1, Bearer key), with httpx.

A pod is a container, not a VM, and RunPod's life cycle shapes padlab's model:

* **Stop wipes the container disk.** What outlives it is the volume at ``/workspace``,
  billed while the pod is stopped. padlab uses a *network volume* (``padlab-PROFILE``,
  created at the first ``up`` in the profile's data center), so a pod can be replaced by
  another on the same volume. Everything padlab keeps lives there (``layout``): the
  Jupyter venv, uv's cache, the box program, padlab's box state and the notebooks. A
  resumed pod rebuilds only what the wiped disk lost.
* **Up resumes** (``POST /pods/{id}/start``). A resume lands on the same host, and when
  its GPUs were rented out meanwhile the pod comes back with *0 GPUs*. padlab reads the
  pod's ``gpu.count``, says so in one line and offers ``padlab up NAME --move``: a new
  pod with a GPU on the same network volume (the old pod is deleted, the volume kept).
* **Down stops** (``POST /pods/{id}/stop``); destroy deletes the pod and keeps the volume.
* **Access.** TCP ports are mapped to other public ports (``portMappings``): ssh goes to
  ``publicIp:portMappings["22"]`` and Jupyter (padlab's TLS, its CA) to the port mapped
  to the profile's. RunPod's HTTPS proxy (``https://{podId}-{port}.proxy.runpod.net``,
  publicly trusted, so Safari and Juno need no CA profile) speaks plain HTTP to the pod's
  port: Jupyter serves its app a second time, over plain HTTP, on the port after its own
  (``proxy_port``, box/setup/http_front.py), which the pod exposes as ``/http`` only, never as a
  TCP port on the public IP; the password login and its checks are the same. The card's
  URL is the proxy's. Pods carry no UDP (RunPod's docs, pods/configuration/expose-ports.mdx,
  list HTTP and TCP only), so there is no mosh, and the card says so.
* **No public IP.** RunPod's other ssh, through ``ssh.runpod.io``, gives an interactive
  terminal only (no commands, no SCP: pods/configuration/use-ssh.mdx), and padlab runs its
  box program as an ssh command with its request on stdin. So padlab creates pods with a
  public IP (``supportPublicIp``, secure cloud), and a pod found running without one is
  refused in one line (``up --move`` makes one with a public IP on the same volume).
* **No systemd.** The pod's start command (``dockerStartCmd``, ``START_CMD``) starts sshd
  from the ``PUBLIC_KEY`` variable, as RunPod's own images do, then sleeps as PID 1.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from padlab import registry
from padlab.box.setup import boot
from padlab.errors import PadlabError
from padlab.providers import cloud, http, retry
from padlab.providers.base import BoxLayout, Machine, Progress
from padlab.providers.cloud import MISSING, OFF, RUNNING, STARTING, JsonApiProvider
from padlab.providers.http import base_url

DEFAULT_URL = "https://rest.runpod.io/v1"
# RunPod's REST API v2 (its openapi.json: server https://api.runpod.io), for its GPU catalog only:
# v1 lists no GPU types. Another --api-url (a test's fake, an allowed proxy) serves it on its own origin.
CATALOG_URL = "https://api.runpod.io"
URL_ENV = "PADLAB_RUNPOD_API_URL"
KEY_ENV = ("RUNPOD_API_KEY",)
DEFAULTS = {
    "machine_type": "NVIDIA GeForce RTX 4090",
    "region": "EU-RO-1",
    # The example image of RunPod's API reference (PodCreateInput): Ubuntu, Python 3.11, CUDA, sshd.
    "image": "runpod/pytorch:2.8.0-py3.11-cuda12.8.1",
    "disk_size": 50,
}
MOUNT = "/workspace"
CONTAINER_DISK_GB = 30
GPU_COUNT = 1
API_PRICE = "RunPod API (costPerHr)"
# RunPod's network volume price, USD per GB-month (runpod.io/pricing: $0.07 under 1 TB, 2025).
VOLUME_GB_MONTH = 0.07
# The pod's PID 1: sshd from PUBLIC_KEY (as RunPod's images' start script does), then
# padlab's box program in the background (Jupyter on boot: box/setup/boot.py), then sleep.
# The host keys are kept on the volume (root's, 0700), so a resumed or moved pod keeps the
# identity ssh pinned instead of a new one at every stop. No systemd and no cron here.
BOOT_DIR = f"{MOUNT}/.padlab/root"
START_SCRIPT = (
    "mkdir -p /root/.ssh /run/sshd && chmod 700 /root/.ssh && "
    'printf "%s\\n" "$PUBLIC_KEY" > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys && '
    f"K={MOUNT}/.padlab/ssh-host-keys && mkdir -p $K && chown root:root {MOUNT}/.padlab $K && chmod 700 $K && "
    "{ ls $K/ssh_host_*_key >/dev/null 2>&1 && cp -p $K/ssh_host_* /etc/ssh/ || "
    "{ ssh-keygen -A >/dev/null 2>&1; cp -p /etc/ssh/ssh_host_* $K/; }; } && "
    "/usr/sbin/sshd; "
    f"B={BOOT_DIR}; chown root:root $B 2>/dev/null; chmod 700 $B 2>/dev/null; "
    '[ -f $B/up-request.json ] && { python3 -I -c "$1" $B >> $B/boot.log 2>&1 & }; '
    "exec sleep infinity"
)
START_CMD = ["bash", "-c", START_SCRIPT, "padlab-start", boot.COMMAND]
STATES = {"RUNNING": RUNNING, "EXITED": OFF, "TERMINATED": MISSING}
PROXY_HOST = "proxy.runpod.net"
MOSH_NOTE = "not on RunPod: pods carry no UDP (RunPod documents HTTP and TCP ports only); use ssh"


class RunPodProvider(JsonApiProvider):
    name = "runpod"
    api_label, default_url, url_env, key_env, defaults = "RunPod", DEFAULT_URL, URL_ENV, KEY_ENV, DEFAULTS

    def proxy_port(self) -> int:
        """The pod's plain-HTTP port for RunPod's HTTPS proxy: the one after Jupyter's own."""
        return self.profile.port + 1

    def proxy_url(self, pod_id: str) -> str:
        return f"https://{pod_id}-{self.proxy_port()}.{PROXY_HOST}/"

    def gpu_types(self) -> list[str]:
        value = str(self.options.get("machine_type") or DEFAULTS["machine_type"])
        return [part.strip() for part in value.split(",") if part.strip()]

    # -- the network volume ----------------------------------------------------------------

    def volume(self) -> dict[str, Any] | None:
        _, body = self.api.request("GET", "/networkvolumes")
        found = [v for v in body if v.get("name") == self.resource_name()]
        if len(found) > 1:
            raise PadlabError(
                f"several RunPod network volumes are named {self.resource_name()!r}",
                "rename or delete the extra ones in RunPod's console (Storage), then run the command again",
            )
        return found[0] if found else None

    def ensure_volume(self, progress: Progress) -> dict[str, Any]:
        existing = self.volume()
        if existing:
            return existing
        size = int(self.options.get("disk_size") or DEFAULTS["disk_size"])
        progress(f"creating the network volume {self.resource_name()} ({size} GB) in {self.region()}")

        def find_or_post() -> dict[str, Any]:
            # A POST that failed in transit may have made it: look before asking again.
            again = self.volume()
            if again:
                return again
            body = {"name": self.resource_name(), "size": size, "dataCenterId": self.region()}
            _, answer = self.api.send("POST", "/networkvolumes", json=body)
            return dict(answer)

        volume = retry.call(find_or_post, "RunPod POST /networkvolumes")
        self.remember(volume_id=volume["id"])
        return volume

    def down_cost(self, volume: dict[str, Any] | None) -> tuple[str, float | None]:
        """What the network volume costs while the pod is stopped: (text, USD per hour)."""
        if volume is None:
            return "nothing (no network volume yet)", None
        month = int(volume["size"]) * VOLUME_GB_MONTH
        text = (
            f"network volume {volume['name']} in {volume['dataCenterId']}: "
            f"{volume['size']} GB × ${VOLUME_GB_MONTH:.2f}/GB-month ≈ ${month:.2f}/month"
        )
        return text, month / 730.0

    # -- finding -------------------------------------------------------------------------------

    def _get(self, machine_id: str) -> dict[str, Any] | None:
        status, body = self.api.request("GET", f"/pods/{machine_id}", params={"includeMachine": "true"})
        if status == 404 or not body or body.get("desiredStatus") == "TERMINATED":
            return None
        return dict(body)

    def _search(self) -> dict[str, Any] | None:
        _, body = self.api.request(
            "GET", "/pods", params={"name": self.resource_name(), "includeMachine": "true"}
        )
        found = [
            p
            for p in body
            if p.get("name") == self.resource_name() and p.get("desiredStatus") != "TERMINATED"
        ]
        if len(found) > 1:
            raise PadlabError(
                f"several RunPod pods are named {self.resource_name()!r} ({', '.join(p['id'] for p in found)})",
                "terminate the extra ones in RunPod's console, then run the command again",
            )
        return found[0] if found else None

    def describe(self) -> Machine:
        pod = self.find()
        volume = self.volume()
        if pod:
            return self._machine(pod, volume)
        if volume is None:
            return self.missing()
        billed, per_hour = self.down_cost(volume)
        return Machine(
            state=MISSING,
            billed_while_down=billed,
            down_usd_per_hour=per_hour,
            extra={"volume": volume["name"], "region": volume["dataCenterId"]},
        )

    def _machine(self, raw: dict[str, Any], volume: dict[str, Any] | None = None) -> Machine:
        status = raw.get("desiredStatus", "")
        mapped = STATES.get(status, STARTING)
        ports = {str(k): int(v) for k, v in (raw.get("portMappings") or {}).items()}
        if mapped == RUNNING and not (
            raw.get("publicIp") and "22" in ports and str(self.profile.port) in ports
        ):
            mapped = STARTING  # "If the Pod is still initializing, [the IP and mapping are] empty"
        gpu = raw.get("gpu") or {}
        price, source = (
            (float(self.options["price"]), "profile (--price)")
            if self.options.get("price") is not None
            else ((float(raw["costPerHr"]), API_PRICE) if raw.get("costPerHr") is not None else (None, None))
        )
        billed, per_hour = self.down_cost(volume) if volume is not None else (None, None)
        return Machine(
            state=mapped,
            host=raw.get("publicIp") if mapped == RUNNING else None,
            id=raw["id"],
            price_per_hour=price,
            price_source=source,
            billed_while_down=billed,
            down_usd_per_hour=per_hour,
            started_at=self.uptime_start(mapped, None),
            extra={
                "provider_state": status,
                "gpus": gpu.get("count"),
                "gpus_wanted": GPU_COUNT,
                "machine_type": gpu.get("id"),
                "region": (raw.get("machine") or {}).get("dataCenterId"),
                "ssh_port": ports.get("22"),
                "jupyter_port": ports.get(str(self.profile.port)),
                "volume": self.resource_name(),
                # False: a host without a public IP, so no mapped ssh port (includeMachine's machine)
                "public_ip": (raw.get("machine") or {}).get("supportPublicIp"),
            },
        )

    # -- up: create, or resume; a resume may come back without its GPUs --------------------------

    def _create(self, progress: Progress) -> Machine:
        volume = self.ensure_volume(progress)
        text, _ = cloud.public_key(self.profile)
        types = self.gpu_types()
        body = {
            "name": self.resource_name(),
            "imageName": str(self.options.get("image") or DEFAULTS["image"]),
            "gpuTypeIds": types,
            "gpuCount": GPU_COUNT,
            "cloudType": "SECURE",  # network volumes live in the secure cloud's data centers
            "networkVolumeId": volume["id"],
            "volumeMountPath": MOUNT,
            "containerDiskInGb": CONTAINER_DISK_GB,
            # The proxy's port is HTTP only: RunPod's proxy reaches it, the public IP does not.
            "ports": ["22/tcp", f"{self.profile.port}/tcp", f"{self.proxy_port()}/http"],
            "supportPublicIp": True,
            "env": {"PUBLIC_KEY": text},
            "dockerStartCmd": START_CMD,
        }

        def find_or_post() -> dict[str, Any]:
            existing = self._search()  # a create that failed in transit may have made one
            if existing:
                return existing
            _, answer = self.api.send("POST", "/pods", json=body)
            return dict(answer)

        raw = retry.call(find_or_post, "RunPod POST /pods")
        gpu = raw.get("gpu") or {}
        progress(
            f"created pod {raw['id']} with {gpu.get('count', GPU_COUNT)}× {gpu.get('displayName') or gpu.get('id')}"
            + (f" at ${float(raw['costPerHr']):.2f}/h" if raw.get("costPerHr") is not None else "")
            + f" on the network volume {volume['name']} ({volume['dataCenterId']})"
        )
        self.remember(machine_id=raw["id"], create_attempt=None)
        return self._machine(raw, volume)

    def _power_on(self, machine: Machine, progress: Progress) -> None:
        self.api.request("POST", f"/pods/{machine.id}/start")

    def start_machine(self, progress: Progress) -> Machine:
        """Running with an address, and with the GPUs asked for: a pod resumed without them is
        stopped again (only the volume stays billed) and refused, with `--move` as the way on.
        A pod on a host with no public IP is refused before anything starts: same way on."""
        found = self.describe()
        if found.state != MISSING and found.extra.get("public_ip") is False:
            raise PadlabError(
                f"pod {found.id} is on a host with no public IP: its only ssh is RunPod's ssh.runpod.io, "
                "an interactive terminal that carries no commands or SCP, and padlab runs its box "
                "program as an ssh command",
                f"`padlab up {self.profile.name} --move` makes a pod with a public IP on the same volume",
            )
        machine = super().start_machine(progress)
        have, want = machine.extra.get("gpus"), machine.extra.get("gpus_wanted") or GPU_COUNT
        if have is None or have >= want:
            return machine
        progress(f"pod {machine.id} came back with {have} GPUs: stopping it again")
        self._power_off(machine, progress)
        self.remember(running_since=None)
        name = self.profile.name
        raise PadlabError(
            f"pod {machine.id} resumed with {have} of {want} GPU{'s' if want > 1 else ''}: "
            "its host's GPUs were rented out while it was stopped, so padlab stopped it again "
            "(your files are on the network volume)",
            f"`padlab up {name} --move` makes a new pod with a GPU on the same volume; "
            f"or `padlab up {name}` again later",
        )

    def move(self, progress: Progress) -> None:
        """Delete the pod (the network volume stays) so the next start creates one with GPUs on it."""
        machine = self.describe()
        if machine.state == MISSING:
            return
        progress(
            f"moving: deleting pod {machine.id} ({machine.extra.get('gpus')} GPUs); "
            f"the network volume {self.resource_name()} keeps your work"
        )
        self._delete(machine, progress)
        self.remember(machine_id=None, running_id=None, running_host=None, running_since=None)

    # -- down and destroy ------------------------------------------------------------------------

    def _power_off(self, machine: Machine, progress: Progress) -> None:
        progress(f"stopping pod {machine.id} (its container disk is wiped; /workspace stays)")
        self.api.request("POST", f"/pods/{machine.id}/stop")

    def stop(self, progress: Progress) -> Machine:
        machine = super().stop(progress)
        if machine.state == OFF and machine.billed_while_down is None:
            billed, per_hour = self.down_cost(self.volume())
            machine = replace(machine, billed_while_down=billed, down_usd_per_hour=per_hour)
        return machine

    def _delete(self, machine: Machine, progress: Progress) -> None:
        if machine.id:
            self.api.request("DELETE", f"/pods/{machine.id}")

            def gone() -> tuple[bool, str]:
                return self._get(str(machine.id)) is None, "deleting"

            retry.wait_for(
                gone,
                "waiting for the pod to be deleted",
                cloud.STOP_TIMEOUT,
                progress=progress,
                fix="check RunPod's console, then run the same padlab command again",
            )
        volume = self.volume()
        if volume:
            progress(
                f"kept the network volume {volume['name']} ({self.down_cost(volume)[0]}): padlab never "
                "deletes it; delete it in RunPod's console (Storage) when you no longer need what is on it"
            )

    # -- reaching the pod: mapped ssh port, the HTTPS proxy ----------------------------------------

    def target(self, machine: Machine) -> Any:
        target = super().target(machine)
        port = machine.extra.get("ssh_port")
        return replace(target, port=int(port)) if port else target

    def wait_for_ssh(self, machine: Machine, timeout: float = 300.0) -> None:
        from padlab import ssh

        if machine.host:
            ssh.wait_reachable(machine.host, int(machine.extra.get("ssh_port") or 22), timeout)

    def forget_host_key(self, machine: Machine) -> None:
        from padlab import ssh

        if machine.host:
            ssh.close_master(self.target(machine))
            ssh.forget_host(
                machine.host, int(machine.extra.get("ssh_port") or 22), ssh.key_alias(self.profile.name)
            )

    def after_up(self, machine: Machine, report: dict[str, Any]) -> dict[str, Any]:
        out = super().after_up(machine, report)
        out["public_port"] = machine.extra.get("jupyter_port")
        out["proxy_url"] = self.proxy_url(str(machine.id))
        out["mosh_command"] = None
        out["mosh_note"] = MOSH_NOTE
        return out

    def jupyter_alive(self, machine: Machine) -> bool:
        from padlab import tls

        port = machine.extra.get("jupyter_port")
        if not machine.host or not port or not tls.ca_cert_path().exists():
            return False
        try:
            tls.handshake(machine.host, int(port), timeout=2.0)
        except (OSError, ValueError):
            return False
        return True

    def layout(self) -> BoxLayout:
        """Everything padlab keeps on the volume: the wiped container disk only holds what up rebuilds."""
        root = self.profile.root_dir
        if root == "~" or root.startswith("~/"):
            notebooks = MOUNT + root[1:]
        elif root == MOUNT or root.startswith(MOUNT + "/"):
            notebooks = root
        else:
            raise PadlabError(
                f"the notebook folder {root} is on the pod's container disk, which RunPod wipes at every stop",
                f"give one under ~ (it is placed on the volume, {MOUNT}): "
                f"padlab init {self.profile.name} --provider runpod --root-dir ~/notebooks --force",
            )
        base = super().layout()
        steps = {k: v for k, v in base.steps.items() if k != "mosh"}
        return replace(
            base,
            prefix=f"{MOUNT}/.padlab/opt",
            etc=f"{MOUNT}/.padlab/etc",
            root_dir=notebooks,
            steps={
                **steps,
                "boot": {"dir": BOOT_DIR},
                "uv_cache": f"{MOUNT}/.padlab/opt/uv-cache",
                "proxy_port": self.proxy_port(),
            },
        )

    # -- autostop: the API's stop ------------------------------------------------------------------

    def autostop_fields(self, action: str, machine: Machine | None) -> dict[str, Any]:
        """The `autostop.runpod` part: only where the API is; the pod's id and key come from the pod."""
        if action != registry.POD_STOP:
            return {}
        return {"runpod": {"api_url": base_url(self.options, URL_ENV, DEFAULT_URL)}}

    def stopped_by_box(self, machine: Machine, st: dict[str, Any]) -> tuple[float, str] | None:
        """Stopped while padlab thought it up: autostop (or RunPod's console)."""
        if machine.state != OFF or st.get("phase") != "running":
            return None
        return time.time(), (
            "pod stopped outside `padlab down`: by autostop, or in RunPod's console "
            f"(the network volume {self.resource_name()} kept your work; `padlab up` resumes it)"
        )


def catalog_url(rest_url: str) -> str:
    """Where the v2 catalog is: RunPod's own for its own v1, else the same origin as the v1 URL, so
    the stored key goes to no host it was not already sent to."""
    from urllib.parse import urlsplit

    if rest_url.rstrip("/") == DEFAULT_URL:
        return CATALOG_URL
    parts = urlsplit(rest_url)
    return f"{parts.scheme}://{parts.netloc}"


def catalog(api_url: str | None = None) -> dict[str, Any]:
    """RunPod's own list (REST v2 GET /v2/catalog/gpus, secure cloud, one GPU): each GPU type's
    secure-cloud price and the data centers with stock now; for the panel's new-workstation form."""
    from padlab.profiles import Profile

    provider = RunPodProvider(Profile(name="catalog", provider="runpod", options={"api_url": api_url}))
    api = http.JsonApi("RunPod", "runpod", catalog_url(provider.api_url()), provider.secret())
    query = {"include": "AVAILABILITY", "product": "POD", "cloud": "SECURE", "count": GPU_COUNT}
    try:
        _, body = api.request("GET", "/v2/catalog/gpus", params=query)
    finally:
        api.close()
    out = []
    for gpu in (body or {}).get("gpus") or []:
        if not gpu.get("secure"):
            continue  # padlab's pods are secure-cloud pods (a public IP, network volumes)
        price = (gpu.get("price") or {}).get("secure")
        regions = [dc["id"] for dc in gpu.get("dataCenters") or [] if dc.get("availability") != "NONE"]
        out.append(
            {
                "name": gpu["id"],
                "price_per_hour": price * GPU_COUNT if price is not None else None,
                "regions": regions,
            }
        )
    return {"machine_types": out, "source": "RunPod API (catalog/gpus, secure cloud)"}


def verify_key(value: str, api_url: str | None = None) -> None:
    """A cheap authenticated call, so `padlab login` stores only a key that works."""
    http.verify("RunPod", "runpod", base_url({"api_url": api_url}, URL_ENV, DEFAULT_URL), value, "/pods")
