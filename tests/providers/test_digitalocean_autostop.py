"""Autostop on DigitalOcean: the agent snapshots and deletes its own droplet, against the strict fake API.

The agent's code is the box's (stdlib urllib); the client's provider (pydo) then
finds the droplet gone and re-creates it from the agent's snapshot.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from padlab import workstation
from padlab.box import request
from padlab.box.autostop import agent_setup, do_stop
from padlab.box.autostop.activity import Signal
from padlab.box.report import BoxError, Report
from padlab.box.service import Layout
from padlab.box.system import Host
from padlab.profiles import Profile
from padlab.providers import credentials, digitalocean
from padlab.providers.digitalocean import DigitalOceanProvider
from tests.fakes import FakeDigitalOcean, MemoryBackend
from tests.helpers import one_line_error, padlab
from tests.providers.idle_agent import T0, agent_conf, check, key_file, record

TOKEN = "dop_v1_padlab_full_access_0123"
BOX_TOKEN = "dop_v1_box_scoped_only_4567"
# What the control panel makes of autostop's scopes: it adds the read scopes they depend on.
BOX_SCOPES = digitalocean.AUTOSTOP_SCOPES  # exactly what `padlab login --autostop-token` asks for


@dataclass
class FlakyBackend(MemoryBackend):
    """Snapshots fail while ``failures`` lasts: DigitalOcean then reports the action as errored."""

    failures: int = 0

    def snapshot(self, machine_id: str, snapshot_id: str) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("snapshot failed in the fake")
        super().snapshot(machine_id, snapshot_id)


@pytest.fixture
def backend() -> FlakyBackend:
    return FlakyBackend(boot_seconds=0.05, stop_seconds=0.05, snapshot_seconds=0.05)


@pytest.fixture
def fake(backend: FlakyBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDigitalOcean]:
    with FakeDigitalOcean(
        token=TOKEN, backend=backend, tls=True, scoped_tokens={BOX_TOKEN: BOX_SCOPES}
    ) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))  # pydo, on the client
        monkeypatch.setenv("SSL_CERT_FILE", str(fake.ca_file))  # urllib, on the box
        yield fake
        fake.errors.clear()  # the injected snapshot failures
        assert fake.unlisted == [], "calls that are not in padlab.providers.do_api.OPERATIONS"


@pytest.fixture
def provider(home: Path, fake: FakeDigitalOcean, ssh_key: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", TOKEN)
    opts = {"api_url": fake.url, "region": "tor1", "machine_type": "gpu-4000adax1-20gb"}
    return DigitalOceanProvider(Profile(name="do", provider="digitalocean", options=opts).validate())


@pytest.fixture
def conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: DigitalOceanProvider) -> dict:
    """An agent config for the droplet the client just created; probes and Jupyter are the test's."""
    droplet = provider.start_machine(print)
    monkeypatch.setattr(do_stop, "POLL_EVERY", 0.02)
    part = {
        "droplet_id": droplet.id,
        "api_url": provider.options["api_url"],
        "snapshot_prefix": provider.resource_name(),
        "token_file": key_file(tmp_path, "digitalocean-token", BOX_TOKEN),
    }
    return agent_conf(tmp_path, monkeypatch, do_stop.ACTION, digitalocean=part)


def requests(fake: FakeDigitalOcean, method: str, path: str) -> list:
    return [r for r in fake.requests if r.method == method and r.path.startswith(path)]


def box_files(conf: dict) -> str:
    return "".join(Path(conf["dir"], n).read_text() for n in os.listdir(conf["dir"]))


