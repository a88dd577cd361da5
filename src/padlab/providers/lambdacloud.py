"""Lambda Cloud instances through its public API (https://cloud.lambda.ai/api/v1, Bearer key), with httpx.

Lambda has no stop: an instance runs until it is terminated, and its disk goes
with it. What outlives it is a regional persistent filesystem, attached at
launch and mounted at its ``mount_point`` (``/lambda/nfs/NAME``). So padlab
keeps everything there: the Jupyter venv, the box program, padlab's box state,
kernels and the notebooks (``layout``). Then:

* ``up`` with no filesystem creates it (``padlab-PROFILE``, in the profile's
  region), then launches; with one, it launches with it attached. The bootstrap
  finds the venv already there and only re-does what lives on the instance's own
  disk (the service unit, the autostop agent).
* ``down`` terminates. The filesystem stays, and is what is billed while down.
* ``destroy`` terminates too, and keeps the filesystem: padlab never deletes it.
  Deleting it is the user's act, in Lambda's console, where it asks for its name.

Capacity comes and goes by type and region. The profile's machine type is a
comma-separated list of allowed types (exact names such as ``gpu_1x_a10``, or a
GPU such as ``a100``, which stands for every type with that GPU, fewest GPUs and
cheapest first); ``up`` launches the first one with capacity in the filesystem's
region now, and says which and its price. With none, one line names what is
available instead.

Autostop's stop is a terminate from the box (``box/autostop/lambda_stop.py``), with a
second API key that `padlab login lambda --autostop-token` stores here and `up`
sends to the box. Lambda's keys are not scoped: that key can do anything on the
account, hence a key of its own, revocable alone (docs/providers.md says who on
the box can read it).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from typing import Any

from padlab import acme, registry
from padlab.box.request import MOSH_PORTS
from padlab.errors import PadlabError
from padlab.providers import cloud, credentials, http, retry
from padlab.providers.base import BoxLayout, Machine, Progress
from padlab.providers.cloud import MISSING, OFF, RUNNING, STARTING, STOPPING, JsonApiProvider
from padlab.providers.http import Refused, base_url

DEFAULT_URL = "https://cloud.lambda.ai/api/v1"
URL_ENV = "PADLAB_LAMBDA_API_URL"
KEY_ENV = ("LAMBDA_API_KEY",)
DEFAULTS = {"machine_type": "gpu_1x_a10,gpu_1x_a6000,gpu_1x_a100_sxm4", "region": "us-east-1"}
STATES = {
    "booting": STARTING,
    "active": RUNNING,
    "unhealthy": STARTING,
    "terminating": STOPPING,
    "terminated": MISSING,
    "preempted": MISSING,
}
# Lambda's persistent storage list price, USD per GB-month (lambda.ai/pricing, 2025).
FS_GB_MONTH = 0.20
API_PRICE = "Lambda API (price_cents_per_hour)"
NO_CAPACITY = "instance-operations/launch/insufficient-capacity"
# The box's key for autostop's terminate: a second Lambda API key, so it can be revoked alone.
AUTOSTOP_CREDENTIAL = "lambda-autostop"
AUTOSTOP_HOW = (
    "create a second API key in Lambda's console (API keys), then run "
    "`padlab login lambda --autostop-token` with it"
)
BOX_KEY = cloud.BoxKey(
    credential=AUTOSTOP_CREDENTIAL,
    action=registry.TERMINATE,
    noun="key",
    needs="autostop on lambda terminates the instance from the box, which needs an API key of its own",
    how=AUTOSTOP_HOW,
)


class LambdaProvider(JsonApiProvider):
    name = "lambda"
    box_key = BOX_KEY
    api_label, default_url, url_env, key_env, defaults = "Lambda", DEFAULT_URL, URL_ENV, KEY_ENV, DEFAULTS

    # -- the filesystem ---------------------------------------------------------------

    def fs_name(self) -> str:
        """The filesystem's name: the resource name (Lambda's names: a letter first, then letters, digits, -)."""
        return self.resource_name()

    def filesystem(self) -> dict[str, Any] | None:
        _, body = self.api.request("GET", "/file-systems")
        found = [fs for fs in body["data"] if fs.get("name") == self.fs_name()]
        if found:
            self._remember_fs(found[0])
        return found[0] if found else None

    def _remember_fs(self, fs: dict[str, Any]) -> None:
        """Where it mounts (the layout needs it) and its region; written only when new."""
        seen = {"fs_mount": fs.get("mount_point"), "fs_region": fs["region"]["name"]}
        memo = self.memo()
        if any(memo.get(k) != v for k, v in seen.items()):
            self.remember(**seen)

    def ensure_filesystem(self, progress: Progress) -> dict[str, Any]:
        existing = self.filesystem()
        if existing:
            return existing
        progress(f"creating the persistent filesystem {self.fs_name()} in {self.region()}")

        def find_or_post() -> dict[str, Any]:
            # A POST that failed in transit may have made it: look before asking again.
            again = self.filesystem()
            if again:
                return again
            _, answer = self.api.send(
                "POST", "/filesystems", json={"name": self.fs_name(), "region": self.region()}
            )
            return answer["data"]

        fs = retry.call(find_or_post, "Lambda POST /filesystems")
        self._remember_fs(fs)
        return fs

    def mount_point(self) -> str:
        return str(self.memo().get("fs_mount") or f"/lambda/nfs/{self.fs_name()}")

    def down_cost(self, fs: dict[str, Any] | None) -> tuple[str, float | None]:
        """What the filesystem costs while no instance runs: (text, USD per hour)."""
        if fs is None:
            return "nothing (no filesystem yet)", None
        gb = round(float(fs.get("bytes_used") or 0) / 1e9, 1)
        month = gb * FS_GB_MONTH
        text = (
            f"filesystem {fs['name']} in {fs['region']['name']}: "
            f"{gb:g} GB used × ${FS_GB_MONTH:.2f}/GB-month ≈ ${month:.2f}/month"
        )
        return text, month / 730.0

    # -- finding -------------------------------------------------------------------------

    def _get(self, machine_id: str) -> dict[str, Any] | None:
        status, body = self.api.request("GET", f"/instances/{machine_id}")
        if status == 404:
            return None
        instance = body["data"]
        return None if STATES.get(instance.get("status")) == MISSING else instance

    def _search(self) -> dict[str, Any] | None:
        _, body = self.api.request("GET", "/instances")
        found = [
            i
            for i in body["data"]
            if i.get("name") == self.resource_name() and STATES.get(i.get("status")) != MISSING
        ]
        if len(found) > 1:
            raise PadlabError(
                f"several Lambda instances are named {self.resource_name()!r} "
                f"({', '.join(i['id'] for i in found)})",
                "terminate the extra ones in Lambda's console, then run the command again",
            )
        return found[0] if found else None

    def describe(self) -> Machine:
        instance = self.find()
        fs = self.filesystem()
        if instance:
            return self._machine(instance, fs)
        if fs is None:
            return self.missing()
        billed, per_hour = self.down_cost(fs)
        return Machine(
            state=OFF,
            price_per_hour=self.memo().get("price"),
            price_source=self.memo().get("price_source"),
            billed_while_down=billed,
            down_usd_per_hour=per_hour,
            extra={
                "provider_state": "terminated",
                "filesystem": fs["name"],
                "region": fs["region"]["name"],
                "machine_type": self.memo().get("instance_type"),
            },
        )

    def _machine(self, raw: dict[str, Any], fs: dict[str, Any] | None = None) -> Machine:
        status = raw.get("status", "")
        mapped = STATES.get(status, STARTING)
        kind = raw.get("instance_type") or {}
        cents = kind.get("price_cents_per_hour")
        price, source = (
            (float(self.options["price"]), "profile (--price)")
            if self.options.get("price") is not None
            else ((cents / 100.0, API_PRICE) if cents is not None else (None, None))
        )
        billed, per_hour = self.down_cost(fs)
        return Machine(
            state=mapped,
            host=raw.get("ip") if mapped == RUNNING else None,
            id=raw["id"],
            price_per_hour=price,
            price_source=source,
            billed_while_down=billed,
            down_usd_per_hour=per_hour,
            started_at=self.uptime_start(mapped, None),
            extra={
                "provider_state": status,
                "region": (raw.get("region") or {}).get("name"),
                "machine_type": kind.get("name"),
                "filesystem": self.fs_name(),
            },
        )

    # -- up: the filesystem, then a launch of the first type with capacity -------------------

    def _create(self, progress: Progress) -> Machine:
        self.ensure_filesystem(progress)
        return self._launch(progress)

    def _power_on(self, machine: Machine, progress: Progress) -> None:
        self.attempt_id()  # the intent, before the API call
        self._launch(progress)

    def _launch(self, progress: Progress) -> Machine:
        fs = self.ensure_filesystem(progress)
        region = fs["region"]["name"]
        key_name = self._ssh_key()
        self._open_ports()
        tried: list[str] = []
        while True:
            name, kind = self._pick(region, skip=tried, progress=progress)
            price = kind["price_cents_per_hour"] / 100.0
            progress(f"launching {name} ({kind.get('description') or name}) in {region} at ${price:.2f}/h")
            body = {
                "region_name": region,
                "instance_type_name": name,
                "ssh_key_names": [key_name],
                "file_system_names": [fs["name"]],
                "name": self.resource_name(),
            }

            def find_or_post(body: dict[str, Any] = body) -> dict[str, Any]:
                # A launch that failed in transit may have started one: look before asking again.
                existing = self._search()
                if existing:
                    return existing
                _, answer = self.api.send("POST", "/instance-operations/launch", json=body)
                [instance_id] = answer["data"]["instance_ids"]
                return self._get(instance_id) or {"id": instance_id, "status": "booting"}

            try:
                raw = retry.call(find_or_post, "Lambda launch")
            except Refused as exc:
                if exc.code != NO_CAPACITY:
                    raise
                tried.append(name)  # taken between the listing and the launch: the next one
                continue
            self.remember(
                machine_id=raw["id"],
                instance_type=name,
                price=price,
                price_source=API_PRICE,
                create_attempt=None,
            )
            return self._machine(raw, fs)

    def allowed(self) -> list[str]:
        value = str(self.options.get("machine_type") or DEFAULTS["machine_type"])
        return [part.strip() for part in value.split(",") if part.strip()]

    def _candidates(self, types: dict[str, Any]) -> list[str]:
        """The allowed types in the profile's order; a GPU name stands for its types, smallest and cheapest first."""
        out: list[str] = []
        for want in self.allowed():
            if want in types:
                matches = [want]
            else:
                pattern = re.compile(rf"^gpu_(\d+)x_{re.escape(want.lower())}(_|$)")
                matches = sorted(
                    (n for n in types if pattern.match(n)),
                    key=lambda n: (
                        int(pattern.match(n).group(1)),
                        types[n]["instance_type"]["price_cents_per_hour"],
                    ),  # type: ignore[union-attr]
                )
            if not matches:
                raise PadlabError(
                    f"Lambda has no instance type {want!r}",
                    "give types Lambda lists (e.g. gpu_1x_a10) or GPUs (a10, a100, h100): "
                    f"padlab init {self.profile.name} --provider lambda --machine-type a10,a100 --force",
                )
            out += [m for m in matches if m not in out]
        return out

    def _pick(self, region: str, skip: list[str], progress: Progress) -> tuple[str, dict[str, Any]]:
        _, body = self.api.request("GET", "/instance-types")
        types: dict[str, Any] = body["data"]
        wanted = self._candidates(types)

        def regions(name: str) -> list[str]:
            return [r["name"] for r in types[name].get("regions_with_capacity_available") or []]

        for name in wanted:
            if name not in skip and region in regions(name):
                return name, types[name]["instance_type"]
        raise self._no_capacity(region, wanted, types, regions)

    def _no_capacity(
        self, region: str, wanted: list[str], types: dict[str, Any], regions: Any
    ) -> PadlabError:
        def price(name: str) -> str:
            return f"${types[name]['instance_type']['price_cents_per_hour'] / 100:.2f}/h"

        here = sorted(
            (n for n in types if region in regions(n)),
            key=lambda n: types[n]["instance_type"]["price_cents_per_hour"],
        )
        elsewhere = [f"{n} in {', '.join(regions(n))}" for n in wanted if regions(n)]
        seen = []
        if here:
            seen.append(f"{region} has {', '.join(f'{n} ({price(n)})' for n in here[:4])}")
        if elsewhere:
            seen.append("yours elsewhere: " + "; ".join(elsewhere))
        return PadlabError(
            f"Lambda has no capacity for {', '.join(wanted)} in {region} (the filesystem's region) now; "
            + ("; ".join(seen) if seen else "nothing else there either"),
            f"run `padlab up {self.profile.name}` again later, or allow another type: "
            f"padlab init {self.profile.name} --provider lambda --machine-type {','.join([*self.allowed(), *here[:1]])} --force",
        )

    def _ssh_key(self) -> str:
        """The name of the user's public key in the account, adding it the first time."""
        text, _ = cloud.public_key(self.profile)
        blob = text.split()[1]
        _, body = self.api.request("GET", "/ssh-keys")
        for key in body["data"]:
            if (key.get("public_key") or "").split()[1:2] == [blob]:
                return str(key["name"])
        digest = hashlib.sha256(base64.b64decode(blob)).hexdigest()[:12]
        name = f"padlab-{digest}"
        if any(key.get("name") == name for key in body["data"]):
            return name
        _, answer = self.api.request("POST", "/ssh-keys", json={"name": name, "public_key": text})
        return str(answer["data"]["name"])

    def _open_ports(self) -> None:
        """Add padlab's inbound rules to the account's firewall rules, keeping the others.

        Lambda's firewall rules are the account's, for every instance: padlab adds ssh,
        Jupyter's port and mosh's UDP range from the profile's allow_from (else anywhere),
        http-01's port from anywhere unless `--tls padlab-ca` (acme.challenge_port), and never
        removes a rule it did not add.
        """
        source = self.options.get("allow_from")
        source = source if source and source != "auto" else "0.0.0.0/0"
        lo, hi = MOSH_PORTS
        want = [
            {
                "protocol": "tcp",
                "port_range": [22, 22],
                "source_network": source,
                "description": "padlab ssh",
            },
            {
                "protocol": "tcp",
                "port_range": [self.profile.port, self.profile.port],
                "source_network": source,
                "description": f"padlab jupyter ({self.profile.name})",
            },
            {
                "protocol": "udp",
                "port_range": [lo, hi],
                "source_network": source,
                "description": "padlab mosh",
            },
        ]
        challenge = acme.challenge_port(self.profile)
        if challenge:
            want.append(
                {
                    "protocol": "tcp",
                    "port_range": [challenge, challenge],
                    "source_network": "0.0.0.0/0",
                    "description": "padlab public certificate (http-01)",
                }
            )
        _, body = self.api.request("GET", "/firewall-rules")
        have = body["data"]

        def covered(rule: dict[str, Any]) -> bool:
            return any(
                r.get("protocol") in (rule["protocol"], "all")
                and r.get("source_network") in (rule["source_network"], "0.0.0.0/0")
                and (
                    r.get("protocol") == "all"
                    or (
                        r["port_range"][0] <= rule["port_range"][0]
                        and rule["port_range"][1] <= r["port_range"][1]
                    )
                )
                for r in have
            )

        missing = [rule for rule in want if not covered(rule)]
        if missing:
            self.api.request("PUT", "/firewall-rules", json={"data": [*have, *missing]})

    # -- down and destroy: terminate; the filesystem stays ----------------------------------

    def _power_off(self, machine: Machine, progress: Progress) -> None:
        progress(
            f"terminating Lambda instance {machine.id} (the filesystem {self.fs_name()} keeps your work)"
        )
        self.api.request("POST", "/instance-operations/terminate", json={"instance_ids": [machine.id]})

    def stop(self, progress: Progress) -> Machine:
        machine = super().stop(progress)
        self.remember(machine_id=None, running_id=None)
        return machine

    def _delete(self, machine: Machine, progress: Progress) -> None:
        if machine.id and machine.state != OFF:
            self._power_off(machine, progress)

            def gone() -> tuple[bool, str]:
                raw = self._get(str(machine.id))
                return raw is None, (raw or {}).get("status", "terminated")

            retry.wait_for(
                gone,
                "waiting for the instance to terminate",
                cloud.STOP_TIMEOUT,
                progress=progress,
                fix="check Lambda's console, then run `padlab destroy` again",
            )
        fs = self.filesystem()
        if fs:
            progress(
                f"kept the filesystem {fs['name']} ({self.down_cost(fs)[0]}): padlab never deletes it; "
                "delete it in Lambda's console (Storage) when you no longer need what is on it"
            )

    # -- where the workstation lives: on the filesystem -------------------------------------

    def layout(self) -> BoxLayout:
        mount = self.mount_point()
        root = self.profile.root_dir
        if root == "~" or root.startswith("~/"):
            notebooks = mount + root[1:]
        elif root == mount or root.startswith(mount + "/"):
            notebooks = root
        else:
            raise PadlabError(
                f"the notebook folder {root} is on the instance's own disk, which Lambda deletes at every `down`",
                f"give one under ~ (it is placed on the filesystem, {mount}): "
                f"padlab init {self.profile.name} --provider lambda --root-dir ~/notebooks --force",
            )
        base = super().layout()
        return replace(base, prefix=f"{mount}/padlab/opt", etc=f"{mount}/padlab/etc", root_dir=notebooks)

    # -- autostop: the box terminates itself -------------------------------------------------

    def autostop_fields(self, action: str, machine: Machine | None) -> dict[str, Any]:
        """The `autostop.lambda` part of an `up` or `autostop` request (key included)."""
        if action != registry.TERMINATE:
            return {}
        key = self.stored_box_key()
        return {
            "lambda": {
                "instance_id": machine.id if machine is not None else None,
                "api_url": base_url(self.options, URL_ENV, DEFAULT_URL),
                "key": key,
            }
        }

    def stopped_by_box(self, machine: Machine, st: dict[str, Any]) -> tuple[float, str] | None:
        """Terminated while padlab thought it up: autostop (or Lambda's console). The box's record went with it."""
        import time

        if machine.state != OFF or machine.extra.get("provider_state") != "terminated":
            return None
        return time.time(), (
            "instance terminated outside `padlab down`: by autostop, or in Lambda's console "
            f"(the filesystem {machine.extra.get('filesystem')} kept your work; `padlab up` carries on)"
        )


