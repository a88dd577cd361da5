from __future__ import annotations

import struct

from padlab import card, profiles


def sample() -> dict:
    profile = profiles.Profile(name="lab", provider="local", port=8443)
    st = {
        "host": "198.18.0.2",
        "phase": "running",
        "cert_sha256": "ab" * 32,
        "password_hint": "your own password",
    }
    return card.build(profile, st)


def test_card_fields_and_url(home):
    data = sample()
    assert data["url"] == "https://198.18.0.2:8443/"
    assert data["ca_cert"].endswith("padlab-ca.pem")
    assert data["ssh"] is None and data["mosh"] is None


def test_ipv6_host_is_bracketed(home):
    profile = profiles.Profile(name="lab", provider="local")
    assert card.build(profile, {"host": "fd00::2"})["url"] == "https://[fd00::2]:8888/"


def test_plain_rendering_shows_fingerprint_and_optional_qr(home):
    text = card.render_plain(sample(), qr=False)
    assert "https://198.18.0.2:8443/" in text
    assert "AB:AB:AB" in text
    assert "\u2580" not in text and "\u2584" not in text
    with_qr = card.render_plain(sample(), qr=True)
    assert len(with_qr.splitlines()) > len(text.splitlines()) + 10


def test_png_is_a_real_png(home, tmp_path):
    out = tmp_path / "qr.png"
    card.write_png(sample(), str(out))
    raw = out.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", raw[16:24])
    assert width == height and width > 100


def test_uptime_text():
    assert card.uptime_text(None) == "-"
    assert card.uptime_text(59) == "0m"
    assert card.uptime_text(3 * 3600 + 120) == "3h 2m"
    assert card.uptime_text(2 * 86400 + 3600) == "2d 1h"


def test_a_clouds_https_proxy_is_the_url_with_no_ca_profile_and_the_direct_port_stays(home):
    profile = profiles.Profile(name="pod", provider="runpod", port=8888)
    st = {
        "host": "198.18.0.9",
        "public_port": 18888,
        "proxy_url": "https://abc123-8889.proxy.runpod.net/",
        "mosh_command": None,
        "mosh_note": "not on RunPod: pods carry no UDP",
    }
    data = card.build(profile, st)
    assert data["url"] == data["juno_url"] == "https://abc123-8889.proxy.runpod.net/"
    assert data["ca_profile_hint"] is None and data["public_cert"]
    assert data["direct_url"] == "https://198.18.0.9:18888/"
    assert data["mosh"] is None
    rows = dict(card.rows(data))
    assert rows["Direct (padlab's CA)"] == "https://198.18.0.9:18888/"
    assert rows["mosh"] == "not on RunPod: pods carry no UDP"
    assert "Trust the CA" not in rows
