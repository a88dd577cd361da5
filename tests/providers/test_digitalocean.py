"""DigitalOcean provider against the strict fake v2 API: the snapshot → verify → delete → recreate cycle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from padlab import state
from padlab.errors import PadlabError
from padlab.profiles import Profile
from padlab.providers import retry
from padlab.providers.digitalocean import DigitalOceanProvider, DoError, _NotFound
from tests.fakes import FakeDigitalOcean, MemoryBackend

TOKEN = "dop_v1_secret_token_9a8b7c6d5e4f"


@pytest.fixture
def backend() -> MemoryBackend:
    return MemoryBackend(boot_seconds=0.05, stop_seconds=0.05, snapshot_seconds=0.05)


@pytest.fixture
def fake(backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDigitalOcean]:
    with FakeDigitalOcean(token=TOKEN, backend=backend, tls=True) as fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
        yield fake
        assert fake.unlisted == [], "calls that are not in padlab.providers.do_api.OPERATIONS"


@pytest.fixture
def provider(
    home: Path, fake: FakeDigitalOcean, ssh_key: Path, monkeypatch: pytest.MonkeyPatch
) -> DigitalOceanProvider:
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", TOKEN)
    return make(fake)


def make(fake: FakeDigitalOcean, **options: object) -> DigitalOceanProvider:
    opts = {"api_url": fake.url, "region": "tor1", "machine_type": "gpu-4000adax1-20gb", **options}
    return DigitalOceanProvider(Profile(name="do", provider="digitalocean", options=opts).validate())


def calls(fake: FakeDigitalOcean, method: str, path: str) -> list:
    return [r for r in fake.requests if r.method == method and r.path.startswith(path)]


def snapshot_names(provider: DigitalOceanProvider) -> list[str]:
    return [s["name"] for s in provider.snapshots()]


def test_up_creates_a_tagged_gpu_droplet_once(provider: DigitalOceanProvider, fake: FakeDigitalOcean) -> None:
    machine = provider.start_machine(print)
    assert machine.state == "running" and machine.host
    assert machine.price_per_hour == 0.76 and machine.price_source == "DigitalOcean API (size price_hourly)"
    assert "even powered off" in machine.billed_while_down
    assert machine.down_usd_per_hour == 0.76  # a powered-off droplet is billed in full
    again = provider.start_machine(print)
    assert again.id == machine.id
    creates = calls(fake, "POST", "/v2/droplets")
    assert len([c for c in creates if c.path == "/v2/droplets"]) == 1
    body = json.loads(creates[0].body)
    assert body["tags"] == ["padlab:do"] and body["name"] == "padlab-do" and len(body["ssh_keys"]) == 1
    # GPU droplets are invisible to tag_name listings; padlab found it through type=gpus.
    assert any(r.query.get("type") == ["gpus"] for r in calls(fake, "GET", "/v2/droplets"))


def test_down_snapshots_verifies_then_deletes_and_up_recreates(
    provider: DigitalOceanProvider, fake: FakeDigitalOcean, backend: MemoryBackend
) -> None:
    first = provider.start_machine(print)
    stopped = provider.stop(print)
    assert stopped.state == "off" and stopped.id is None
    assert stopped.billed_while_down.startswith("snapshot padlab-do-")
    gb = float(stopped.billed_while_down.split(": ")[1].split(" GB")[0])
    assert gb > 0 and stopped.down_usd_per_hour == pytest.approx(gb * 0.06 / 730)
    assert provider._get(first.id) is None
    [snap] = provider.snapshots()
    # Shut down cleanly (not a hard power-off) before the snapshot; verify before the delete.
    actions = [json.loads(r.body)["type"] for r in calls(fake, "POST", f"/v2/droplets/{first.id}/actions")]
    assert actions == ["shutdown", "snapshot"]
    order = [(r.method, r.path) for r in fake.requests]
    assert order.index(("GET", f"/v2/snapshots/{snap['id']}")) < order.index(
        ("DELETE", f"/v2/droplets/{first.id}")
    )

    second = provider.start_machine(print)
    assert second.state == "running" and second.id != first.id
    assert backend.machines[second.id].spec["snapshot_id"] == str(snap["id"])


def test_the_previous_snapshot_goes_only_after_the_new_one_is_verified(
    provider: DigitalOceanProvider, fake: FakeDigitalOcean, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider.start_machine(print)
    provider.stop(print)
    [old] = snapshot_names(provider)
    provider.start_machine(print)
    monkeypatch.setattr("time.time", lambda: 4_000_000_000.0)  # a distinct, later snapshot name
    provider.stop(print)
    [new] = snapshot_names(provider)
    assert new != old
    order = [(r.method, r.path) for r in fake.requests]
    new_id = str(provider.memo()["snapshot_id"])
    old_delete = next(i for i, (m, p) in enumerate(order) if m == "DELETE" and p.startswith("/v2/snapshots/"))
    assert order.index(("GET", f"/v2/snapshots/{new_id}")) < old_delete


def test_interrupted_down_resumes_without_a_second_snapshot(
    provider: DigitalOceanProvider, fake: FakeDigitalOcean, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider.start_machine(print)
    real_wait = retry.wait_for

    def interrupt_on_snapshot(check, what, *args, **kwargs):  # noqa: ANN001
        if what.startswith("waiting for snapshot"):
            raise KeyboardInterrupt
        return real_wait(check, what, *args, **kwargs)

    monkeypatch.setattr(retry, "wait_for", interrupt_on_snapshot)
    with pytest.raises(KeyboardInterrupt):
        provider.stop(print)
    assert state.load("do")["cloud"]["pending_snapshot"].startswith("padlab-do-")
    monkeypatch.setattr(retry, "wait_for", real_wait)
    assert provider.stop(print).state == "off"
    snapshot_posts = [r for r in calls(fake, "POST", "/v2/droplets/") if b"snapshot" in r.body]
    assert len(snapshot_posts) == 1
    assert len(provider.snapshots()) == 1


def test_transient_errors_are_retried(provider: DigitalOceanProvider, fake: FakeDigitalOcean) -> None:
    fake.fail_next(503, count=2, method="POST", path="/v2/droplets")
    fake.fail_next(429, count=2, method="GET", retry_after=0)
    assert provider.start_machine(print).state == "running"
    assert len(provider._list("list", provider.client.droplets.list, "droplets", type="gpus")) == 1


def test_bad_token_names_its_source_not_its_value(
    home: Path, fake: FakeDigitalOcean, ssh_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "dop_v1_wrong_0000")
    with pytest.raises(PadlabError) as err:
        make(fake).describe()
    assert "$DIGITALOCEAN_TOKEN" in str(err.value) and "dop_v1_wrong_0000" not in str(err.value)


def test_missing_token_says_where_padlab_looked(home: Path, fake: FakeDigitalOcean) -> None:
    with pytest.raises(PadlabError) as err:
        make(fake).describe()
    assert "$DIGITALOCEAN_TOKEN" in str(err.value) and "doctl" in str(err.value)


def test_doctl_config_token_is_used(home: Path, fake: FakeDigitalOcean, tmp_path: Path) -> None:
    config = tmp_path / "user-home" / ".config" / "doctl" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(f"access-token: {TOKEN}\ncontext: default\n")
    assert make(fake).describe().state == "missing"


def test_destroy_deletes_droplet_and_snapshots(provider: DigitalOceanProvider) -> None:
    provider.start_machine(print)
    provider.stop(print)
    provider.start_machine(print)
    provider.destroy(print)
    assert provider.snapshots() == []
    assert provider.describe().state == "missing"


def test_billing_reads_the_accounts_figures_for_padlabs_droplets(
    provider: DigitalOceanProvider, fake: FakeDigitalOcean
) -> None:
    machine = provider.start_machine(print)
    bill = provider.billing({str(machine.id)})
    assert bill["scope"].startswith("the whole DigitalOcean account")
    [item] = bill["items"]
    assert item["resource_id"] == str(machine.id) and item["description"].startswith("padlab-do")
    assert provider.billing({"1"})["items"] == []  # another droplet's items are not padlab's
    assert bill["provider_usd"] >= bill["items_usd"] >= 0


# -- what DigitalOcean's API description says, that a guess at it got wrong ---------------------


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The retry pauses padlab takes, recorded instead of slept."""
    taken: list[float] = []
    monkeypatch.setattr(retry, "sleep", taken.append)
    return taken


