"""Contract tests pinning the fake DigitalOcean v2 API to its published shapes.

They use httpx for exact status codes and bodies, and pydo (the SDK padlab's
provider uses) to prove the real client works against the fake.
"""

from __future__ import annotations

import base64
import ipaddress
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pydo
import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError

from tests.fakes import FakeDigitalOcean, MemoryBackend
from tests.fakes.backend import TEST_NET
from tests.fakes.conftest import DO_TOKEN
from tests.fakes.polling import wait_for

DROPLET_FIELDS = {
    "id", "name", "memory", "vcpus", "disk", "disk_info", "locked", "status", "kernel", "created_at", "features",
    "backup_ids", "next_backup_window", "snapshot_ids", "image", "volume_ids", "size", "size_slug", "networks",
    "region", "tags", "vpc_uuid",
}  # fmt: skip
ACTION_FIELDS = {
    "id", "status", "type", "started_at", "completed_at", "resource_id", "resource_type", "region", "region_slug",
}  # fmt: skip
SNAPSHOT_FIELDS = {
    "id", "name", "created_at", "regions", "resource_id", "resource_type", "min_disk_size", "size_gigabytes", "tags",
}  # fmt: skip
GPU = {"name": "pad-gpu", "region": "nyc2", "size": "gpu-h100x1-80gb", "image": "gpu-h100x1-base"}
CPU = {"name": "pad-cpu", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64"}


def ssh_public_key(seed: bytes = b"k") -> str:
    kind = b"ssh-ed25519"
    blob = len(kind).to_bytes(4, "big") + kind + (32).to_bytes(4, "big") + seed.ljust(32, b"\0")
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} pad@test"


def create(do: httpx.Client, **body: Any) -> dict[str, Any]:
    """Create a droplet from ``GPU`` updated with ``body``; a ``None`` value drops that field."""
    merged = {key: value for key, value in {**GPU, **body}.items() if value is not None}
    response = do.post("/v2/droplets", json=merged)
    assert response.status_code == 202, response.text
    return response.json()["droplet"]


def droplet(do: httpx.Client, droplet_id: int) -> dict[str, Any]:
    return do.get(f"/v2/droplets/{droplet_id}").json()["droplet"]


def wait_status(do: httpx.Client, droplet_id: int, status: str) -> dict[str, Any]:
    return wait_for(lambda: droplet(do, droplet_id), lambda d: d["status"] == status)


def act(do: httpx.Client, droplet_id: int, **body: Any) -> httpx.Response:
    return do.post(f"/v2/droplets/{droplet_id}/actions", json=body)


def wait_action(do: httpx.Client, action_id: int) -> dict[str, Any]:
    read = lambda: do.get(f"/v2/actions/{action_id}").json()["action"]  # noqa: E731
    return wait_for(read, lambda a: a["status"] != "in-progress")


def error(response: httpx.Response, status: int, error_id: str) -> str:
    body = response.json()
    assert (response.status_code, body["id"]) == (status, error_id), response.text
    assert set(body) == {"id", "message", "request_id"}
    return body["message"]


def public_ip(d: dict[str, Any]) -> str | None:
    return next((n["ip_address"] for n in d["networks"]["v4"] if n["type"] == "public"), None)


# -- auth and routing ---------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": DO_TOKEN}],
    ids=["none", "wrong", "no-scheme"],
)
def test_bad_credentials_are_401(digitalocean: FakeDigitalOcean, headers: dict[str, str]) -> None:
    response = httpx.get(f"{digitalocean.url}/v2/droplets", headers=headers)
    assert error(response, 401, "unauthorized") == "Unable to authenticate you."


SCOPED = "dop_v1_custom_scopes_only"


