"""The panel host's parts that need no machine: the hardened unit, the wheel of the running padlab,
the refusals, and serving a public certificate without making padlab's CA.

The install itself, on a testbed machine with pebble: tests/panel/test_host_testbed.py.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import io
import ipaddress
import zipfile

import pytest

from tests.helpers import one_line_error, padlab


def test_the_system_unit_runs_as_its_own_user_hardened_and_restarts_on_failure() -> None:
    from padlab.panel import host

    text = host.unit_text("0.0.0.0", 8443, [], "/var/lib/padlab/acme-_panel/jupyter.pem")
    for line in ("User=padlab-panel", "Environment=PADLAB_HOME=/var/lib/padlab-panel",
                 "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                 "ReadWritePaths=/var/lib/padlab-panel", "Restart=on-failure", "CapabilityBoundingSet=\n",
                 "WantedBy=multi-user.target"):  # fmt: skip
        assert line in text, line
    assert "--public-cert /var/lib/padlab/acme-_panel/jupyter.pem" in text
    assert "/opt/padlab-panel/venv/bin/python -I -m padlab panel --listen 0.0.0.0 --port 8443" in text
    low = host.unit_text("0.0.0.0", 443, ["panel.example.org"], None)
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" in low and "--public-cert" not in low
    assert "--name panel.example.org" in low


def test_api_urls_the_admin_allows_are_in_the_root_owned_unit_and_checked(home) -> None:
    """--allow-api-url reaches `padlab panel` only through the unit's command line (root's file)."""
    from padlab.panel import host

    text = host.unit_text("0.0.0.0", 8443, [], None, ["https://staging.example.org/v1"])
    assert "--allow-api-url https://staging.example.org/v1" in text
    line = one_line_error(
        padlab(home, "panel", "install", "--system", "--allow-api-url", "ftp://x", check=False)
    )
    assert "--allow-api-url 'ftp://x' is not a URL" in line
    line = one_line_error(padlab(home, "panel", "install", "--allow-api-url", "https://x", check=False))
    assert "--system" in line


def test_allowing_padlabs_ca_is_in_the_root_owned_unit_and_for_a_system_service_only(home) -> None:
    """--allow-padlab-ca (docs/panel.md's threat model) reaches `padlab panel` only through the unit."""
    from padlab.panel import host

    assert "--allow-padlab-ca" not in host.unit_text("0.0.0.0", 8443, [], None)
    assert "--allow-padlab-ca" in host.unit_text("0.0.0.0", 8443, [], None, None, allow_padlab_ca=True)
    line = one_line_error(padlab(home, "panel", "install", "--allow-padlab-ca", check=False))
    assert "--allow-padlab-ca are for a system service" in line and "--system" in line


def test_a_public_panel_makes_padlabs_ca_for_a_box_only_when_allowed(home, tmp_path) -> None:
    """What `padlab panel` sets as it starts (server.keep_ca_off): tls.ca_for_box, which a box
    without a public certificate asks for, refuses in one line and makes nothing unless allowed."""
    from padlab import tls
    from padlab.errors import PadlabError
    from padlab.panel import server

    live = tmp_path / "live.pem"
    _cert(live, days=30)
    info = server.prepare("127.0.0.1", 0, [], str(live))
    try:
        server.keep_ca_off(info)
        with pytest.raises(PadlabError) as refused:
            tls.ca_for_box("the ACME server refused")
        assert "(the ACME server refused)" in refused.value.message
        assert "port 80" in refused.value.fix and "--allow-padlab-ca" in refused.value.fix
        assert not tls.ca_key_path().exists()
        server.keep_ca_off(dict(info, allow_padlab_ca=True))
        assert tls.ca_for_box("the ACME server refused") == tls.ca_cert_path().read_text()
        assert tls.ca_key_path().exists()
    finally:
        tls.keep_ca_off(False)


def test_a_public_panel_refuses_a_padlab_ca_workstation_before_anything_starts(home) -> None:
    """A box that will not ask for a public certificate (this machine, `--tls padlab-ca`) needs
    padlab's CA at once: refused before the machine starts, nothing recorded, no CA made."""
    from padlab import profiles, state, tls, workstation
    from padlab.errors import PadlabError
    from padlab.panel import server

    padlab(home, "init", "lab", "--provider", "local", "--port", "18998", "--root-dir", str(home / "nb"))
    try:
        server.keep_ca_off({"ca_sha256": None})
        with pytest.raises(PadlabError) as refused:
            workstation.up(profiles.load("lab"), "correct-horse-battery-staple")
        assert "(Jupyter on this machine keeps padlab's CA)" in refused.value.message
    finally:
        tls.keep_ca_off(False)
    assert not tls.ca_key_path().exists() and state.load("lab").get("phase") is None


def test_the_wheel_of_the_running_padlab_is_reproducible_and_complete() -> None:
    from padlab.panel import host

    name, data = host.wheel()
    assert name.startswith("padlab-") and name.endswith("-py3-none-any.whl")
    assert host.wheel()[1] == data  # same code, same bytes: a re-run installs nothing
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert "padlab/panel/host-lock.txt" in names and "padlab/box/acme-lock.txt" in names
        assert "padlab/panel/templates/login.html" in names
        assert not [n for n in names if "__pycache__" in n]
        dist = next(n.split("/")[0] for n in names if n.endswith(".dist-info/RECORD"))
        record = zf.read(f"{dist}/RECORD").decode().splitlines()
        assert "padlab = padlab.cli:main" in zf.read(f"{dist}/entry_points.txt").decode()
        for row in record[:-1]:
            path, digest, size = row.rsplit(",", 2)
            body = zf.read(path)
            want = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={want}" and int(size) == len(body), path


def test_the_lock_pins_every_package_with_hashes() -> None:
    from padlab.box import venv
    from padlab.panel import host

    text = host.lock_text()
    names = {name for name, version, _ in venv.pins(text) if version}
    assert {"starlette", "uvicorn", "cryptography", "click", "segno", "webauthn"} <= names
    assert "--hash=sha256:" in text


def test_system_options_without_system_or_on_say_how(home) -> None:
    line = one_line_error(padlab(home, "panel", "install", "--tls", "letsencrypt", check=False))
    assert "--system" in line and "--on PROFILE" in line


def test_install_on_an_unknown_profile_is_one_line(home) -> None:
    line = one_line_error(padlab(home, "panel", "install", "--on", "nosuch", check=False))
    assert "nosuch" in line


def _cert(path, days: float, org: str = "Pebble Test") -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(issuer)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=2)).not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(key_pem + cert.public_bytes(serialization.Encoding.PEM))


