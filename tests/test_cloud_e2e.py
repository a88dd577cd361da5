"""The cloud workflow end to end: the fake Paperspace and DigitalOcean APIs run real testbed machines.

`padlab` runs as users run it (a subprocess with a profile pointed at the fake
API). The machines behind the fakes are systemd Debian machines (TestbedBackend),
so start, address, ssh, bootstrap, HTTPS login and the disk's survival across
`down`/`up` are all real. One machine per test: each test's later steps build on
its first bootstrap.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from padlab.notebook_api import NotebookClient
from padlab.providers.digitalocean import AUTOSTOP_SCOPES
from tests.fakes import FakeDigitalOcean, FakePaperspace
from tests.fakes.testbed_backend import TestbedBackend
from tests.helpers import PASSWORD, padlab

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(900)]

PS_KEY = "ps-e2e-secret-5f4e3d2c1b0a"
DO_TOKEN = "dop_v1_e2e_secret_0a1b2c3d4e5f"
BOX_TOKEN = "dop_v1_e2e_box_scoped_9f8e7d6c5b4a"  # the droplet's own, for autostop
NOTEBOOK = "e2e.ipynb"
MARKER = "written before padlab down"


def eventually(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """Poll until `check()` is truthy: the fakes finish backend work on worker threads."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)
    return result


def padlab_json(home: Path, *args: str, input: str | None = None, **env: str) -> dict[str, Any]:
    return json.loads(padlab(home, *args, "--json", input=input, **env).stdout)


def public_key(identity: Path) -> str:
    return identity.with_name(identity.name + ".pub").read_text().strip()


def login_and_run(card: dict[str, Any]) -> str:
    """Password login over HTTPS verified against padlab's CA (so the certificate names the card's
    address), then code in a kernel."""
    with NotebookClient(card["url"], card["ca_cert"]) as client:
        assert client.login(PASSWORD), "Jupyter refused the password"
        kernel = client.start_kernel()
        try:
            return client.execute(kernel, "print(6 * 7)").stdout.strip()
        finally:
            client.shutdown_kernel(kernel)