def test_a_scoped_token_reaches_only_its_scopes_routes(backend: MemoryBackend) -> None:
    scopes = (
        "droplet:read",
        "droplet:update",
        "droplet:delete",
        "snapshot:read",
        "block_storage_snapshot:read",
    )
    with (
        FakeDigitalOcean(token=DO_TOKEN, backend=backend, scoped_tokens={SCOPED: scopes}) as fake,
        httpx.Client(base_url=fake.url, headers={"Authorization": f"Bearer {SCOPED}"}) as scoped,
    ):
        assert scoped.get("/v2/droplets").status_code == 200
        error(scoped.get("/v2/snapshots/1"), 404, "not_found")  # in scope: the lookup happens
        # Out of scope: 403 before any lookup, so a missing snapshot does not hide the refusal.
        message = error(scoped.delete("/v2/snapshots/1"), 403, "forbidden")
        assert message == "You are not authorized to perform this operation."
        error(scoped.post("/v2/droplets", json={}), 403, "forbidden")
        error(scoped.get("/v2/account"), 403, "forbidden")
        error(scoped.get("/v2/nope"), 404, "not_found")
        full = httpx.delete(f"{fake.url}/v2/snapshots/1", headers={"Authorization": f"Bearer {DO_TOKEN}"})
        error(full, 404, "not_found")  # full access: every scope


def test_every_route_has_a_scope_and_scopes_are_checked() -> None:
    from padlab.providers import do_api
    from tests.fakes.digitalocean import ROUTE_OPERATIONS

    assert {name for _, _, name in FakeDigitalOcean._routes} == set(ROUTE_OPERATIONS)
    for name, op_id in ROUTE_OPERATIONS.items():  # each route is its operation's method and path
        [template] = getattr(FakeDigitalOcean, name)._fake_routes
        ops = [op for op in do_api.OPERATIONS if op.op_id.split(":")[0] == op_id.split(":")[0]]
        assert ops and all((op.method, op.path) == template for op in ops), name
    with pytest.raises(ValueError, match="not DigitalOcean scopes"):
        FakeDigitalOcean(token=DO_TOKEN, scoped_tokens={SCOPED: ["droplets"]})


def test_unknown_paths_are_404_and_wrong_methods_405(do: httpx.Client) -> None:
    error(do.get("/v2/nope"), 404, "not_found")
    error(do.get("/v1/droplets"), 404, "not_found")
    error(do.put("/v2/droplets"), 405, "method_not_allowed")


def test_unknown_ids_are_404(do: httpx.Client) -> None:
    for path in ("/v2/droplets/1", "/v2/droplets/abc", "/v2/actions/1", "/v2/snapshots/1"):
        error(do.get(path), 404, "not_found")


def test_every_response_carries_rate_limit_headers(do: httpx.Client) -> None:
    headers = do.get("/v2/account").headers
    assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(headers)


# -- create ---------------------------------------------------------------------------


def test_create_is_202_with_droplet_and_action_links(
    do: httpx.Client, digitalocean: FakeDigitalOcean
) -> None:
    response = do.post("/v2/droplets", json={**GPU, "tags": ["padlab"], "user_data": "#cloud-config\n"})
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"droplet", "links"}
    created = body["droplet"]
    assert set(created) == DROPLET_FIELDS | {"gpu_info"}
    assert isinstance(created["id"], int)
    assert created["status"] == "new"
    assert (created["size_slug"], created["region"]["slug"], created["tags"]) == (
        GPU["size"],
        "nyc2",
        ["padlab"],
    )
    assert created["gpu_info"]["model"] == "nvidia_h100"
    [link] = body["links"]["actions"]
    assert (link["rel"], link["href"]) == ("create", f"{digitalocean.url}/v2/actions/{link['id']}")
    assert wait_action(do, link["id"])["status"] == "completed"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"size": None}, "size"),
        ({"image": None}, "image"),
        ({"name": None}, "name"),
        ({"size": 1}, "size"),
        ({"tags": "padlab"}, "tags"),
        ({"ssh_keys": [1.5]}, "ssh_keys"),
        ({"name": "bad name!"}, "hostname"),
        ({"user_data": "x" * (64 * 1024 + 1)}, "64 KiB"),
        ({"size_slug": "s-1vcpu-1gb"}, "size_slug"),
        ({"names": ["a", "b"]}, "names"),
    ],
)
def test_create_rejects_bad_bodies_with_422(do: httpx.Client, change: dict[str, Any], fragment: str) -> None:
    body = {key: value for key, value in {**GPU, **change}.items() if value is not None}
    assert fragment in error(do.post("/v2/droplets", json=body), 422, "unprocessable_entity")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size": "gpu-z100"}, "You specified an invalid size for Droplet creation."),
        ({"image": "windows-95"}, "You specified an invalid image for Droplet creation."),
        ({"region": "mars1"}, "You specified an invalid region for Droplet creation."),
        ({"region": "sfo3"}, "Size gpu-h100x1-80gb is not available in region sfo3."),
        ({"ssh_keys": [42]}, "You specified an invalid SSH key ID or fingerprint."),
    ],
)
def test_create_rejects_unknown_catalog_entries(
    do: httpx.Client, change: dict[str, Any], message: str
) -> None:
    assert error(do.post("/v2/droplets", json={**GPU, **change}), 422, "unprocessable_entity") == message