def test_idle_droplet_is_snapshotted_verified_then_deleted_and_up_recreates_it(
    conf: dict,
    fake: FakeDigitalOcean,
    provider: DigitalOceanProvider,
    backend: FlakyBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    droplet = conf["digitalocean"]["droplet_id"]
    assert check(conf, monkeypatch, T0 + 301)["action_taken"] == "warn"
    assert check(conf, monkeypatch, T0 + 601)["action_taken"] == "stop"
    done = record(conf)
    assert done["done"] and done["result"].endswith(f"droplet {droplet} deleted: billing ended")
    assert conf["calls"] == ["jupyter stopped"]  # notebooks flushed before the snapshot; never a power-off
    order = [(r.method, r.path) for r in fake.requests]
    snapshot_post = [r for r in requests(fake, "POST", f"/v2/droplets/{droplet}/actions")]
    assert [json.loads(r.body)["type"] for r in snapshot_post] == ["snapshot"]
    assert order.index(("GET", f"/v2/snapshots/{done['snapshot_id']}")) < order.index(
        ("DELETE", f"/v2/droplets/{droplet}")
    )
    # The box used its own token, and it is nowhere in what the agent wrote.
    assert all(r.headers["authorization"] == f"Bearer {BOX_TOKEN}" for r in snapshot_post)
    assert BOX_TOKEN not in box_files(conf)

    # The client sees what `down` leaves: no droplet, the agent's snapshot as the newest.
    machine = provider.describe()
    assert machine.state == "off" and machine.extra["snapshot_name"] == done["snapshot"]
    out: dict = {"state": "stopped"}
    st = {"phase": "running", "action_at": time.time() - 60}  # the last `up`, before the stop
    workstation.annotate(out, provider.profile, provider, machine, st)
    assert out["stop_reason"].startswith("by autostop at ") and out["stop_reason"].endswith(
        f"(snapshot {done['snapshot']}, droplet deleted)"
    )
    again = provider.start_machine(print)  # what `padlab up --skip-setup` does
    assert again.id != droplet
    assert backend.machines[again.id].spec["snapshot_id"] == done["snapshot_id"]
    # The next `down` verifies its own snapshot, then removes the agent's older one.
    provider.stop(print)
    [kept] = provider.snapshots()
    assert str(kept["id"]) != done["snapshot_id"]


def test_errored_snapshot_keeps_the_droplet_and_the_next_check_retries(
    conf: dict, fake: FakeDigitalOcean, backend: FlakyBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    droplet = conf["digitalocean"]["droplet_id"]
    backend.failures = 1
    check(conf, monkeypatch, T0 + 301)
    assert check(conf, monkeypatch, T0 + 601)["action_taken"] == "stop"
    failed = record(conf)
    assert failed["result"].startswith("FAILED: DigitalOcean reports snapshot")
    assert "still billed" in failed["result"] and not failed.get("done")
    assert requests(fake, "DELETE", "/v2/droplets") == []
    assert "FAILED" in Path(conf["dir"], "agent.log").read_text()

    check(conf, monkeypatch, T0 + 661)
    assert record(conf)["done"] and len(requests(fake, "DELETE", f"/v2/droplets/{droplet}")) == 1
    assert BOX_TOKEN not in box_files(conf)


@pytest.mark.parametrize(("method", "path"), [("POST", "/v2/droplets/"), ("DELETE", "/v2/droplets/")])
def test_api_errors_fail_the_step_and_a_later_check_finishes(
    conf: dict, fake: FakeDigitalOcean, monkeypatch: pytest.MonkeyPatch, method: str, path: str
) -> None:
    droplet = conf["digitalocean"]["droplet_id"]
    fake.fail_next(503, method=method, path=path)
    check(conf, monkeypatch, T0 + 301)
    check(conf, monkeypatch, T0 + 601)
    failed = record(conf)
    assert failed["result"].startswith("FAILED: DigitalOcean answered HTTP 503") and not failed.get("done")
    assert [r.status for r in requests(fake, "DELETE", "/v2/droplets")] == (
        [503] if method == "DELETE" else []
    )
    check(conf, monkeypatch, T0 + 661)
    assert record(conf)["done"]
    # A failed delete resumes from the verified snapshot: still exactly one snapshot taken.
    assert len([r for r in requests(fake, "POST", f"/v2/droplets/{droplet}/actions")]) == 1 + (
        method == "POST"
    )
    assert len(fake._snapshots) == 1


def test_a_rate_limited_step_says_when_the_limit_lifts(
    conf: dict, fake: FakeDigitalOcean, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.fail_next(429, method="POST", path="/v2/droplets/")  # the hourly limit: no retry-after
    check(conf, monkeypatch, T0 + 301)
    check(conf, monkeypatch, T0 + 601)
    failed = record(conf)["result"]
    assert "HTTP 429" in failed and re.search(r"hourly API rate limit used up until \d\d:\d\d UTC", failed)
    fake.fail_next(429, method="GET", path="/v2/droplets/", retry_after=30)  # the burst limit
    check(conf, monkeypatch, T0 + 661)
    assert "burst rate limit: retry after 30 s" in record(conf)["result"]
    check(conf, monkeypatch, T0 + 721)
    assert record(conf)["done"]


def test_use_during_the_snapshot_cancels_the_delete(
    conf: dict, fake: FakeDigitalOcean, backend: FlakyBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.snapshot_seconds = 0.5
    monkeypatch.setattr(do_stop, "POLL_BUDGET", 0.0)
    check(conf, monkeypatch, T0 + 301)
    check(conf, monkeypatch, T0 + 601)
    assert "in progress" in record(conf)["result"]
    check(conf, monkeypatch, T0 + 661, Signal("ssh", "session me@pts/0", active=True))
    cancelled = record(conf)
    assert cancelled["cancelled"] and "ssh: session me@pts/0" in cancelled["result"]
    assert requests(fake, "DELETE", "/v2/droplets") == []


def test_a_record_restored_from_the_snapshot_is_settled_on_the_new_droplet(
    conf: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path(conf["dir"], "stopped.json").write_text(
        json.dumps({"at": T0 - 90000, "action": do_stop.ACTION, "droplet_id": "1", "snapshot": "padlab-do-5"})
    )
    check(conf, monkeypatch, T0 + 60, Signal("ssh", "session me@pts/0", active=True))
    settled = record(conf)
    assert settled["done"] and "droplet 1 deleted" in settled["result"]


# -- the client: the token, the request, the box's copy ---------------------------------------


def test_autostop_without_the_box_token_is_refused_with_how_to_add_it(home: Path) -> None:
    padlab(home, "init", "gpu", "--provider", "digitalocean", "--api-url", "https://127.0.0.1:9")
    line = one_line_error(padlab(home, "autostop", "gpu", "45m", check=False))
    assert "still billed" in line and "padlab login digitalocean --autostop-token" in line
    assert "droplet:delete" in line


def test_login_stores_the_box_token_but_not_padlabs_own(home: Path, fake: FakeDigitalOcean) -> None:
    env = {"DIGITALOCEAN_TOKEN": TOKEN, "REQUESTS_CA_BUNDLE": str(fake.ca_file)}
    args = ("login", "digitalocean", "--autostop-token", "--key-stdin", "--api-url", fake.url)
    same = padlab(home, *args, input=TOKEN + "\n", check=False, **env)
    assert "the box must not hold it" in one_line_error(same) and TOKEN not in same.stderr
    padlab(home, *args, input=BOX_TOKEN + "\n", **env)
    path = home / "credentials" / digitalocean.AUTOSTOP_CREDENTIAL
    assert path.read_text().strip() == BOX_TOKEN and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_login_refuses_a_full_access_token_by_reading_only(home: Path, fake: FakeDigitalOcean) -> None:
    wide = "dop_v1_another_full_access_89ab"  # full access, but not the token padlab itself uses
    with FakeDigitalOcean(token=wide, tls=True, scoped_tokens={BOX_TOKEN: BOX_SCOPES}) as other:
        env = {"DIGITALOCEAN_TOKEN": TOKEN, "REQUESTS_CA_BUNDLE": str(other.ca_file)}
        args = ("login", "digitalocean", "--autostop-token", "--key-stdin", "--api-url", other.url)
        refused = padlab(home, *args, input=wide + "\n", check=False, **env)
        assert "may read billing" in one_line_error(refused) and wide not in refused.stderr
        assert not (home / "credentials" / digitalocean.AUTOSTOP_CREDENTIAL).exists()
        padlab(home, *args, input=BOX_TOKEN + "\n", **env)
        assert {r.method for r in other.requests} == {"GET"}  # nothing on the account changed
        assert other.unlisted == []


def test_login_checks_the_stops_scopes_and_names_those_no_read_can_show(
    home: Path, fake: FakeDigitalOcean, provider: DigitalOceanProvider
) -> None:
    env = {"DIGITALOCEAN_TOKEN": TOKEN, "REQUESTS_CA_BUNDLE": str(fake.ca_file)}
    args = ("login", "digitalocean", "--autostop-token", "--key-stdin", "--api-url", fake.url)
    done = padlab(home, *args, input=BOX_TOKEN + "\n", **env)
    assert "verified by reading: droplet:read, snapshot:read;" in done.stdout
    for scope in ("droplet:update", "image:create", "droplet:delete", "block_storage_snapshot:read"):
        assert scope in done.stdout.split("not verified:")[1]
    provider.start_machine(print)
    provider.stop(print)  # a snapshot the check can look up: block_storage_snapshot:read is verified
    again = padlab(home, *args, input=BOX_TOKEN + "\n", **env)
    assert "snapshot:read, block_storage_snapshot:read;" in again.stdout
    assert {r.method for r in fake.requests if BOX_TOKEN in r.headers.get("authorization", "")} == {"GET"}

    narrow = "dop_v1_no_snapshot_read_0000"
    fake.scoped_tokens[narrow] = frozenset(set(BOX_SCOPES) - {"snapshot:read"})
    refused = padlab(home, *args, input=narrow + "\n", check=False, **env)
    assert "snapshot:read" in one_line_error(refused) and narrow not in refused.stderr


def test_the_request_carries_the_stop_and_the_box_keeps_the_token_0600(
    provider: DigitalOceanProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials.store(digitalocean.AUTOSTOP_CREDENTIAL, BOX_TOKEN)
    provider.profile.autostop = "45m"
    machine = provider.start_machine(print)
    req = workstation.request_for(provider.profile, provider, "autostop", machine)
    fields = req["autostop"]
    assert fields["action"] == do_stop.ACTION and fields["idle_s"] == 2700
    assert fields["digitalocean"] == {
        "droplet_id": machine.id,
        "api_url": provider.options["api_url"],
        "snapshot_prefix": "padlab-do",
        "token": BOX_TOKEN,
    }
    assert (
        "digitalocean"
        not in workstation.request_for(provider.profile, provider, "status", machine)["autostop"]
    )

    monkeypatch.setattr(agent_setup, "scheduler", lambda paths: None)  # no crontab or timer from a test
    layout = Layout("do", str(tmp_path / "box"), str(tmp_path / "etc"), getpass.getuser(), False)
    req = request.parse(dict(req, port=8888, listen="127.0.0.1"))
    fields = req["autostop"]
    agent_setup.install(Host(sudo=False), layout, req, b"", "none", Report())
    paths = agent_setup.AgentLayout(layout)
    token = Path(paths.do_token)
    assert token.read_text().strip() == BOX_TOKEN and stat.S_IMODE(token.stat().st_mode) == 0o600
    config = Path(paths.config).read_text()
    assert BOX_TOKEN not in config and json.loads(config)["digitalocean"]["token_file"] == paths.do_token

    off = dict(req, autostop=dict(fields, idle_s=None))
    agent_setup.install(Host(sudo=False), layout, off, b"", "none", Report())
    assert not token.exists()  # autostop off: the token leaves the box
    with pytest.raises(BoxError, match="needs its own API token"):
        agent_setup.install(
            Host(sudo=False),
            layout,
            dict(req, autostop={**fields, "digitalocean": {}}),
            b"",
            "none",
            Report(),
        )
