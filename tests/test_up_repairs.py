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
import subprocess
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
    assert names(again) == ["unchanged"], again.get("fingerprint_changed")  # the parts that differed
    assert again["changed"] is False
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
    assert "jupyter" in card["fingerprint_changed"], card.get("fingerprint_changed")  # says why it ran
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


def test_the_shared_connection_is_checked_on_its_socket_not_by_starting_ssh(box, monkeypatch) -> None:
    """master_alive asks the master itself (OpenSSH's mux protocol): yes while it runs, no once it
    exited; `ssh -O check` is not started for either. The next `up` opens a new master."""
    from padlab import ssh

    machine = box["machine"]
    monkeypatch.setenv("PADLAB_HOME", str(box["home"]))
    target = ssh.Target(machine.ip, machine.user, None, str(machine.identity), ssh.key_alias("box"))
    ssh.ensure_master(target)
    path = ssh.resolved(target)["controlpath"]
    ran: list = []
    real_run = subprocess.run

    def run(argv, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        ran.append(list(argv))
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    assert ssh.mux_alive(path) is True
    assert ssh.master_alive(target) is True
    ssh.close_master(target)
    assert ssh.mux_alive(path) is False
    assert ssh.master_alive(target) is False
    assert not [a for a in ran if "check" in a], ran
    assert padlab_json(box["home"], "up", "box")["steps"][0]["name"] == "unchanged"


PROGRAM_DIR = "/var/lib/padlab/program"
PLANTED = """
import json, os, sys
def run(req, program):
    open("/tmp/planted-ran", "w").close()
    sys.stdout.write(json.dumps({"ok": False, "error": "the planted program ran", "fix": "", "code": "planted"}) + "\\n")
    return 1
"""


def _plant(machine, path: str, owner: str, mode: str) -> None:
    """A program zip at `path` whose __main__ only leaves /tmp/planted-ran and fails."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("padlab_box/__init__.py", "")
        zf.writestr("padlab_box/__main__.py", PLANTED)
    machine.exec(["sh", "-c", f"base64 -d > {path} && chown {owner} {path} && chmod {mode} {path}"],
                 input=__import__("base64").b64encode(buf.getvalue()).decode())  # fmt: skip


def test_the_box_runs_roots_compiled_program_and_never_one_another_user_could_write(box) -> None:
    """A no-op `up` runs root's compiled copy of the program (no compiling on each call); the loader
    takes that copy only while root owns it and no one else may write it."""
    machine, home = box["machine"], box["home"]
    padlab_json(home, "up", "box")
    listing = machine.exec(["stat", "-c", "%U %a %n", PROGRAM_DIR, *_programs(machine)]).stdout.split("\n")
    assert listing[0] == f"root 755 {PROGRAM_DIR}", listing
    [compiled] = _programs(machine)
    assert listing[1] == f"root 644 {compiled}", listing
    machine.exec(["cp", "-p", compiled, "/root/compiled.pyz"])
    try:
        for owner, mode in (("padlab", "644"), ("root", "666")):  # the login (and Jupyter) user's; writable
            _plant(machine, compiled, owner, mode)
            padlab_json(home, "up", "box")  # compiled from the zip it was sent, and the copy made again
            assert machine.exec(["test", "-e", "/tmp/planted-ran"], check=False).returncode == 1, (
                owner,
                mode,
            )
            assert machine.exec(["stat", "-c", "%U %a", compiled]).stdout.split() == ["root", "644"]
        _plant(machine, compiled, "root", "644")  # root's own: the loader runs it
        proc = padlab(home, "up", "box", check=False)
        assert proc.returncode != 0 and "the planted program ran" in proc.stderr, proc.stderr
    finally:
        machine.exec(["sh", "-c", f"rm -f /tmp/planted-ran && cp -p /root/compiled.pyz {compiled}"])
    padlab_json(home, "up", "box")  # the copy was replaced: every step runs once
    assert names(padlab_json(home, "up", "box")) == ["unchanged"]


def _programs(machine) -> list[str]:
    out = machine.exec(["find", PROGRAM_DIR, "-name", "*.pyz"]).stdout.split()
    return sorted(out)


def test_without_passwordless_sudo_a_plain_up_says_so_and_never_nothing_to_do(box) -> None:
    """The no-op answer skips the sudo check: its root shell stands in for it, and fails too."""
    machine, home = box["machine"], box["home"]
    padlab_json(home, "up", "box")
    machine.require_sudo_password()
    try:
        proc = padlab(home, "up", "box", check=False)
        assert proc.returncode != 0, proc.stdout
        assert "sudo" in proc.stderr and "NOPASSWD" in proc.stderr, proc.stderr
    finally:
        machine.exec(
            f"echo '{machine.user} ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/padlab-testbed && visudo -cq"
        )
    assert names(padlab_json(home, "up", "box")) == ["unchanged"]


def test_a_new_key_is_signed_within_the_one_box_call(box) -> None:
    """The box asks for its certificate's signature in the same call (report.ask), not in a second
    call that would start the box program and check the venv again."""
    machine, home = box["machine"], box["home"]
    machine.exec("rm -f /etc/padlab/tls/server.key /etc/padlab/tls/server.crt /etc/padlab/tls/checked.json")
    proc = padlab(home, "up", "box", "--json")
    stages = [line.split("] ", 1)[1] for line in proc.stderr.splitlines() if line.startswith("[")]
    assert stages.count("checking the TLS certificate") == 1, stages
    assert stages.count("signing the box's certificate with padlab's CA") == 1, stages
    card = json.loads(proc.stdout)
    assert [s["changed"] for s in card["steps"] if s["name"] == "tls"] == [True], card["steps"]
    assert card["cert_sha256"] != box["card"]["cert_sha256"]
    assert login_works(card)