def test_a_public_certificate_is_served_without_making_padlabs_ca(home, tmp_path) -> None:
    from padlab import tls
    from padlab.panel import server

    live = tmp_path / "live.pem"
    _cert(live, days=6)
    info = server.prepare("127.0.0.1", 0, [], str(live))
    assert info["tls_line"] == "public certificate from Pebble Test: no profile needed"
    assert info["cert"] == info["key"] == str(live) and info["ca_sha256"] is None
    assert info["names"] == ["127.0.0.1"]
    assert not tls.ca_key_path().exists()  # padlab's CA key stays off a public panel


def test_an_expired_public_certificate_falls_back_to_padlabs_ca_and_says_why(home, tmp_path) -> None:
    from padlab.panel import server

    live = tmp_path / "live.pem"
    _cert(live, days=-1)
    info = server.prepare("127.0.0.1", 0, [], str(live))
    assert info["tls_line"] == "padlab's CA: the public certificate expired"
    assert info["ca_sha256"] and info["cert"] != str(live)


def test_a_public_panels_ca_page_makes_no_ca_and_says_no_profile_is_needed(panel_home) -> None:
    from starlette.testclient import TestClient

    from padlab import tls
    from padlab.panel.app import create_app
    from padlab.panel.web import Panel

    line = "public certificate from Pebble Test: no profile needed"
    panel = Panel(cache_s=0, tls_line=line, public_tls=True)
    with TestClient(create_app(panel), base_url="https://testserver") as c:
        page = c.get("/ca")
        assert page.status_code == 200 and "padlab's CA is not on this panel" in page.text
        assert f"This panel: {line}." in page.text
        assert c.get("/ca/padlab-ca.mobileconfig").status_code == 404
        assert f"This panel: {line}." in c.get("/login").text
    assert not tls.ca_key_path().exists()