def test_a_burst_429_waits_as_long_as_retry_after_says(
    provider: DigitalOceanProvider, fake: FakeDigitalOcean, pauses: list[float]
) -> None:
    fake.fail_next(429, method="GET", path="/v2/droplets", retry_after=7)
    assert provider.describe().state == "missing"
    assert max(pauses) >= 7


def test_the_hourly_limit_stops_at_once_and_says_when_it_resets(
    provider: DigitalOceanProvider, fake: FakeDigitalOcean, pauses: list[float]
) -> None:
    fake.fail_next(429, count=50, method="GET")  # no retry-after: the hourly limit (ratelimit-reset)
    with pytest.raises(PadlabError, match=r"hourly API rate limit .* until \d\d:\d\d") as err:
        provider.describe()
    assert "wait until" in err.value.fix
    assert [r.status for r in fake.requests] == [429] and pauses == []


def test_an_hourly_limit_that_resets_soon_is_waited_out(
    provider: DigitalOceanProvider, fake: FakeDigitalOcean, pauses: list[float]
) -> None:
    fake.rate_limit_reset_s = 30
    fake.fail_next(429, method="GET")
    assert provider.describe().state == "missing"
    assert 29 <= max(pauses) <= retry.RATE_WAIT_MAX


@pytest.mark.parametrize("method", ["get", "delete"])
def test_snapshot_errors_pydo_returns_as_results_are_refusals(
    provider: DigitalOceanProvider, method: str
) -> None:
    """pydo hands back snapshots.get/delete's 400 and 404 bodies instead of raising them."""
    from tests.fakes import do_catalog

    image = str(next(iter(do_catalog.IMAGES.values())).id)  # an image, not a snapshot: 400
    fn = getattr(provider.client.snapshots, method)
    with pytest.raises(DoError, match="HTTP 400.*not a snapshot") as err:
        provider.call(f"{method} snapshot {image}", fn, image)
    assert err.value.status == 400
    with pytest.raises(_NotFound):
        provider.call(f"{method} snapshot 999", fn, "999")


