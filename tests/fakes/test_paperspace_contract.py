"""Contract tests pinning the fake Paperspace v1 API to its published shapes.

Each test states one documented (or deliberately chosen, see paperspace.py)
behaviour, so a drift in the fake fails loudly instead of letting padlab's
provider pass against a wrong API.
"""

from __future__ import annotations

import ipaddress
import ssl
from typing import Any

import httpx
import pytest

from tests.fakes import FakePaperspace, MemoryBackend
from tests.fakes import paperspace_spec as spec
from tests.fakes.backend import TEST_NET
from tests.fakes.conftest import PAPERSPACE_KEY
from tests.fakes.polling import wait_for

MACHINE_FIELDS = {
    "id", "name", "state", "os", "machineType", "agentType", "cpus", "ram", "storageTotal", "storageUsed",
    "accelerators", "region", "privateIp", "networkId", "publicIp", "publicIpType", "autoShutdownEnabled",
    "autoShutdownTimeout", "autoShutdownForce", "autoSnapshotEnabled", "autoSnapshotFrequency",
    "autoSnapshotSaveCount", "updatesPending", "restorePointEnabled", "restorePointFrequency",
    "restorePointSnapshotId", "usageRate", "storageRate", "dtCreated", "dtModified", "dtDeleted", "reservation",
}  # fmt: skip
EVENT_FIELDS = {"id", "name", "state", "machineId", "dtCreated", "dtStarted", "dtFinished", "error"}
STATES = {"off", "starting", "stopping", "restarting", "serviceready", "ready", "upgrading", "provisioning"}


def machine_body(**overrides: Any) -> dict[str, Any]:
    body = {"name": "pad", "machineType": "A4000", "templateId": "t0nspur5", "diskSize": 50, "region": "ny2"}
    return {**body, **overrides}


def create(ps: httpx.Client, **overrides: Any) -> dict[str, Any]:
    response = ps.post("/machines", json=machine_body(**overrides))
    assert response.status_code == 200, response.text
    return response.json()["data"]


def state_of(ps: httpx.Client, machine_id: str) -> str:
    return ps.get(f"/machines/{machine_id}").json()["state"]


def wait_state(ps: httpx.Client, machine_id: str, state: str) -> dict[str, Any]:
    return wait_for(lambda: ps.get(f"/machines/{machine_id}").json(), lambda m: m["state"] == state)


def issues(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert (response.status_code, body["code"], body["message"]) == (
        400,
        "BAD_REQUEST",
        "Input validation failed",
    )
    return body["details"]["issues"]


# -- auth and routing ---------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Api-Key": PAPERSPACE_KEY}, {"Authorization": "Bearer wrong"}, {"Authorization": PAPERSPACE_KEY}],
    ids=["none", "legacy-x-api-key", "wrong-key", "no-bearer-scheme"],
)
def test_requests_without_a_valid_bearer_token_are_401(
    paperspace: FakePaperspace, headers: dict[str, str]
) -> None:
    response = httpx.get(f"{paperspace.url}/machines", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"message": "UNAUTHORIZED", "code": "UNAUTHORIZED"}


def test_unknown_paths_and_wrong_methods_are_404_like_trpc_openapi(paperspace: FakePaperspace) -> None:
    for method, path in [("GET", "/v1/nope"), ("POST", "/v1/machines/ps1/start"), ("GET", "/machines")]:
        response = httpx.request(method, paperspace.url.removesuffix("/v1") + path)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"message": "Not found", "code": "NOT_FOUND"}


def test_unknown_machine_is_404(ps: httpx.Client) -> None:
    for method, path in [("GET", "/machines/psmissing"), ("PATCH", "/machines/psmissing/start")]:
        response = ps.request(method, path)
        assert response.status_code == 404
        assert response.json()["code"] == "NOT_FOUND"


# -- create and validation ----------------------------------------------------------


def test_create_returns_event_and_machine_with_documented_fields(ps: httpx.Client) -> None:
    body = ps.post("/machines", json=machine_body(startOnCreate=False)).json()
    assert set(body) == {"event", "data"}
    assert set(body["event"]) == EVENT_FIELDS
    assert body["event"]["name"] == "create"
    assert set(body["data"]) == MACHINE_FIELDS
    assert body["data"]["state"] in STATES
    assert body["data"]["machineType"] == "A4000"
    assert body["data"]["accelerators"] == [{"name": "A4000", "memory": 16 * 2**30, "count": 1}]