def test_create_accepts_a_region_prefix_or_no_region(do: httpx.Client) -> None:
    assert create(do, region="tor")["region"]["slug"] == "tor1"
    assert create(do, name="anywhere", region=None)["region"]["slug"] in {"nyc2", "tor1", "atl1"}


def test_malformed_json_is_400(do: httpx.Client) -> None:
    response = do.post("/v2/droplets", content=b"{", headers={"Content-Type": "application/json"})
    error(response, 400, "bad_request")


# -- listing --------------------------------------------------------------------------


def test_gpu_droplets_are_listed_only_with_type_gpus(do: httpx.Client) -> None:
    gpu = create(do, tags=["padlab"])
    cpu = create(do, **CPU, tags=["padlab"])
    ids = lambda params: [d["id"] for d in do.get("/v2/droplets", params=params).json()["droplets"]]  # noqa: E731
    assert ids({}) == [cpu["id"]]
    assert ids({"type": "droplets"}) == [cpu["id"]]
    assert ids({"type": "gpus"}) == [gpu["id"]]
    assert ids({"tag_name": "padlab"}) == [cpu["id"]]
    assert ids({"type": "gpus", "name": "PAD-GPU"}) == [gpu["id"]]  # exact, case-insensitive
    assert ids({"type": "gpus", "name": "pad"}) == []


@pytest.mark.parametrize(
    "params",
    [{"tag_name": "x", "type": "gpus"}, {"tag_name": "x", "name": "y"}, {"type": "vms"}, {"per_page": 201},
     {"per_page": 0}, {"page": "two"}, {"status": "active"}],
)  # fmt: skip
def test_list_rejects_bad_query_parameters(do: httpx.Client, params: dict[str, Any]) -> None:
    error(do.get("/v2/droplets", params=params), 400, "bad_request")


def test_pagination_uses_links_pages_and_meta_total(do: httpx.Client, digitalocean: FakeDigitalOcean) -> None:
    single = do.get("/v2/droplets").json()
    assert single == {"droplets": [], "links": {}, "meta": {"total": 0}}
    ids = [create(do, **{**CPU, "name": f"pad-{i}"})["id"] for i in range(3)]

    first = do.get("/v2/droplets", params={"per_page": 2}).json()
    assert [d["id"] for d in first["droplets"]] == ids[:2]
    assert first["meta"] == {"total": 3}
    base = f"{digitalocean.url}/v2/droplets?per_page=2"
    assert first["links"] == {"pages": {"next": f"{base}&page=2", "last": f"{base}&page=2"}}

    second = do.get("/v2/droplets", params={"per_page": 2, "page": 2}).json()
    assert [d["id"] for d in second["droplets"]] == ids[2:]
    assert second["links"] == {"pages": {"first": f"{base}&page=1", "prev": f"{base}&page=1"}}


def test_lenient_mode_ignores_unknown_fields_and_parameters(backend: MemoryBackend) -> None:
    with (
        FakeDigitalOcean(token="t", backend=backend, strict=False) as fake,
        httpx.Client(base_url=fake.url, headers={"Authorization": "Bearer t"}) as client,
    ):
        assert client.get("/v2/droplets", params={"status": "active"}).status_code == 200
        assert client.post("/v2/droplets", json={**CPU, "size_slug": "x"}).status_code == 202


# -- power and actions -----------------------------------------------------------------


