"""A no-op `up` answers from the box's fingerprint, and still repairs what makes the box safe.

One systemd Debian machine (tests/testbed) for the module: set up once over ssh with
`--firewall on`; each test breaks one thing behind padlab's back (Jupyter dies, the
certificate expires, the firewall loses a rule) and checks that a plain `up`, not
`up --check`, finds and repairs it. The fingerprint (box/setup/fingerprint.py) must differ
for each of them; a fingerprint that left one out would answer "unchanged".
"""

from __future__ import annotations

import datetime
import json
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from padlab.notebook_api import NotebookClient
from tests.helpers import PASSWORD, padlab, padlab_json

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(600)]

PORT = 8888
UNIT = "padlab-box.service"


@pytest.fixture(scope="module")
def box(testbed, tmp_path_factory) -> Iterator[dict]:
    machine = testbed.machine(f"rep{os.getpid() % 100000}")
    home = tmp_path_factory.mktemp("repairs") / "home"
    padlab(
        home,
        "init", "box", "--provider", "ssh",
        "--host", f"{machine.user}@{machine.ip}",
        "--identity", str(machine.identity),
        "--allow-from", "auto", "--firewall", "on",
    )  # fmt: skip
    card = padlab_json(home, "up", "box", "--password-stdin", input=PASSWORD + "\n")
    yield {"machine": machine, "home": home, "card": card}
    machine.destroy()


def names(card: dict) -> list[str]:
    return [s["name"] for s in card["steps"]]


def login_works(card: dict) -> bool:
    with NotebookClient(card["url"], card["ca_cert"]) as client:
        return client.login(PASSWORD)


def test_a_second_up_answers_from_the_fingerprint_and_check_runs_every_step(box) -> None:
    again = padlab_json(box["home"], "up", "box")
    assert names(again) == ["unchanged"] and again["changed"] is False
    assert again["cert_sha256"] == box["card"]["cert_sha256"]
    checked = padlab_json(box["home"], "up", "box", "--check")
    assert checked["changed"] is False, [s for s in checked["steps"] if s["changed"]]
    assert {"python-env", "tls", "kernels", "jupyter-answers", "autostop", "firewall"} <= set(names(checked))


def test_plain_up_starts_a_jupyter_that_died(box) -> None:
    machine = box["machine"]
    padlab_json(box["home"], "up", "box")  # the fingerprint is current
    machine.exec(["systemctl", "stop", UNIT])  # dead, and systemd will not bring it back
    assert machine.exec(["systemctl", "is-active", UNIT], check=False).stdout.strip() != "active"
    card = padlab_json(box["home"], "up", "box")
    running = {s["name"]: s for s in card["steps"]}["jupyter-running"]
    assert running["changed"] is True, card["steps"]
    assert machine.exec(["systemctl", "is-active", UNIT]).stdout.strip() == "active"
    assert login_works(card)


def _expired_certificate(home: Path, key_pem: bytes, ip: str) -> bytes:
    """A certificate for the box's own key and address, signed by padlab's CA, that expired yesterday."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    ca = x509.load_pem_x509_certificate((home / "ca" / "padlab-ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((home / "ca" / "padlab-ca.key").read_bytes(), password=None)
    key = serialization.load_pem_private_key(key_pem, password=None)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "padlab box")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_plain_up_replaces_an_expired_certificate(box) -> None:
    machine, home = box["machine"], box["home"]
    padlab_json(home, "up", "box")
    key = machine.exec(["cat", "/etc/padlab/tls/server.key"]).stdout.encode()
    expired = _expired_certificate(home, key, machine.ip)
    machine.exec(
        [
            "sh",
            "-c",
            "cat > /tmp/expired.crt && install -m 644 -o padlab /tmp/expired.crt /etc/padlab/tls/server.crt",
        ],
        input=expired.decode(),
    )
    machine.exec(["systemctl", "restart", UNIT])  # Jupyter now serves the expired one
    card = padlab_json(home, "up", "box")
    assert {s["name"]: s["changed"] for s in card["steps"]}["tls"] is True, card["steps"]
    served = ssl.get_server_certificate((machine.ip, PORT))
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(served.encode())
    assert cert.not_valid_after_utc > datetime.datetime.now(datetime.timezone.utc)
    assert login_works(card)  # verified against padlab's CA


def _rules(machine) -> dict[str, int]:
    """padlab's rules in its nftables table: comment -> handle."""
    table = json.loads(machine.exec("nft -j -a list table inet padlab").stdout)["nftables"]
    return {i["rule"]["comment"]: i["rule"]["handle"] for i in table if "rule" in i}


def test_plain_up_puts_back_a_firewall_rule_that_went(box) -> None:
    machine, home = box["machine"], box["home"]
    padlab_json(home, "up", "box")
    before = _rules(machine)
    jupyter = next(c for c in before if c.startswith("padlab:jupyter:"))
    machine.exec(f"nft delete rule inet padlab input handle {before[jupyter]}")
    assert jupyter not in _rules(machine)
    card = padlab_json(home, "up", "box")
    assert {s["name"]: s["changed"] for s in card["steps"]}["firewall"] is True, card["steps"]
    assert sorted(_rules(machine)) == sorted(before)
    assert login_works(card)