def test_create_requires_the_documented_fields(ps: httpx.Client) -> None:
    found = issues(ps.post("/machines", json={}))
    missing = {tuple(issue["path"]) for issue in found if issue["message"] == "Required"}
    assert missing == {("name",), ("machineType",), ("templateId",), ("diskSize",), ("region",)}


def test_create_rejects_legacy_and_unknown_fields(ps: httpx.Client) -> None:
    legacy = {"machineName": "pad", "size": 50, "billingType": "hourly"}
    found = issues(ps.post("/machines", json={**machine_body(), **legacy}))
    assert found == [
        {
            "code": "unrecognized_keys",
            "keys": ["machineName", "size", "billingType"],
            "path": [],
            "message": "Unrecognized key(s) in object: 'machineName', 'size', 'billingType'",
        }
    ]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("diskSize", "50", "invalid_type"),
        ("startOnCreate", "yes", "invalid_type"),
        ("publicIpType", "elastic", "invalid_enum_value"),
        ("name", "", "custom"),
        ("diskSize", 0, "custom"),
    ],
)
def test_create_rejects_wrong_types_and_values(ps: httpx.Client, field: str, value: Any, code: str) -> None:
    found = issues(ps.post("/machines", json=machine_body(**{field: value})))
    assert [(issue["code"], issue["path"]) for issue in found] == [(code, [field])]


@pytest.mark.parametrize(
    ("field", "value"), [("machineType", "GPU+"), ("templateId", "tbogus"), ("region", "nyc3")]
)
def test_create_rejects_unknown_catalog_entries(ps: httpx.Client, field: str, value: str) -> None:
    response = ps.post("/machines", json=machine_body(**{field: value}))
    assert response.status_code == 400
    assert response.json()["code"] == "BAD_REQUEST"