def test_power_cycle_walks_new_active_off_active(do: httpx.Client, backend: MemoryBackend) -> None:
    backend.stop_seconds = 0.3  # wide enough to observe the action in progress
    droplet_id = create(do)["id"]
    active = wait_status(do, droplet_id, "active")
    first_ip = public_ip(active)
    assert first_ip is not None and ipaddress.ip_address(first_ip) in TEST_NET
    assert {n["type"] for n in active["networks"]["v4"]} == {"public", "private"}

    response = act(do, droplet_id, type="power_off")
    assert response.status_code == 201
    action = response.json()["action"]
    assert set(action) == ACTION_FIELDS
    assert (action["type"], action["status"], action["resource_id"]) == (
        "power_off",
        "in-progress",
        droplet_id,
    )
    assert wait_action(do, action["id"])["status"] == "completed"
    assert droplet(do, droplet_id)["status"] == "off"

    on = act(do, droplet_id, type="power_on").json()["action"]
    assert wait_action(do, on["id"])["completed_at"] is not None
    assert public_ip(wait_status(do, droplet_id, "active")) != first_ip  # the backend hands out a new IP


def test_power_actions_respect_the_current_state(do: httpx.Client, backend: MemoryBackend) -> None:
    backend.boot_seconds = 0.3
    droplet_id = create(do)["id"]
    assert "pending event" in error(act(do, droplet_id, type="power_off"), 422, "unprocessable_entity")
    wait_status(do, droplet_id, "active")
    assert (
        error(act(do, droplet_id, type="power_on"), 422, "unprocessable_entity")
        == "Droplet is already powered on."
    )
    wait_action(do, act(do, droplet_id, type="shutdown").json()["action"]["id"])
    message = error(act(do, droplet_id, type="power_off"), 422, "unprocessable_entity")
    assert message == "Droplet is already powered off."


@pytest.mark.parametrize(
    ("body", "fragment"),
    [({}, "type"), ({"type": "explode"}, "type"), ({"type": "resize", "size": "s-2vcpu-4gb"}, "not implemented"),
     ({"type": "power_off", "name": "x"}, "name"), ({"type": "power_on", "bogus": 1}, "bogus")],
)  # fmt: skip
def test_bad_actions_are_422(do: httpx.Client, body: dict[str, Any], fragment: str) -> None:
    droplet_id = create(do)["id"]
    wait_status(do, droplet_id, "active")
    assert fragment in error(act(do, droplet_id, **body), 422, "unprocessable_entity")


def test_reboot_returns_to_active(do: httpx.Client) -> None:
    droplet_id = create(do)["id"]
    wait_status(do, droplet_id, "active")
    reboot = act(do, droplet_id, type="reboot").json()["action"]
    assert wait_action(do, reboot["id"])["status"] == "completed"
    assert droplet(do, droplet_id)["status"] == "active"


def test_droplet_scoped_action_lookup(do: httpx.Client) -> None:
    first, second = create(do)["id"], create(do, name="other")["id"]
    wait_status(do, first, "active")
    action = act(do, first, type="power_off").json()["action"]
    assert do.get(f"/v2/droplets/{first}/actions/{action['id']}").json()["action"]["id"] == action["id"]
    error(do.get(f"/v2/droplets/{second}/actions/{action['id']}"), 404, "not_found")


def test_guest_poweroff_shows_off_on_next_get(do: httpx.Client, backend: MemoryBackend) -> None:
    droplet_id = create(do)["id"]
    wait_status(do, droplet_id, "active")
    backend.guest_poweroff(str(droplet_id))
    assert droplet(do, droplet_id)["status"] == "off"


# -- snapshots ------------------------------------------------------------------------


