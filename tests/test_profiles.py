from __future__ import annotations

import stat

import pytest

from padlab import profiles
from padlab.errors import PadlabError


def test_first_profile_becomes_default_and_roundtrips(home):
    profiles.save(profiles.Profile(name="one", provider="local", port=9999, root_dir="/srv/nb"))
    profiles.save(profiles.Profile(name="two", provider="local"))
    assert profiles.default_name() == "one"
    loaded = profiles.load(None)
    assert (loaded.name, loaded.port, loaded.root_dir) == ("one", 9999, "/srv/nb")
    assert profiles.names() == ["one", "two"]
    assert stat.S_IMODE((home / "profiles" / "one.toml").stat().st_mode) == 0o600


def test_default_can_change_and_removal_clears_it(home):
    profiles.save(profiles.Profile(name="one", provider="local"))
    profiles.save(profiles.Profile(name="two", provider="local"))
    profiles.set_default("two")
    assert profiles.load(None).name == "two"
    profiles.remove("two")
    assert profiles.default_name() == "one"  # the only one left


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "UPPER", "provider": "local"}, "invalid profile name"),
        ({"name": "ok", "provider": "moon"}, "unknown provider"),
        ({"name": "ok", "provider": "local", "port": 22}, "out of range"),
    ],
)
def test_validation(home, kwargs, message):
    with pytest.raises(PadlabError, match=message):
        profiles.save(profiles.Profile(**kwargs))
    assert profiles.names() == []


def test_malformed_toml_is_a_clear_error(home):
    profiles.save(profiles.Profile(name="one", provider="local"))
    (home / "profiles" / "one.toml").write_text("port = [")
    with pytest.raises(PadlabError, match="is not valid TOML.*one.toml.corrupt"):
        profiles.load("one")


def test_salvage_keeps_every_readable_setting_and_says_what_is_wrong(home):
    profiles.save(profiles.Profile(name="one", provider="local", port=9999, root_dir="/srv/nb"))
    path = home / "profiles" / "one.toml"
    path.write_text('provider = "local"\nroot_dir = "/srv/nb"\nport = "abc"\nlisten = [\n')
    with pytest.raises(PadlabError, match="not valid TOML"):
        profiles.load("one")
    profile, problem = profiles.salvage("one")
    assert (profile.provider, profile.root_dir, profile.port) == ("local", "/srv/nb", profiles.DEFAULT_PORT)
    assert "one.toml.corrupt" in problem
    path.write_text("port = [\n")
    with pytest.raises(PadlabError, match="not valid TOML"):
        profiles.salvage("one")


def test_names_are_matched_whole(home):
    for bad in ("nl\n", "a" * 32, "-x", "x" * 300):
        with pytest.raises(PadlabError, match="invalid profile name"):
            profiles.exists(bad)