def write_notebook(card: dict[str, Any]) -> None:
    notebook = {
        "cells": [{"cell_type": "markdown", "id": "note", "metadata": {}, "source": MARKER}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    with NotebookClient(card["url"], card["ca_cert"]) as client:
        assert client.login(PASSWORD)
        resp = client.api("PUT", f"/contents/{NOTEBOOK}", json={"type": "notebook", "content": notebook})
        assert resp.status_code == 201, resp.text


def read_notebook(card: dict[str, Any]) -> str:
    with NotebookClient(card["url"], card["ca_cert"]) as client:
        assert client.login(PASSWORD)
        resp = client.api("GET", f"/contents/{NOTEBOOK}")
        assert resp.status_code == 200, resp.text
        return resp.json()["content"]["cells"][0]["source"]


def changed(card: dict[str, Any]) -> set[str]:
    return {step["name"] for step in card["steps"] if step["changed"]}


def host_of(card: dict[str, Any]) -> str:
    return httpx.URL(card["url"]).host


def known_key(home: Path, host: str) -> str:
    """The host key padlab has pinned for `host` (a profile's padlab-NAME alias), as key type and base64, or ''."""
    path = home / "ssh" / "known_hosts"
    found = subprocess.run(["ssh-keygen", "-F", host, "-f", str(path)], capture_output=True, text=True)
    lines = [line for line in found.stdout.splitlines() if line and not line.startswith("#")]
    return " ".join(lines[0].split()[1:3]) if lines else ""


# -- Paperspace: stop keeps the machine and its disk --------------------------------------------


@pytest.fixture
def paperspace(testbed) -> Iterator[tuple[FakePaperspace, TestbedBackend, httpx.Client]]:
    # Paperspace puts the account's ssh keys on a new machine, for its `paperspace` user.
    backend = TestbedBackend(testbed, login_user="paperspace", account_keys=[public_key(testbed.identity)])
    with backend, FakePaperspace(api_key=PS_KEY, backend=backend) as fake:
        auth = {"Authorization": f"Bearer {PS_KEY}"}
        with httpx.Client(base_url=fake.url, headers=auth) as api:
            yield fake, backend, api


def test_paperspace_up_down_up_keeps_the_machine_and_its_notebook(paperspace, testbed, tmp_path) -> None:
    fake, backend, api = paperspace
    home, env = tmp_path / "padlab-home", {"PAPERSPACE_API_KEY": PS_KEY}
    padlab(home, "init", "ps", "--provider", "paperspace", "--api-url", fake.url,
           "--identity", str(testbed.identity), **env)  # fmt: skip

    card = padlab_json(home, "up", "ps", "--password-stdin", input=PASSWORD + "\n", **env)
    [machine_id] = backend.machine_ids()
    machine = backend.machine(machine_id)
    assert card["state"] == "running" and host_of(card) == machine.ip
    assert card["ssh"] == f"ssh paperspace@{machine.ip}"
    assert login_and_run(card) == "42"
    assert machine.exec("systemctl show padlab-ps.service -p User").stdout.strip() == "User=paperspace"
    write_notebook(card)
    assert (machine.root / "home/paperspace/notebooks" / NOTEBOOK).is_file()

    stopped = padlab_json(home, "down", "ps", **env)
    assert stopped["state"] == "stopped"
    assert api.get(f"/machines/{machine_id}").json()["state"] == "off"
    assert machine.state() == "off"  # really powered off, not just reported so

    again = padlab_json(home, "up", "ps", **env)
    assert not {"python-env", "mosh"} & changed(again)  # the disk kept them: no re-install
    assert backend.machine_ids() == [machine_id] and machine.boot_count == 2  # same machine, same disk
    assert api.get("/machines").json()["items"][0]["id"] == machine_id
    assert read_notebook(again) == MARKER
    assert login_and_run(again) == "42"

    machine.poweroff()  # the guest shuts itself down (autostop, or `sudo poweroff` in a terminal)
    assert api.get(f"/machines/{machine_id}").json()["state"] == "off"
    status = padlab_json(home, "status", "ps", **env)
    assert status["state"] == "stopped" and status["machine"]["state"] == "off"


# -- DigitalOcean: down is shutdown, snapshot, verify, destroy; up re-creates ------------------


@pytest.fixture
def digitalocean(testbed) -> Iterator[tuple[FakeDigitalOcean, TestbedBackend, httpx.Client]]:
    backend = TestbedBackend(testbed, login_user="root")  # droplets take the keys named at create
    scoped = {BOX_TOKEN: (*AUTOSTOP_SCOPES, "actions:read")}
    with backend, FakeDigitalOcean(token=DO_TOKEN, backend=backend, tls=True, scoped_tokens=scoped) as fake:
        verify = ssl.create_default_context(cafile=str(fake.ca_file))
        headers = {"Authorization": f"Bearer {DO_TOKEN}"}
        with httpx.Client(base_url=fake.url, headers=headers, verify=verify) as api:
            yield fake, backend, api


def test_digitalocean_snapshot_cycle_keeps_the_notebook_on_new_droplets(
    digitalocean, testbed, make_client, tmp_path
) -> None:
    fake, backend, api = digitalocean
    home = tmp_path / "padlab-home"
    env = {"DIGITALOCEAN_TOKEN": DO_TOKEN, "REQUESTS_CA_BUNDLE": str(fake.ca_file)}
    padlab(home, "init", "do", "--provider", "digitalocean", "--api-url", fake.url,
           "--identity", str(testbed.identity), **env)  # fmt: skip

    card = padlab_json(home, "up", "do", "--password-stdin", input=PASSWORD + "\n", **env)
    [first_id] = backend.machine_ids()
    first = backend.machine(first_id)
    assert host_of(card) == first.ip and card["ssh"] == f"ssh root@{first.ip}"
    assert login_and_run(card) == "42"
    write_notebook(card)
    first_key = first.host_public_key()

    def down_and_check(droplet_id: str) -> str:
        """`padlab down`; the droplet and its machine are gone, one snapshot is left. Returns its id."""
        padlab(home, "down", "do", **env)
        assert api.get(f"/v2/droplets/{droplet_id}").status_code == 404
        status = padlab_json(home, "status", "do", **env)
        assert status["state"] == "stopped" and status["machine"]["state"] == "off"
        assert status["machine"]["billed_while_down"].startswith("snapshot padlab-do-"), status["machine"]
        eventually(lambda: not backend.machine_ids(), "the droplet's machine to be destroyed")
        snapshots = api.get("/v2/snapshots", params={"resource_type": "droplet"}).json()["snapshots"]
        [kept] = [str(s["id"]) for s in snapshots]  # the older one is deleted once the new one is verified
        eventually(lambda: backend.snapshot_ids() == [kept], "the older snapshot's disk copy to be freed")
        return kept

    def up_from(snapshot_id: str) -> tuple[dict[str, Any], str]:
        again = padlab_json(home, "up", "do", **env)
        assert not {"python-env", "mosh"} & changed(again)  # the snapshot's disk has them: no re-install
        creates = [r for r in fake.requests if r.method == "POST" and r.path == "/v2/droplets"]
        assert json.loads(creates[-1].body)["image"] == int(snapshot_id)
        [droplet_id] = backend.machine_ids()
        assert host_of(again) == backend.machine(droplet_id).ip
        assert read_notebook(again) == MARKER
        assert login_and_run(again) == "42"
        return again, droplet_id

    # Cycle 1: the new droplet gets the old droplet's address (held for it, so no other testbed user
    # takes it meanwhile), as a cloud may; its host keys are new, so padlab must forget the pinned
    # key rather than refuse the login.
    backend.hold_addresses = True
    first_snapshot = down_and_check(first_id)
    assert not first.dir.exists()
    _, second_id = up_from(first_snapshot)
    second = backend.machine(second_id)
    assert second_id != first_id
    assert second.ip == first.ip
    second_key = second.host_public_key()
    assert second_key != first_key and known_key(home, "padlab-do") == second_key

    # Cycle 2: someone else got the old address meanwhile, so the new droplet has a new one.
    # The card shows it and the certificate names it (login_and_run verifies the hostname).
    second_snapshot = down_and_check(second_id)
    squatter = make_client(index=backend.take_held_address())
    assert squatter.ip == second.ip
    third_card, third_id = up_from(second_snapshot)
    third = backend.machine(third_id)
    assert third.ip not in (second.ip, squatter.ip)
    assert third_card["url"] == f"https://{third.ip}:8888/" and third_card["ssh"] == f"ssh root@{third.ip}"
    assert known_key(home, "padlab-do") == third.host_public_key()
    # On the third droplet's own disk, in the home of the user Jupyter runs as (never root).
    assert (third.root / "home/padlab-jupyter/notebooks" / NOTEBOOK).is_file()


# -- A root-login image: Jupyter runs as padlab's unprivileged user -----------------------------

AGENT_TOKEN = "/var/lib/padlab/agent-do/digitalocean-token"
PROBE = f"""
import os, subprocess
try:
    print("read", open({AGENT_TOKEN!r}).read().strip())
except OSError as exc:
    print("refused", type(exc).__name__)
print("uid", os.getuid())
print("sudo", subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode)
"""


def test_digitalocean_notebooks_run_unprivileged_and_cannot_read_the_autostop_token(
    digitalocean, testbed, tmp_path
) -> None:
    fake, backend, _ = digitalocean
    home = tmp_path / "padlab-home"
    env = {"DIGITALOCEAN_TOKEN": DO_TOKEN, "REQUESTS_CA_BUNDLE": str(fake.ca_file)}
    padlab(home, "init", "do", "--provider", "digitalocean", "--api-url", fake.url,
           "--identity", str(testbed.identity), **env)  # fmt: skip
    padlab(home, "login", "digitalocean", "--autostop-token", "--key-stdin", "--api-url", fake.url,
           input=BOX_TOKEN + "\n", **env)  # fmt: skip

    card = padlab_json(home, "up", "do", "--password-stdin", input=PASSWORD + "\n", **env)
    [droplet_id] = backend.machine_ids()
    droplet = backend.machine(droplet_id)
    assert card["ssh"] == f"ssh root@{droplet.ip}"  # padlab itself still logs in as the image's root
    assert droplet.exec(["cat", AGENT_TOKEN]).stdout.strip() == BOX_TOKEN
    unit = droplet.exec("systemctl show padlab-do.service -p User").stdout.strip()
    assert unit == "User=padlab-jupyter"
    with NotebookClient(card["url"], card["ca_cert"]) as client:
        assert client.login(PASSWORD)
        kernel = client.start_kernel()
        try:
            result = client.execute(kernel, PROBE)
        finally:
            client.shutdown_kernel(kernel)
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    assert lines["refused"] == "PermissionError", result.stdout
    assert lines["uid"] != "0" and lines["sudo"] != "0"
    assert (droplet.root / "home/padlab-jupyter/notebooks").is_dir()