def test_live_snapshot_then_destroy_keeps_the_snapshot(do: httpx.Client, backend: MemoryBackend) -> None:
    source = create(do)
    wait_status(do, source["id"], "active")
    backend.snapshot_seconds = 0.3  # wide enough to observe the action in progress
    response = act(do, source["id"], type="snapshot", name="pad-snap")
    assert response.status_code == 201
    action = response.json()["action"]
    assert action["status"] == "in-progress"
    assert do.get("/v2/snapshots").json()["snapshots"] == []  # not listed until the action completes
    wait_action(do, action["id"])

    [snapshot] = do.get("/v2/snapshots", params={"resource_type": "droplet"}).json()["snapshots"]
    assert set(snapshot) == SNAPSHOT_FIELDS
    assert (snapshot["name"], snapshot["resource_id"], snapshot["resource_type"]) == (
        "pad-snap",
        str(source["id"]),
        "droplet",
    )
    assert isinstance(snapshot["id"], str)
    assert do.get(f"/v2/snapshots/{snapshot['id']}").json() == {"snapshot": snapshot}
    assert droplet(do, source["id"])["snapshot_ids"] == [int(snapshot["id"])]
    [own] = do.get(f"/v2/droplets/{source['id']}/snapshots").json()["snapshots"]
    assert (own["id"], own["type"]) == (int(snapshot["id"]), "snapshot")
    assert do.get("/v2/snapshots", params={"resource_type": "volume"}).json()["snapshots"] == []

    assert do.delete(f"/v2/droplets/{source['id']}").status_code == 204
    error(do.get(f"/v2/droplets/{source['id']}"), 404, "not_found")
    assert do.get("/v2/snapshots").json()["meta"] == {"total": 1}

    restored = create(do, name="restored", image=int(snapshot["id"]))
    assert (restored["image"]["id"], restored["image"]["type"]) == (int(snapshot["id"]), "snapshot")
    wait_status(do, restored["id"], "active")
    assert backend.machines[str(restored["id"])].spec["snapshot_id"] == snapshot["id"]


def test_snapshot_restore_is_checked_against_region_and_disk(do: httpx.Client) -> None:
    source = create(do)
    wait_status(do, source["id"], "active")
    wait_action(do, act(do, source["id"], type="snapshot").json()["action"]["id"])
    snapshot_id = int(do.get("/v2/snapshots").json()["snapshots"][0]["id"])
    other_region = do.post("/v2/droplets", json={**GPU, "region": "tor1", "image": snapshot_id})
    assert "not available in region" in error(other_region, 422, "unprocessable_entity")
    too_small = do.post("/v2/droplets", json={**CPU, "region": "nyc2", "image": snapshot_id})
    assert "too small" in error(too_small, 422, "unprocessable_entity")


def test_deleting_a_snapshot(
    do: httpx.Client, digitalocean: FakeDigitalOcean, backend: MemoryBackend
) -> None:
    source = create(do)
    wait_status(do, source["id"], "active")
    wait_action(do, act(do, source["id"], type="snapshot").json()["action"]["id"])
    snapshot_id = do.get("/v2/snapshots").json()["snapshots"][0]["id"]
    assert do.delete(f"/v2/snapshots/{snapshot_id}").status_code == 204
    error(do.get(f"/v2/snapshots/{snapshot_id}"), 404, "not_found")
    assert droplet(do, source["id"])["snapshot_ids"] == []
    digitalocean.close()  # drain the backend queue
    assert backend.snapshots == {}


# -- catalog, keys, account -----------------------------------------------------------


def test_sizes_include_gpu_sizes_with_prices(do: httpx.Client) -> None:
    body = do.get("/v2/sizes", params={"per_page": 200}).json()
    sizes = {size["slug"]: size for size in body["sizes"]}
    assert body["meta"] == {"total": len(sizes)}
    h100 = sizes["gpu-h100x1-80gb"]
    assert isinstance(h100["price_hourly"], float) and isinstance(h100["price_monthly"], float)
    assert h100["gpu_info"] == {"count": 1, "model": "nvidia_h100", "vram": {"amount": 80, "unit": "gib"}}
    assert "gpu_info" not in sizes["s-1vcpu-1gb"]