def verify_key(value: str, api_url: str | None = None) -> None:
    """A cheap authenticated call, so `padlab login` stores only a key that works."""
    http.verify("Lambda", "lambda", base_url({"api_url": api_url}, URL_ENV, DEFAULT_URL), value, "/instances")


def store_autostop_token(value: str, api_url: str | None, verify: bool) -> tuple[str, str]:
    """Keep the box's key for autostop's terminate; refuse the key padlab itself uses.

    Returns where it is stored and what the check showed.
    """

    def check(key: str) -> str:
        verify_key(key, api_url)
        return "the key works (it listed the instances)"

    where, note = cloud.keep_box_key(BOX_KEY, value, lambda: credentials.lookup("lambda", "Lambda API key", KEY_ENV),
                                     check if verify else None)  # fmt: skip
    return where, note + (
        "; Lambda's keys are not scoped, so this one can do anything on the account: "
        "use it for nothing else, and revoke it in Lambda's console if a box is lost"
    )


def catalog(api_url: str | None = None) -> dict[str, Any]:
    """Lambda's own list (GET /instance-types): each type's hourly price and the regions that have
    capacity now; for the panel's new-workstation form."""
    from padlab.profiles import Profile

    provider = LambdaProvider(Profile(name="catalog", provider="lambda", options={"api_url": api_url}))
    try:
        _, body = provider.api.request("GET", "/instance-types")
    finally:
        provider.api.close()
    out = []
    for name, entry in sorted((body.get("data") or {}).items()):
        cents = (entry.get("instance_type") or {}).get("price_cents_per_hour")
        regions = [r["name"] for r in entry.get("regions_with_capacity_available") or []]
        out.append(
            {"name": name, "price_per_hour": cents / 100 if cents is not None else None, "regions": regions}
        )
    return {"machine_types": out, "source": "Lambda API (instance-types)"}
