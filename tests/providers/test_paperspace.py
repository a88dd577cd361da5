"""Paperspace provider against the strict fake v1 API: find-or-create, start/stop, retries, credentials."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from padlab import state
from padlab.errors import PadlabError
from padlab.profiles import Profile
from padlab.providers.paperspace import PaperspaceProvider
from tests.fakes import FakePaperspace, MemoryBackend

KEY = "ps-secret-key-4f9a8b7c6d5e"


@pytest.fixture
def fake() -> Iterator[FakePaperspace]:
    with FakePaperspace(api_key=KEY, backend=MemoryBackend(boot_seconds=0.05, stop_seconds=0.05)) as fake:
        yield fake


@pytest.fixture
def provider(home: Path, fake: FakePaperspace, monkeypatch: pytest.MonkeyPatch) -> PaperspaceProvider:
    monkeypatch.setenv("PAPERSPACE_API_KEY", KEY)
    return make(fake)


def make(fake: FakePaperspace, name: str = "ps", **options: object) -> PaperspaceProvider:
    profile = Profile(name=name, provider="paperspace", options={"api_url": fake.url, **options})
    return PaperspaceProvider(profile.validate())


def posts(fake: FakePaperspace) -> int:
    return sum(1 for r in fake.requests if r.method == "POST")


def fake_machines(fake: FakePaperspace) -> list[dict]:
    headers = {"Authorization": f"Bearer {KEY}"}
    return httpx.get(f"{fake.url}/machines", headers=headers).json()["items"]


def test_up_creates_once_then_reuses(provider: PaperspaceProvider, fake: FakePaperspace) -> None:
    machine = provider.start_machine(print)
    assert machine.state == "running" and machine.host
    assert state.load("ps")["cloud"]["machine_id"] == machine.id
    assert "create_attempt" not in state.load("ps")["cloud"]
    again = provider.start_machine(print)
    assert again.id == machine.id
    assert posts(fake) == 1
    body = json.loads(next(r for r in fake.requests if r.method == "POST").body)
    assert body["name"] == "padlab-ps" and body["machineType"] == "A4000"


def test_price_and_what_down_costs(provider: PaperspaceProvider) -> None:
    machine = provider.start_machine(print)
    assert machine.price_per_hour == 0.76
    assert machine.price_source == "Paperspace API (usageRate)"
    assert machine.billed_while_down.startswith("disk 50 GB ($2.00/month)")
    assert machine.down_usd_per_hour == pytest.approx(2.00 / 730)  # what the ledger counts while off
    assert make_with_price(provider).describe().price_source == "profile (--price)"


def make_with_price(provider: PaperspaceProvider) -> PaperspaceProvider:
    profile = Profile(name="ps", provider="paperspace", options={**provider.options, "price": 0.5})
    return PaperspaceProvider(profile)


def test_stop_then_start_gets_a_fresh_address(provider: PaperspaceProvider) -> None:
    first = provider.start_machine(print)
    stopped = provider.stop(print)
    assert stopped.state == "off" and stopped.host is None
    second = provider.start_machine(print)
    assert second.id == first.id
    assert second.host and second.host != first.host


def test_guest_poweroff_reads_as_off(provider: PaperspaceProvider, fake: FakePaperspace) -> None:
    machine = provider.start_machine(print)
    fake.backend.guest_poweroff(machine.id)
    assert provider.describe().state == "off"
    assert provider.start_machine(print).state == "running"


def test_interrupted_create_is_adopted_not_duplicated(
    provider: PaperspaceProvider, fake: FakePaperspace
) -> None:
    """Ctrl-C after the POST but before padlab recorded the id: the next up finds it by name."""
    provider.attempt_id()
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {
        "name": "padlab-ps",
        "machineType": "A4000",
        "templateId": "t0nspur5",
        "diskSize": 50,
        "region": "ny2",
    }
    created = httpx.post(f"{fake.url}/machines", json=body, headers=headers).json()["data"]
    fake.clear_requests()
    machine = provider.start_machine(print)
    assert machine.id == created["id"]
    assert posts(fake) == 0
    assert len(fake_machines(fake)) == 1


def test_transient_errors_are_retried(provider: PaperspaceProvider, fake: FakePaperspace) -> None:
    fake.fail_next(503, count=2, method="POST")
    fake.fail_next(429, count=2, method="GET", retry_after=0)
    machine = provider.start_machine(print)
    assert machine.state == "running"
    assert len(fake_machines(fake)) == 1
    statuses = [r.status for r in fake.requests]
    assert statuses.count(503) == 2 and statuses.count(429) == 2


def test_endless_throttling_ends_in_one_clear_line(
    provider: PaperspaceProvider, fake: FakePaperspace
) -> None:
    fake.fail_next(429, count=100)
    with pytest.raises(PadlabError, match="kept failing.*HTTP 429.*wait a minute"):
        provider.describe()


def test_bad_key_names_its_source_not_its_value(
    home: Path, fake: FakePaperspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERSPACE_API_KEY", "wrong-key-123456")
    with pytest.raises(PadlabError) as err:
        make(fake).describe()
    assert "$PAPERSPACE_API_KEY" in str(err.value) and "rejected" in str(err.value)
    assert "wrong-key-123456" not in str(err.value)


def test_missing_key_says_where_padlab_looked(home: Path, fake: FakePaperspace) -> None:
    with pytest.raises(PadlabError) as err:
        make(fake).describe()
    message = str(err.value)
    assert "$PAPERSPACE_API_KEY" in message and str(home / "credentials" / "paperspace") in message
    assert "padlab login paperspace" in message


def test_attached_machine_that_is_gone(provider: PaperspaceProvider, fake: FakePaperspace) -> None:
    with pytest.raises(PadlabError, match="has no machine psnope.*--machine-id"):
        make(fake, machine_id="psnope").describe()


def test_two_machines_with_the_profile_name_are_not_guessed(
    provider: PaperspaceProvider, fake: FakePaperspace
) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {
        "name": "padlab-ps",
        "machineType": "C5",
        "templateId": "t0nspur5",
        "diskSize": 50,
        "region": "ny2",
    }
    for _ in range(2):
        httpx.post(f"{fake.url}/machines", json=body, headers=headers)
    with pytest.raises(PadlabError, match="several Paperspace machines"):
        provider.describe()


def test_destroy_deletes_and_forgets(provider: PaperspaceProvider, fake: FakePaperspace) -> None:
    provider.start_machine(print)
    provider.destroy(print)
    assert fake_machines(fake) == []
    assert state.load("ps")["cloud"] == {}
    assert provider.describe().state == "missing"


def test_down_powers_off_a_machine_whose_jupyter_cannot_be_stopped_first(
    home: Path, fake: FakePaperspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The box's clean Jupyter stop failing (here: nothing answers ssh) never keeps a billed machine on."""
    import ipaddress

    from padlab import workstation
    from tests.fakes import backend

    # Loopback addresses where no sshd answers: the ssh call fails at once, and no traffic leaves.
    monkeypatch.setattr(backend, "TEST_NET", ipaddress.IPv4Network("127.77.0.0/16"))
    monkeypatch.setenv("PAPERSPACE_API_KEY", KEY)
    provider = make(fake)
    machine = provider.start_machine(print)
    assert machine.state == "running" and machine.host.startswith("127.77.")
    stages: list[str] = []
    out = workstation.down(provider.profile, on_stage=stages.append)
    assert provider.describe().state == "off"
    assert out["state"] == "stopped" and state.load("ps")["phase"] == "stopped"
    [warning] = out["warnings"]
    assert warning.startswith("Jupyter was not stopped cleanly first (") and "powered off anyway" in warning
    assert "stopping the machine" in stages


