"""Paperspace machines through the v1 API (https://api.paperspace.com/v1, Bearer key).

A stopped Paperspace machine keeps its disk (billed monthly by size) and
stops billing compute, so ``down`` is a plain stop and ``up`` a plain start.
Machines are found by id, or by the name padlab gave them (``padlab-PROFILE``).
"""

from __future__ import annotations

from typing import Any

from padlab.errors import PadlabError
from padlab.providers import cloud, http, prices, retry
from padlab.providers.base import Machine, Progress
from padlab.providers.cloud import MISSING, OFF, RUNNING, STARTING, STOPPING, JsonApiProvider
from padlab.providers.http import base_url

DEFAULT_URL = "https://api.paperspace.com/v1"
URL_ENV = "PADLAB_PAPERSPACE_API_URL"
KEY_ENV = ("PAPERSPACE_API_KEY",)
DEFAULTS = {"machine_type": "A4000", "region": "ny2", "image": "t0nspur5", "disk_size": 50}
# Paperspace's regions for machines (its availability page: NY2, CA1, AMS1); v1 has no call that lists them.
REGIONS = ("ny2", "ca1", "ams1")
CATALOG_SOURCE = f"{prices.TABLE_NOTE}; machine types and regions from Paperspace's API (os-templates, machine-availability)"

STATES = {
    "ready": RUNNING,
    "off": OFF,
    "stopping": STOPPING,
    "starting": STARTING,
    "provisioning": STARTING,
    "restarting": STARTING,
    "serviceready": STARTING,
    "upgrading": STARTING,
}


class PaperspaceProvider(JsonApiProvider):
    name = "paperspace"
    api_label, default_url, url_env, key_env, defaults = "Paperspace", DEFAULT_URL, URL_ENV, KEY_ENV, DEFAULTS

    # -- finding -------------------------------------------------------------------------

    def _get(self, machine_id: str) -> dict[str, Any] | None:
        status, body = self.api.request("GET", f"/machines/{machine_id}")
        return None if status == 404 else body

    def _search(self) -> dict[str, Any] | None:
        name = self.resource_name()
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"name": name, "limit": 120}
        while True:
            _, body = self.api.request("GET", "/machines", params=params)
            found += [m for m in body.get("items", []) if m.get("name") == name]
            if not body.get("hasMore") or not body.get("nextPage"):
                break
            params = {"name": name, "limit": 120, "after": body["nextPage"]}
        if len(found) > 1:
            ids = ", ".join(m["id"] for m in found)
            raise PadlabError(
                f"several Paperspace machines are named {name!r} ({ids})",
                f"attach one: padlab init {self.profile.name} --provider paperspace --machine-id ID --force",
            )
        return found[0] if found else None

    def _machine(self, raw: dict[str, Any]) -> Machine:
        provider_state = raw.get("state", "")
        price, source = prices.hourly(
            "paperspace",
            raw.get("machineType"),
            self.options.get("price"),
            _number(raw.get("usageRate")),
            "Paperspace API (usageRate)",
        )
        storage = _number(raw.get("storageRate"))
        disk_gb = round((raw.get("storageTotal") or 0) / 2**30) or self.setting("disk_size")
        billed = f"disk {disk_gb:g} GB" + (f" (${storage:.2f}/month)" if storage is not None else "")
        if raw.get("publicIpType") == "static":
            billed += " + static public IP"
        mapped = STATES.get(provider_state, STARTING)
        return Machine(
            state=mapped,
            host=raw.get("publicIp"),
            id=raw.get("id"),
            price_per_hour=price,
            price_source=source,
            billed_while_down=billed,
            down_usd_per_hour=prices.hourly_from_month(storage) if storage is not None else None,
            started_at=self.uptime_start(mapped, None),
            extra={
                "provider_state": provider_state,
                "name": raw.get("name"),
                "region": raw.get("region"),
                "machine_type": raw.get("machineType"),
            },
        )

    # -- acting --------------------------------------------------------------------------

    def _create(self, progress: Progress) -> Machine:
        body = {
            "name": self.resource_name(),
            "machineType": self.setting("machine_type"),
            "templateId": self.setting("image"),
            "diskSize": int(self.setting("disk_size")),
            "region": self.setting("region"),
            "publicIpType": "dynamic",
            "startOnCreate": True,
        }

        def find_or_post() -> dict[str, Any]:
            # A POST that timed out may have created the machine: look before asking again.
            existing = self._search()
            if existing:
                return existing
            _, answer = self.api.send("POST", "/machines", json=body)
            return answer["data"]

        raw = retry.call(find_or_post, "Paperspace POST /machines")
        self.remember(machine_id=raw["id"])
        return self._machine(raw)

    def _power_on(self, machine: Machine, progress: Progress) -> None:
        self._power(machine, "start", (OFF,))

    def _power_off(self, machine: Machine, progress: Progress) -> None:
        self._power(machine, "stop", (RUNNING, STARTING))

    def _power(self, machine: Machine, verb: str, allowed: tuple[str, ...]) -> None:
        try:
            self.api.request("PATCH", f"/machines/{machine.id}/{verb}")
        except PadlabError:
            # Raced with another change (e.g. a guest poweroff): fine if the machine moved on.
            if self.describe().state in allowed:
                raise

    def _delete(self, machine: Machine, progress: Progress) -> None:
        if not machine.id:
            return
        self.api.request("DELETE", f"/machines/{machine.id}")

        def gone() -> tuple[bool, str]:
            raw = self._get(str(machine.id))
            return raw is None, STATES.get(raw.get("state", ""), STARTING) if raw else MISSING

        retry.wait_for(
            gone,
            "waiting for the machine to be deleted",
            cloud.STOP_TIMEOUT,
            progress=progress,
            fix="check Paperspace's console, then run `padlab destroy` again",
        )