def test_ssh_keys_can_be_added_listed_and_used(do: httpx.Client, backend: MemoryBackend) -> None:
    key = ssh_public_key()
    response = do.post("/v2/account/keys", json={"name": "padlab", "public_key": key})
    assert response.status_code == 201
    created = response.json()["ssh_key"]
    assert set(created) == {"id", "fingerprint", "public_key", "name"}
    assert len(created["fingerprint"].split(":")) == 16
    assert do.get("/v2/account/keys").json()["ssh_keys"] == [created]

    duplicate = do.post("/v2/account/keys", json={"name": "again", "public_key": key})
    assert "already in use" in error(duplicate, 422, "unprocessable_entity")
    invalid = do.post("/v2/account/keys", json={"name": "bad", "public_key": "ssh-ed25519 AAAA"})
    error(invalid, 422, "unprocessable_entity")
    error(do.post("/v2/account/keys", json={"name": "no key"}), 422, "unprocessable_entity")

    by_id = create(do, ssh_keys=[created["id"]])
    by_fingerprint = create(do, name="fp", ssh_keys=[created["fingerprint"]])
    for made in (by_id, by_fingerprint):
        wait_status(do, made["id"], "active")
        assert backend.machines[str(made["id"])].spec["ssh_public_keys"] == [key]


def test_account(do: httpx.Client) -> None:
    account = do.get("/v2/account").json()["account"]
    assert {"droplet_limit", "email", "uuid", "status", "email_verified", "floating_ip_limit"} <= set(account)


# -- billing --------------------------------------------------------------------------

BALANCE_FIELDS = {"month_to_date_balance", "account_balance", "month_to_date_usage", "generated_at"}
PREVIEW_FIELDS = {"invoice_uuid", "invoice_id", "amount", "invoice_period", "updated_at"}
ITEM_FIELDS = {
    "product", "resource_id", "resource_uuid", "group_description", "description", "amount", "duration",
    "duration_unit", "start_time", "end_time", "project_name",
}  # fmt: skip


def test_billing_counts_a_droplet_until_its_delete(do: httpx.Client, digitalocean: FakeDigitalOcean) -> None:
    made = create(do)
    wait_status(do, made["id"], "active")
    balance = do.get("/v2/customers/my/balance").json()
    assert set(balance) == BALANCE_FIELDS and balance["account_balance"] == "0.00"
    assert all(isinstance(balance[k], str) for k in BALANCE_FIELDS)
    listing = do.get("/v2/customers/my/invoices").json()
    assert listing["invoices"] == [] and listing["meta"] == {"total": 0}
    preview = listing["invoice_preview"]
    assert set(preview) == PREVIEW_FIELDS and len(preview["invoice_period"]) == 7
    items = do.get(f"/v2/customers/my/invoices/{preview['invoice_uuid']}").json()["invoice_items"]
    [item] = items
    assert set(item) == ITEM_FIELDS and item["resource_id"] == str(made["id"])
    assert item["product"] == "Droplets" and item["duration_unit"] == "Hours"
    assert do.delete(f"/v2/droplets/{made['id']}").status_code == 204
    first = digitalocean.billing.month_to_date()
    time.sleep(0.2)
    assert digitalocean.billing.month_to_date() == first  # deleted: billing ended


def test_billing_rejects_unknown_invoices_and_parameters(do: httpx.Client) -> None:
    error(do.get(f"/v2/customers/my/invoices/{uuid.uuid4()}"), 404, "not_found")
    error(do.get("/v2/customers/my/balance", params={"month": "2026-05"}), 400, "bad_request")
    error(do.get("/v2/customers/my/invoices", params={"per_page": 500}), 400, "bad_request")
    response = httpx.get(
        str(do.base_url.join("/v2/customers/my/balance")), headers={"Authorization": "Bearer x"}
    )
    error(response, 401, "unauthorized")


# -- test hooks ----------------------------------------------------------------------


def test_fail_next_returns_the_providers_transient_errors(
    do: httpx.Client, digitalocean: FakeDigitalOcean
) -> None:
    digitalocean.fail_next(429, path="/v2/droplets")
    assert do.get("/v2/account").status_code == 200  # the path filter spares other endpoints
    limited = do.get("/v2/droplets")
    assert error(limited, 429, "too_many_requests") == "API Rate limit exceeded."
    assert limited.headers["ratelimit-remaining"] == "0"
    digitalocean.fail_next(503, count=2)
    error(do.get("/v2/droplets"), 503, "service_unavailable")
    error(do.post("/v2/droplets", json=CPU), 503, "service_unavailable")
    assert do.get("/v2/droplets").status_code == 200


