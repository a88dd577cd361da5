"""The client's part of public certificates (padlab.acme), the card's TLS line, and when the box renews."""

from __future__ import annotations

import datetime
import ipaddress
import stat
import types
from pathlib import Path

import pytest

from padlab import acme, card, profiles
from padlab.box.setup import acme_client
from padlab.errors import PadlabError
from tests.helpers import one_line_error, padlab


def profile(**kw: object) -> profiles.Profile:
    return profiles.Profile(name="box", provider="ssh", host="padlab@203.0.113.7", **kw)  # type: ignore[arg-type]


def test_auto_asks_for_a_public_ip_only_and_says_why_not(home) -> None:
    assert acme.box_fields(profile(), "198.18.3.2", False) == (None, "198.18.3.2 is not a public address")
    assert acme.box_fields(profile(tls="padlab-ca"), "8.8.8.8", False) == (None, "--tls padlab-ca chosen")
    fields, why = acme.box_fields(profile(), "gpu.example.com", False)
    assert fields is None and "reached by name (gpu.example.com)" in str(why)
    assert acme.box_fields(profile(), "8.8.8.8", True)[0] is None  # this machine: padlab's CA


def test_the_account_key_is_made_once_kept_0600_and_reused(home) -> None:
    fields, why = acme.box_fields(profile(), "8.8.8.8", False)
    assert why is None and fields is not None
    assert fields["directory"] == acme.LETSENCRYPT and fields["ip"] == "8.8.8.8"
    path = acme.account_key_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, _ = acme.box_fields(profile(tls="letsencrypt"), "198.18.3.2", False)  # explicit: any address
    assert again is not None and again["account_key_pem"] == fields["account_key_pem"]


def test_the_card_drops_the_ca_step_when_the_certificate_is_public(home) -> None:
    tls = {"kind": "public", "issuer": "CN=R12,O=Let's Encrypt,C=US", "reason": None}
    data = card.build(profile(), {"host": "203.0.113.7", "phase": "running", "tls": tls})
    rows = dict(card.rows(data))
    assert rows["TLS"] == "public certificate from Let's Encrypt: no profile needed"
    assert "Trust the CA" not in rows and data["ca_profile_hint"] is None
    assert data["juno_url"] == "https://203.0.113.7:8888/"
    fallback = {"kind": "padlab-ca", "reason": "198.18.3.2 is not a public address"}
    rows = dict(card.rows(card.build(profile(), {"host": "198.18.3.2", "tls": fallback})))
    assert rows["TLS"] == "padlab's CA: 198.18.3.2 is not a public address" and "Trust the CA" in rows


def test_bad_tls_settings_are_refused_with_a_fix(home) -> None:
    with pytest.raises(PadlabError, match="is not one of auto, letsencrypt, padlab-ca"):
        profile(tls="self-signed").validate()
    proc = padlab(home, "init", "box", "--provider", "ssh", "--host", "me@203.0.113.7",
                  "--acme-directory", "http://acme.example/dir", check=False)  # fmt: skip
    assert proc.returncode != 0
    assert "is not an https:// URL" in one_line_error(proc)


def _cert(tmp_path: Path, ip: str, issued_hours_ago: float, hours: float = 160) -> types.SimpleNamespace:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=issued_hours_ago)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(start).not_valid_after(start + datetime.timedelta(hours=hours))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return types.SimpleNamespace(cert=str(path))


def test_renewal_is_due_without_a_certificate_at_half_life_and_when_the_address_changed(tmp_path) -> None:
    import time

    now = time.time()
    assert acme_client.due(types.SimpleNamespace(cert=str(tmp_path / "none")), "8.8.8.8", now, False)
    fresh = _cert(tmp_path, "8.8.8.8", issued_hours_ago=10)
    assert acme_client.due(fresh, "8.8.8.8", now, False) is None
    assert acme_client.due(fresh, "8.8.8.8", now, True) == "forced"
    assert acme_client.due(fresh, "8.8.4.4", now, False) == "the address changed to 8.8.4.4"
    old = _cert(tmp_path, "8.8.8.8", issued_hours_ago=81)
    assert acme_client.due(old, "8.8.8.8", now, False) == "half its life is over"


def test_after_a_reboot_the_box_certifies_its_new_public_address(monkeypatch) -> None:
    monkeypatch.setattr(acme_client, "addresses", lambda: ["10.0.0.5", "8.8.4.4"])
    assert acme_client.current_ip("8.8.8.8") == "8.8.4.4"
    monkeypatch.setattr(acme_client, "addresses", lambda: ["10.0.0.5"])  # NAT: the next `up` says
    assert acme_client.current_ip("8.8.8.8") == "8.8.8.8"
    # An address the box held on an interface, now another one on its default route.
    monkeypatch.setattr(acme_client, "addresses", lambda: ["198.18.7.2"])
    monkeypatch.setattr(acme_client, "primary_address", lambda: "198.18.7.2")
    assert acme_client.current_ip("198.18.3.2", held=True) == "198.18.7.2"
    assert acme_client.current_ip("198.18.3.2", held=False) == "198.18.3.2"


def test_a_failing_renewal_alerts_once_a_day_before_expiry(tmp_path, monkeypatch) -> None:
    sent = []
    monkeypatch.setattr(
        acme_client.alerts, "send", lambda conf, title, text, tags, log: sent.append(text) or True
    )
    conf = {"agent_config": str(tmp_path / "agent.json")}
    state = {"reason": "cannot reach the ACME server: Connection refused"}
    import time

    far = _cert(tmp_path, "8.8.8.8", issued_hours_ago=100)  # 60 h left
    acme_client._alert_expiry(conf, far, state, time.time())
    assert sent == []
    near = _cert(tmp_path, "8.8.8.8", issued_hours_ago=150)  # 10 h left
    acme_client._alert_expiry(conf, near, state, time.time())
    acme_client._alert_expiry(conf, near, state, time.time())
    assert len(sent) == 1 and "renewing failed: cannot reach the ACME server" in sent[0]


def test_shortlived_is_asked_for_only_where_the_directory_lists_it() -> None:
    assert acme_client.choose_profile({"classic": "90 days", "shortlived": "160 hours"}) == "shortlived"
    assert acme_client.choose_profile(None) is None  # pebble 2.4: no profiles at all
    assert acme_client.choose_profile({"classic": "90 days"}) is None