def _number(value: Any) -> float | None:
    """Rates come as numbers, or as strings such as '0.76' or '$0.76/hr'."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    digits = "".join(ch for ch in str(value) if ch.isdigit() or ch == ".")
    try:
        return float(digits)
    except ValueError:
        return None


def verify_key(value: str, api_url: str | None = None) -> None:
    """A cheap authenticated call, so `padlab login` stores only a key that works."""
    http.verify("Paperspace", "paperspace", base_url({"api_url": api_url}, URL_ENV, DEFAULT_URL), value,
                "/machines", params={"limit": 1})  # fmt: skip


def catalog(api_url: str | None = None) -> dict[str, Any]:
    """Paperspace's own list, for the panel's new-workstation form: the machine types padlab's
    template lists as available (GET /os-templates; a machine type must be one of its labels), each
    with the regions where it can be created now (GET /machine-availability). Prices are padlab's
    table: Paperspace states a rate only for a machine that exists."""
    from concurrent.futures import ThreadPoolExecutor

    from padlab.profiles import Profile

    provider = PaperspaceProvider(
        Profile(name="catalog", provider="paperspace", options={"api_url": api_url})
    )
    api = provider.api
    template_id = DEFAULTS["image"]
    try:
        template = None
        params: dict[str, Any] = {"limit": 120}
        while template is None:
            _, body = api.request("GET", "/os-templates", params=params)
            template = next((t for t in body.get("items") or [] if t.get("id") == template_id), None)
            if template is not None or not body.get("hasMore") or not body.get("nextPage"):
                break
            params = {"limit": 120, "after": body["nextPage"]}
        if template is None:
            raise PadlabError(
                f"Paperspace lists no OS template {template_id}",
                "padlab's list is shown; set --image if it moved",
            )
        names = [
            str(m["machineTypeLabel"])
            for m in template.get("availableMachineTypes") or []
            if m.get("isAvailable") and m.get("machineTypeLabel")
        ]

        def available(pair: tuple[str, str]) -> bool:
            try:
                _, answer = api.request(
                    "GET", "/machine-availability", params={"machineType": pair[0], "region": pair[1]}
                )
            except http.Refused as exc:
                if exc.status == 400:  # a type Paperspace does not offer in that region
                    return False
                raise
            return bool((answer or {}).get("available"))

        pairs = [(name, region) for name in names for region in REGIONS]
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = dict(zip(pairs, pool.map(available, pairs)))
    finally:
        api.close()
    table = prices.HOURLY.get("paperspace", {})
    return {
        "machine_types": [
            {
                "name": name,
                "price_per_hour": table.get(name),
                "regions": [r for r in REGIONS if found[(name, r)]],
            }
            for name in names
        ],
        "source": CATALOG_SOURCE,
    }