def test_malformed_json_is_400(ps: httpx.Client) -> None:
    response = ps.post("/machines", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "BAD_REQUEST"


# -- state machine ------------------------------------------------------------------


def test_start_and_stop_walk_the_documented_states(ps: httpx.Client) -> None:
    machine = create(ps, startOnCreate=False)
    wait_state(ps, machine["id"], "off")

    started = ps.patch(f"/machines/{machine['id']}/start").json()
    assert started["event"]["name"] == "start"
    assert started["data"]["state"] in {"starting", "ready"}
    ready = wait_state(ps, machine["id"], "ready")
    assert ipaddress.ip_address(ready["publicIp"]) in TEST_NET

    stopped = ps.patch(f"/machines/{machine['id']}/stop").json()
    assert stopped["event"]["name"] == "stop"
    assert stopped["data"]["state"] in {"stopping", "off"}
    off = wait_state(ps, machine["id"], "off")
    assert off["publicIp"] is None  # dynamic IPs are released while off

    ps.patch(f"/machines/{machine['id']}/start")
    again = wait_state(ps, machine["id"], "ready")
    assert again["publicIp"] != ready["publicIp"]


def test_machines_start_on_create_by_default(ps: httpx.Client) -> None:
    machine = create(ps)
    assert machine["state"] in {"provisioning", "starting", "ready"}
    wait_state(ps, machine["id"], "ready")


def test_start_requires_off_and_stop_requires_running(ps: httpx.Client) -> None:
    machine = create(ps, startOnCreate=False)
    stop = ps.patch(f"/machines/{machine['id']}/stop")
    assert stop.status_code == 400
    assert stop.json()["code"] == "BAD_REQUEST"

    ps.patch(f"/machines/{machine['id']}/start")
    wait_state(ps, machine["id"], "ready")
    start = ps.patch(f"/machines/{machine['id']}/start")
    assert start.status_code == 400
    assert "ready" in start.json()["message"]


def test_restart_goes_through_restarting(ps: httpx.Client, backend: MemoryBackend) -> None:
    backend.boot_seconds = 0.3
    machine = create(ps)
    wait_state(ps, machine["id"], "ready")
    restarted = ps.patch(f"/machines/{machine['id']}/restart").json()
    assert restarted["event"]["name"] == "restart"
    assert state_of(ps, machine["id"]) in {"restarting", "starting"}
    wait_state(ps, machine["id"], "ready")


def test_guest_poweroff_shows_on_next_get(ps: httpx.Client, backend: MemoryBackend) -> None:
    machine = create(ps)
    wait_state(ps, machine["id"], "ready")
    backend.guest_poweroff(machine["id"])
    assert state_of(ps, machine["id"]) == "off"


def test_static_ip_is_kept_while_off(ps: httpx.Client) -> None:
    machine = create(ps, publicIpType="static")
    ip = wait_state(ps, machine["id"], "ready")["publicIp"]
    ps.patch(f"/machines/{machine['id']}/stop")
    assert wait_state(ps, machine["id"], "off")["publicIp"] == ip


def test_delete_removes_the_machine_everywhere(
    ps: httpx.Client, paperspace: FakePaperspace, backend: MemoryBackend
) -> None:
    machine = create(ps)
    deleted = ps.delete(f"/machines/{machine['id']}").json()
    assert deleted["event"]["name"] == "deactivate"
    assert deleted["data"]["id"] == machine["id"]
    assert ps.get(f"/machines/{machine['id']}").status_code == 404
    assert ps.get("/machines").json()["items"] == []
    paperspace.close()  # drains the backend queue
    assert machine["id"] not in backend.machines


# -- update ---------------------------------------------------------------------------


def test_put_updates_documented_fields_only(ps: httpx.Client) -> None:
    machine = create(ps, startOnCreate=False)
    renamed = ps.put(f"/machines/{machine['id']}", json={"name": "renamed", "autoShutdownEnabled": True})
    assert renamed.status_code == 200
    assert set(renamed.json()) == {"data"}
    assert renamed.json()["data"]["name"] == "renamed"
    assert renamed.json()["data"]["autoShutdownEnabled"] is True

    assert (
        issues(ps.put(f"/machines/{machine['id']}", json={"machineName": "x"}))[0]["code"]
        == "unrecognized_keys"
    )
    assert ps.put(f"/machines/{machine['id']}", json={"diskSize": 10}).status_code == 400


# -- listing --------------------------------------------------------------------------


def test_list_envelope_and_cursor_pagination(ps: httpx.Client) -> None:
    assert ps.get("/machines").json() == {"hasMore": False, "items": []}
    created = [create(ps, name=f"pad-{i}", startOnCreate=False)["id"] for i in range(5)]

    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = ps.get("/machines", params=params).json()
        assert set(page["items"][0]) == MACHINE_FIELDS
        seen += [item["id"] for item in page["items"]]
        if not page["hasMore"]:
            assert "nextPage" not in page
            break
        params = {"limit": 2, "after": page["nextPage"]}
    assert seen == created[::-1]  # newest first by default


def test_list_ordering_and_filters(ps: httpx.Client) -> None:
    for name in ("b", "a", "c"):
        create(ps, name=name, startOnCreate=False)
    by_name = ps.get("/machines", params={"orderBy": "name", "order": "asc"}).json()["items"]
    assert [m["name"] for m in by_name] == ["a", "b", "c"]
    assert [m["name"] for m in ps.get("/machines", params={"name": "b"}).json()["items"]] == ["b"]
    assert ps.get("/machines", params={"region": "ams1"}).json()["items"] == []


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 121}, {"limit": "ten"}, {"order": "up"}, {"orderBy": "id"}, {"page": 2}],
)
def test_list_rejects_bad_query_parameters(ps: httpx.Client, params: dict[str, Any]) -> None:
    issues(ps.get("/machines", params=params))


def test_list_rejects_a_forged_cursor(ps: httpx.Client) -> None:
    response = ps.get("/machines", params={"after": "not-a-cursor"})
    assert response.status_code == 400


def test_lenient_mode_ignores_unknown_query_parameters() -> None:
    with FakePaperspace(api_key="k", strict=False) as fake:
        response = httpx.get(
            f"{fake.url}/machines", params={"page": 2}, headers={"Authorization": "Bearer k"}
        )
    assert response.status_code == 200


