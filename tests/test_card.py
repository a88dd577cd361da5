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