# -- pydo, the SDK padlab's provider uses ----------------------------------------------


@pytest.fixture
def tls_fake(backend: MemoryBackend) -> Iterator[FakeDigitalOcean]:
    with FakeDigitalOcean(token=DO_TOKEN, backend=backend, tls=True) as fake:
        yield fake


def test_pydo_drives_a_gpu_droplet_lifecycle(tls_fake: FakeDigitalOcean) -> None:
    client = pydo.Client(token=DO_TOKEN, endpoint=tls_fake.url, connection_verify=str(tls_fake.ca_file))
    assert any(size["slug"] == "gpu-h100x1-80gb" for size in client.sizes.list(per_page=200)["sizes"])

    created = client.droplets.create(body=GPU)["droplet"]
    assert client.droplets.list()["droplets"] == []
    assert [d["id"] for d in client.droplets.list(type="gpus")["droplets"]] == [created["id"]]
    wait_for(lambda: client.droplets.get(created["id"])["droplet"]["status"], lambda s: s == "active")

    action = client.droplet_actions.post(created["id"], body={"type": "snapshot", "name": "pydo-snap"})[
        "action"
    ]
    wait_for(lambda: client.actions.get(action["id"])["action"]["status"], lambda s: s == "completed")
    assert client.droplet_actions.get(created["id"], action["id"])["action"]["type"] == "snapshot"
    [snapshot] = client.snapshots.list(resource_type="droplet")["snapshots"]
    assert snapshot["name"] == "pydo-snap"

    client.droplets.destroy(created["id"])
    assert client.droplets.get(created["id"])["id"] == "not_found"  # pydo returns 404 bodies for gets
    client.snapshots.delete(snapshot["id"])
    assert client.snapshots.list()["snapshots"] == []
    assert all(r.headers["authorization"] == f"Bearer {DO_TOKEN}" for r in tls_fake.requests)


def test_pydo_reads_the_balance_and_invoice_preview(tls_fake: FakeDigitalOcean) -> None:
    client = pydo.Client(token=DO_TOKEN, endpoint=tls_fake.url, connection_verify=str(tls_fake.ca_file))
    assert float(client.balance.get()["month_to_date_usage"]) == 0
    preview = client.invoices.list()["invoice_preview"]
    assert client.invoices.get_by_uuid(invoice_uuid=preview["invoice_uuid"])["invoice_items"] == []


def test_pydo_sees_the_fakes_errors(tls_fake: FakeDigitalOcean) -> None:
    client = pydo.Client(token=DO_TOKEN, endpoint=tls_fake.url, connection_verify=str(tls_fake.ca_file))
    with pytest.raises(HttpResponseError) as raised:
        client.droplets.create(body={**GPU, "size": "gpu-z100"})
    assert raised.value.status_code == 422
    assert raised.value.response.json()["id"] == "unprocessable_entity"


def test_pydo_retries_injected_503s(tls_fake: FakeDigitalOcean) -> None:
    client = pydo.Client(token=DO_TOKEN, endpoint=tls_fake.url, connection_verify=str(tls_fake.ca_file))
    tls_fake.fail_next(503)
    assert client.account.get()["account"]["status"] == "active"
    assert [r.status for r in tls_fake.requests] == [503, 200]


def test_pydo_trusts_the_fake_through_requests_ca_bundle(
    tls_fake: FakeDigitalOcean, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that builds ``pydo.Client(token=..., endpoint=...)`` needs no test-only arguments."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_fake.ca_file))
    client = pydo.Client(token=DO_TOKEN, endpoint=tls_fake.url)
    assert client.droplets.list(type="gpus")["meta"] == {"total": 0}


def test_pydo_refuses_plain_http_so_use_tls(digitalocean: FakeDigitalOcean) -> None:
    client = pydo.Client(token=DO_TOKEN, endpoint=digitalocean.url, retry_total=0)
    with pytest.raises(ServiceRequestError, match="non-TLS"):
        client.droplets.list()
    assert digitalocean.requests == []  # the token never left the process
