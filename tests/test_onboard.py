"""onboard.py: what `padlab init`, `padlab login` and `padlab destroy` share with the panel."""

from __future__ import annotations

import pytest

from padlab import onboard, profiles, registry
from padlab.errors import PadlabError
from tests.helpers import padlab


def test_create_profile_saves_what_init_saves(home):
    profile, path = onboard.create_profile(
        "gpu",
        "paperspace",
        cloud={"machine_type": "A6000", "region": "ams1"},
        autostop="45m",
        clone_url="https://x.example/c.git",
    )
    assert path.endswith("gpu.toml")
    again = profiles.load("gpu")
    assert again.options == {"machine_type": "A6000", "region": "ams1"}
    assert (again.autostop, again.clone) == ("45m", "https://x.example/c.git")
    assert profile.name == "gpu"


@pytest.mark.parametrize(
    ("args", "fields", "message"),
    [
        (("", "local"), {}, "init needs a profile name"),
        (("x", None), {}, "init needs a provider"),
        (("x", "local"), {"autostop": "soon"}, "as a duration"),
        (("x", "local"), {"max_uptime": "2d3"}, "duration"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_saved(home, args, fields, message):
    with pytest.raises(PadlabError, match=message) as caught:
        onboard.create_profile(*args, **fields)
    assert caught.value.fix
    assert profiles.names() == []


def test_an_existing_profile_is_kept_unless_forced(home):
    onboard.create_profile("lab", "local", port=18001)
    with pytest.raises(PadlabError, match="already exists"):
        onboard.create_profile("lab", "local", port=18002)
    assert profiles.load("lab").port == 18001


def test_the_cli_init_is_the_same_function(home):
    padlab(home, "init", "pod", "--provider", "runpod", "--machine-type", "NVIDIA A40", "--region", "EU-RO-1")
    assert profiles.load("pod").options == {"machine_type": "NVIDIA A40", "region": "EU-RO-1"}
    failed = padlab(home, "init", "pod", "--provider", "runpod", check=False)
    assert failed.returncode != 0 and "already exists" in failed.stderr and "Traceback" not in failed.stderr


def test_catalog_has_every_clouds_lists_and_defaults():
    for name in registry.CLOUDS:
        cat = onboard.catalog(name)
        assert cat["machine_types"] and cat["regions"], name
        assert cat["default_region"] in (None, *cat["regions"]), name  # None: the SDK's (AWS_REGION)
        assert cat["machine_types"][0]["name"] == cat["default_machine_type"], name
    ps = onboard.catalog("paperspace")
    assert {"name": "A4000", "price_per_hour": 0.76} in ps["machine_types"]
    assert ps["default_machine_type"] == "A4000"
    assert onboard.catalog("local")["regions"] == []


def test_key_status_says_stored_or_not_and_never_the_key(home):
    assert onboard.key_status("paperspace")["stored"] is False
    onboard.store_key("paperspace", ["secret-key-abcd"], verify=False)
    status = onboard.key_status("paperspace")
    assert status["stored"] is True
    assert "abcd" not in repr(status)


def test_store_key_refuses_an_empty_part_and_stores_nothing(home):
    from padlab.providers import credentials

    with pytest.raises(PadlabError, match="the key is empty"):
        onboard.store_key("aws", ["AKIA123", " "], verify=False)
    with pytest.raises(PadlabError, match="takes no API key"):
        onboard.store_key("local", ["x"], verify=False)
    assert credentials.read_stored("aws") is None


def test_confirm_destroy_needs_the_exact_name():
    onboard.confirm_destroy("gpu", " gpu\n")
    with pytest.raises(PadlabError, match="nothing was deleted"):
        onboard.confirm_destroy("gpu", "GPU")


def test_cli_token_rotate_replaces_the_token(home):
    from padlab.panel import store

    old = store.add_token("shortcuts")
    new = padlab(home, "panel", "token", "rotate", "shortcuts").stdout.strip()
    assert new.startswith("padlab_") and new != old
    assert store.token_label(old) is None and store.token_label(new) == "shortcuts"
    missing = padlab(home, "panel", "token", "rotate", "nope", check=False)
    assert missing.returncode != 0 and "no token labelled 'nope'" in missing.stderr


def test_the_providers_own_lists_where_it_has_them(home, monkeypatch):
    """DigitalOcean's sizes and Lambda's instance types, read from their (fake) APIs with the stored key."""
    from tests.fakes import FakeDigitalOcean, MemoryBackend
    from tests.fakes.lambdacloud import FakeLambda

    with (
        FakeDigitalOcean(token="dop_v1_list", backend=MemoryBackend(), tls=True) as do,
        FakeLambda(api_key="lam-list") as lam,
    ):
        monkeypatch.setenv("PADLAB_DIGITALOCEAN_API_URL", do.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(do.ca_file))  # pydo speaks HTTPS only
        monkeypatch.setenv("PADLAB_LAMBDA_API_URL", lam.url)
        onboard.store_key("digitalocean", ["dop_v1_list"], verify=False)
        onboard.store_key("lambda", ["lam-list"], verify=False)
        droplets = onboard.catalog("digitalocean", live=True)
        lambdas = onboard.catalog("lambda", live=True)
        onboard.store_key("lambda", ["revoked-key"], verify=False)
        refused = onboard.catalog("lambda", live=True)
    names = [m["name"] for m in droplets["machine_types"]]
    assert names[0] == "gpu-4000adax1-20gb" and "gpu-l40sx1-48gb" in names
    assert all(n.startswith("gpu-") for n in names)  # GPU sizes only: padlab is for GPU boxes
    assert droplets["price_source"] == "DigitalOcean API (sizes)" and droplets["live_error"] is None
    assert "tor1" in droplets["regions"]
    a10 = next(m for m in lambdas["machine_types"] if m["name"] == "gpu_1x_a10")
    assert a10["price_per_hour"] == 0.75 and a10["regions"]
    assert lambdas["price_source"] == "Lambda API (instance-types)"
    assert refused["live_error"].startswith("Lambda Cloud's own list could not be read")
    assert refused["price_source"] == onboard.catalog("lambda")["price_source"]  # padlab's list instead


def test_the_form_draws_a_providers_list_as_read_a_moment_ago(home, monkeypatch):
    """The new-workstation form is drawn on every GET and POST: the provider's own list is read once
    in a while, not each time (here the API is gone by the second draw)."""
    from tests.fakes.lambdacloud import FakeLambda

    with FakeLambda(api_key="lam-once") as lam:
        monkeypatch.setenv("PADLAB_LAMBDA_API_URL", lam.url)
        onboard.store_key("lambda", ["lam-once"], verify=False)
        first = onboard.catalog("lambda", live=True)
    again = onboard.catalog("lambda", live=True)
    assert again["live_error"] is None and again["price_source"] == "Lambda API (instance-types)"
    assert again["machine_types"] == first["machine_types"]
