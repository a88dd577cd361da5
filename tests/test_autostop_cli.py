"""Autostop settings on the client: defaults per provider, and one-line errors with a fix."""

from __future__ import annotations

import pytest

from padlab import autostop
from padlab.profiles import Profile
from tests.helpers import one_line_error, padlab


def test_defaults_depend_on_who_bills() -> None:
    cloud = autostop.policy(Profile(name="g", provider="paperspace"))
    assert cloud == {
        "idle_s": 3600,
        "max_uptime_s": None,
        "action": "poweroff",
        "warn_s": 300,
        "gpu_threshold": 10,
    }
    mine = autostop.policy(Profile(name="m", provider="ssh", host="me@box"))
    assert mine["idle_s"] is None and mine["action"] == "service"
    chosen = Profile(
        name="s", provider="ssh", host="me@box", autostop="45m", max_uptime="8h", autostop_action="poweroff"
    )
    assert autostop.policy(chosen) == {
        "idle_s": 2700,
        "max_uptime_s": 28800,
        "action": "poweroff",
        "warn_s": 300,
        "gpu_threshold": 10,
    }
    # DigitalOcean without the box's own token: no default limit (its stop could not run).
    unready = autostop.policy(Profile(name="d", provider="digitalocean"), ready=False)
    assert unready["idle_s"] is None and unready["action"] == "do-snapshot-destroy"
    assert autostop.policy(Profile(name="d", provider="digitalocean"))["idle_s"] == 3600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--provider", "local", "--autostop", "soon"], "cannot read 'soon' as a duration"),
        (["--provider", "local", "--autostop", "20s"], "shorter than a minute"),
        (["--provider", "local", "--autostop", "8d"], "--autostop is at most 7 d"),
        (["--provider", "local", "--max-uptime", "99999999999d"], "--max-uptime is at most 31 d"),
        (["--provider", "local", "--max-uptime", "inf"], "cannot read 'inf'"),
        (["--provider", "local", "--autostop-action", "poweroff"], "never powers off"),
        (["--provider", "digitalocean", "--autostop", "1h"], "still billed"),
    ],
)
def test_init_rejects_bad_autostop_settings(home, args: list, message: str) -> None:
    assert message in one_line_error(padlab(home, "init", "x", *args, check=False))


def test_autostop_command_saves_the_profile_while_the_box_is_off(home) -> None:
    padlab(home, "init", "lab", "--provider", "ssh", "--host", "me@192.0.2.1")
    out = padlab(home, "autostop", "lab", "30m", "--max-uptime", "8h", "--action", "poweroff").stdout
    assert "powers the machine off after 30 min idle" in out and "applies at the next `padlab up lab`" in out
    text = (home / "profiles" / "lab.toml").read_text()
    assert (
        'autostop = "30m"' in text and 'max_uptime = "8h"' in text and 'autostop_action = "poweroff"' in text
    )
    assert "padlab: error" in one_line_error(padlab(home, "keep", "lab", check=False))


def test_keep_is_bounded_before_any_box_call(home) -> None:
    padlab(home, "init", "lab", "--provider", "ssh", "--host", "me@192.0.2.1")
    for args in (("keep", "lab", "99999999999d"), ("keep", "99999999999d")):
        line = one_line_error(padlab(home, *args, check=False))
        assert "a keep hold is at most 7 d" in line and "up to 7d" in line
    assert "cannot read 'nan'" in one_line_error(padlab(home, "keep", "lab", "nan", check=False))