def test_a_snapshot_that_is_not_one_is_a_clear_error_not_a_key_error(
    provider: DigitalOceanProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``_snapshot`` verifies the id the droplet's listing gave; a 400 there ends the down in one line."""
    from tests.fakes import do_catalog

    image = next(iter(do_catalog.IMAGES.values())).id
    machine = provider.start_machine(print)
    monkeypatch.setattr(provider, "_droplet_snapshot", lambda droplet_id, name: {"id": image, "name": name})
    with pytest.raises(PadlabError, match="not a snapshot"):
        provider._snapshot(str(machine.id), print)


def test_pydo_has_the_type_filter_padlab_lists_gpu_droplets_with() -> None:
    """``droplets.list(type=...)`` first exists in pydo 0.6.0 (its generated build_droplets_list_request);
    older versions pass ``type`` down to the HTTP session, so the floor must be 0.6.0."""
    import inspect
    import re

    from pydo.operations import _operations

    assert "type" in inspect.signature(_operations.build_droplets_list_request).parameters
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]

    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    pins = [*project["optional-dependencies"]["digitalocean"], *project["optional-dependencies"]["test"]]
    floors = [re.fullmatch(r"pydo>=([\d.]+)", pin) for pin in pins if pin.startswith("pydo")]
    assert floors and all(m and tuple(map(int, m[1].split("."))) >= (0, 6) for m in floors), floors