# -- test hooks ----------------------------------------------------------------------


def test_fail_next_injects_transient_errors(ps: httpx.Client, paperspace: FakePaperspace) -> None:
    paperspace.fail_next(503, count=2, method="GET", path="/machines")
    paperspace.fail_next(429, retry_after=2)
    assert ps.get("/machines").json() == {"message": "SERVICE_UNAVAILABLE", "code": "SERVICE_UNAVAILABLE"}
    assert ps.get("/machines").status_code == 503
    limited = ps.get("/machines")
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "2")
    assert ps.get("/machines").status_code == 200
    assert [r.status for r in paperspace.requests] == [503, 503, 429, 200]


def test_request_log_supports_secret_leak_checks(ps: httpx.Client, paperspace: FakePaperspace) -> None:
    create(ps, name="pad")
    [request] = paperspace.requests
    assert (request.method, request.path, request.status) == ("POST", "/v1/machines", 200)
    assert request.headers["authorization"] == f"Bearer {PAPERSPACE_KEY}"
    assert request.mentions(PAPERSPACE_KEY)
    assert not request.mentions("never-sent-secret")
    paperspace.clear_requests()
    assert paperspace.requests == []


def test_https_serving_with_the_fake_ca(backend: MemoryBackend) -> None:
    with FakePaperspace(api_key="k", backend=backend, tls=True) as fake:
        assert fake.url.startswith("https://127.0.0.1:")
        with httpx.Client(verify=ssl.create_default_context(cafile=fake.ca_file)) as client:
            response = client.get(f"{fake.url}/machines", headers={"Authorization": "Bearer k"})
    assert response.status_code == 200


# -- the machine types' lists (os-templates, machine-availability) -------------------------------


def test_os_templates_answer_without_a_key_but_refuse_a_wrong_one(paperspace: FakePaperspace) -> None:
    public = httpx.get(f"{paperspace.url}/os-templates")
    assert public.status_code == 200
    body = public.json()
    assert set(body) >= {"hasMore", "items"} and body["items"]
    for template in body["items"]:
        assert set(template) == set(spec.OS_TEMPLATE_FIELDS)
        for entry in template["availableMachineTypes"]:
            assert set(entry) == {"machineTypeLabel", "isAvailable"}
    wrong = httpx.get(f"{paperspace.url}/os-templates", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401


def test_os_templates_page_with_the_documented_query(ps: httpx.Client) -> None:
    first = ps.get("/os-templates", params={"limit": 1, "orderBy": "name", "order": "asc"}).json()
    assert first["hasMore"] is True and len(first["items"]) == 1
    rest = ps.get("/os-templates", params={"limit": 1, "order": "asc", "after": first["nextPage"]}).json()
    assert rest["items"][0]["id"] != first["items"][0]["id"]
    assert issues(ps.get("/os-templates", params={"region": "ny2"}))[0]["code"] == "unrecognized_keys"
    assert issues(ps.get("/os-templates", params={"orderBy": "dtCreated"}))[0]["code"] == "invalid_enum_value"


def test_machine_availability_needs_a_key_both_parameters_and_known_values(
    paperspace: FakePaperspace, ps: httpx.Client
) -> None:
    query = {"machineType": "A6000", "region": "ny2"}
    assert ps.get("/machine-availability", params=query).json() == {"available": True}
    assert ps.get("/machine-availability", params={**query, "region": "ams1"}).json() == {"available": False}
    assert httpx.get(f"{paperspace.url}/machine-availability", params=query).status_code == 401
    missing = issues(ps.get("/machine-availability", params={"machineType": "A6000"}))
    assert [(i["path"], i["message"]) for i in missing] == [(["region"], "Required")]
    assert ps.get("/machine-availability", params={**query, "machineType": "Z9"}).status_code == 400
    paperspace.availability["A6000"].discard("ny2")
    assert ps.get("/machine-availability", params=query).json() == {"available": False}


def test_create_refuses_a_machine_type_its_template_lists_as_unavailable(ps: httpx.Client) -> None:
    response = ps.post("/machines", json=machine_body(machineType="P4000"))
    assert response.status_code == 400 and "not available on machine type P4000" in response.json()["message"]
