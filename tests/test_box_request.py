"""The box request schema: defaults filled in, unknown or mistyped fields refused with one line."""

from __future__ import annotations

import json

import pytest

from padlab import workstation
from padlab.box import request
from padlab.box.__main__ import ACTIONS, run
from padlab.box.report import BoxError
from padlab.profiles import Profile
from padlab.providers.local import LocalProvider

BASE = {"action": "status", "name": "t", "prefix": "/tmp/x", "etc": "/tmp/x/etc"}


def test_defaults_are_filled_in_and_nested_parts_checked() -> None:
    req = request.parse(BASE)
    assert req["system"] is False and req["mosh"] is None and req["lines"] == 50
    assert req["autostop"] == {
        "idle_s": None,
        "max_uptime_s": None,
        "action": "service",
        "warn_s": request.WARN_S,
        "gpu_threshold": request.GPU_THRESHOLD,
        "digitalocean": None,
        "lambda": None,
        "runpod": None,
        "deadline_at": None,
        "deadline_why": None,
        "budget_warn_at": None,
        "budget_warn_text": None,
    }
    assert request.parse(dict(BASE, mosh={}))["mosh"] == {"ports": list(request.MOSH_PORTS)}
    # A default is a copy: one request never changes the next one's.
    req["extra_sans"].append("x")
    assert request.parse(BASE)["extra_sans"] == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"action": "status"}, "the request lacks name"),
        (dict(BASE, colour="red"), "unknown request field colour"),
        (dict(BASE, port="8888"), "request field port is str"),
        (dict(BASE, port=True), "request field port is bool"),
        (dict(BASE, autostop={"idle_s": "1h"}), "request field autostop.idle_s is str"),
        (dict(BASE, autostop={"warn": 5}), "unknown request field autostop.warn"),
    ],
)
def test_bad_requests_are_refused_with_one_line(raw: dict, message: str) -> None:
    with pytest.raises(BoxError, match=message) as info:
        request.parse(raw)
    assert info.value.code == "bad_request" and "bug in padlab" in info.value.fix


def test_the_entry_point_answers_a_bad_request_with_a_report(capsys: pytest.CaptureFixture) -> None:
    assert run(dict(BASE, action="dance"), b"") == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["code"] == "bad_request" and "dance" in out["error"]


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_request_the_client_builds_is_valid(home, action: str) -> None:
    """Client and box agree: what workstation.request_for sends, the schema accepts as it is."""
    profile = Profile(name="lab", provider="local", autostop="45m")
    req = workstation.request_for(profile, LocalProvider(profile), action)
    parsed = request.parse(req)
    assert _sent(req, parsed) == req


def _sent(sent: dict, parsed: dict) -> dict:
    """The parsed request, cut down to the fields the client sent (defaults filled in dropped)."""
    return {k: _sent(v, parsed[k]) if isinstance(v, dict) else parsed[k] for k, v in sent.items()}