# -- the panel's list: Paperspace's own ------------------------------------------------------------


def test_the_catalog_is_paperspaces_own_list_once_a_key_is_there(
    provider: PaperspaceProvider, fake: FakePaperspace
) -> None:
    """The machine types padlab's template lists as available (not padlab's table), each with the
    regions Paperspace has capacity in now."""
    from padlab import onboard
    from padlab.providers.paperspace import CATALOG_SOURCE

    fake.availability["H100"] = set()
    cat = onboard.catalog("paperspace", live=True, api_url=fake.url)
    assert cat["live_error"] is None and cat["price_source"] == CATALOG_SOURCE
    types = {m["name"]: m for m in cat["machine_types"]}
    assert set(types) == {"C5", "A4000", "A6000", "A100-80G", "H100"}  # P4000: not on t0nspur5
    assert cat["machine_types"][0]["name"] == "A4000"  # the default first
    assert types["A6000"]["regions"] == ["ny2", "ca1"] and types["A100-80G"]["regions"] == ["ny2"]
    assert types["H100"]["regions"] == [] and types["C5"]["regions"] == ["ny2", "ca1", "ams1"]
    assert types["A4000"]["price_per_hour"] == 0.76 and types["C5"]["price_per_hour"] is None
    assert cat["regions"] == ["ny2", "ca1", "ams1"]
    asked = {r.path for r in fake.requests}
    assert asked == {"/v1/os-templates", "/v1/machine-availability"}


def test_the_catalog_falls_back_to_padlabs_list_in_one_line_when_paperspace_fails(
    home: Path, fake: FakePaperspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from padlab import onboard

    monkeypatch.setenv("PAPERSPACE_API_KEY", "not-the-key")
    cat = onboard.catalog("paperspace", live=True, api_url=fake.url)
    assert cat["live_error"].startswith("Paperspace's own list could not be read (")
    assert "padlab's list instead" in cat["live_error"] and "not-the-key" not in cat["live_error"]
    assert "bundled table" in cat["price_source"] and "Paperspace's API" not in cat["price_source"]
    assert {"name": "P4000", "price_per_hour": 0.51} in cat["machine_types"]  # the table's
    monkeypatch.setenv("PAPERSPACE_API_KEY", KEY)
    fake.fail_next(503, count=50, path="/machine-availability")
    assert "could not be read" in onboard.catalog("paperspace", live=True, api_url=fake.url)["live_error"]
