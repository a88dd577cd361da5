"""Public certificates for the box's IP, from pebble (Debian's ACME test server) on the testbed host.

One module-scoped machine, one profile (`--tls letsencrypt --acme-directory pebble`), and the
tests in file order: `up` with pebble down falls back to padlab's CA with a one-line reason;
with pebble up, `up` gets a pebble certificate for 198.18.X.2, validated over http-01 on the
box's real port 80 (pebble listens on the host's end of the machine's link, 198.18.X.1); a
client and Chromium that trust only pebble's root log in and run a kernel; port 80 is closed
again; a forced renewal swaps the certificate under a live kernel; with pebble down again a
renewal fails, keeps the certificate and says why. Pebble 2.4 lists no profiles, so this is the
no-profile path. The time `up` spent on ACME and a renewal's are printed (`-s`) for the record.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from padlab.notebook_api import NotebookClient
from tests.helpers import PASSWORD, padlab, padlab_json
from tests.test_jupyter_stack import ACME_LOCK, COMPARE, off_lock

pytestmark = [
    pytest.mark.testbed,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        not shutil.which("pebble") and not os.environ.get("CI"), reason="needs Debian's pebble"
    ),
]

PORT = 8888
ACME_PYTHON = "/var/lib/padlab/acme-box/venv/bin/python"
RENEW = f"{ACME_PYTHON} -I /var/lib/padlab/acme-box/padlab-acme"


def _minica(ip: str, out: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for pebble's own HTTPS listener at `ip` (its bundled one is for localhost)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble listener CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = out / "listener-ca.pem", out / "listener.pem", out / "listener.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def _free_ports(ip: str, count: int) -> list[int]:
    """Ports nothing listens on at `ip`, picked by the kernel (held together, so distinct)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((ip, 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class Pebble:
    """pebble on the host's end of the machine's link; validates on the box's port 80."""

    def __init__(self, ip: str, work: Path) -> None:
        self.ip, self.work = ip, work
        self.listener_ca, cert, key = _minica(ip, work)
        # Ports free on this address now, not pebble's 14000/15000: a pebble another session left
        # running keeps its socket on a 198.18.X.1 whose subnet the testbed hands out again, and
        # answered "pebble down" with its own certificate ("certificate signature failure").
        acme_port, management_port = _free_ports(ip, 2)
        self.config = work / "pebble.json"
        self.config.write_text(json.dumps({"pebble": {
            "listenAddress": f"{ip}:{acme_port}", "managementListenAddress": f"{ip}:{management_port}",
            "certificate": str(cert), "privateKey": str(key), "httpPort": 80, "tlsPort": 443,
            "ocspResponderURL": "", "externalAccountBindingRequired": False,
        }}))  # fmt: skip
        self.directory = f"https://{ip}:{acme_port}/dir"
        self.roots = f"https://{ip}:{management_port}/roots/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Path:
        """Start it; returns a file with its issuing root (new at every start)."""
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0", PEBBLE_AUTHZREUSE="0")
        log = open(self.work / "pebble.log", "ab")  # noqa: SIM115 - pebble's for its lifetime
        self.proc = subprocess.Popen(["pebble", "-config", str(self.config)], env=env, stdout=log, stderr=log)
        ctx = ssl.create_default_context(cafile=str(self.listener_ca))
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.roots, context=ctx, timeout=5) as r:
                    root = r.read()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.2)
        # The management port answers first; the ACME directory's listener comes up beside it.
        while True:
            try:
                with urllib.request.urlopen(self.directory, context=ctx, timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.2)
        path = self.work / "pebble-root.pem"
        path.write_bytes(root)
        return path

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def served(ip: str, cafile: Path) -> tuple[str, dict]:
    """SHA-256 and details of the certificate the box serves, verified against `cafile` alone."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection((ip, PORT), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname=ip) as tls,
    ):
        der = tls.getpeercert(binary_form=True) or b""
        return hashlib.sha256(der).hexdigest(), tls.getpeercert() or {}


def agent_view(machine) -> dict:
    """The agent's dry run on the box (what `padlab status` shows): its decision, notes included."""
    proc = machine.exec(
        "/var/lib/padlab/agent-box/padlab-agent status /var/lib/padlab/agent-box/config.json", timeout=120
    )
    return json.loads(proc.stdout)["decision"]


def assert_agent_reads_jupyter(machine, used: bool = True) -> None:
    """The agent's activity probe verified and read Jupyter: a reading, not an unreadable note;
    ``used``: Jupyter's use (a login, a cell) is the latest the agent saw."""
    decision = agent_view(machine)
    seen = decision["reasons"] + [decision["last_activity"] or ""]
    assert not [n for n in decision["notes"] + seen if "unreadable" in n], decision
    assert not used or any(k in s for s in seen for k in ("jupyter:", "kernel:")), decision


def why_not_public(box: dict, card: dict) -> str:
    """For a failure message: the card's TLS line, the box's ACME runs (its state and the agent's
    log: `up`'s and the timer's) and the end of pebble's log."""
    machine = box["machine"]
    state = machine.exec("cat /var/lib/padlab/acme-box/state.json", check=False).stdout
    runs = machine.exec("grep TLS /var/lib/padlab/agent-box/agent.log | tail -5", check=False).stdout
    timer = machine.exec("journalctl -u padlab-acme-box.service -o short-monotonic -n 20", check=False).stdout
    pebble = (box["work"] / "pebble.log").read_text().splitlines()[-25:]
    return "\n".join([card["tls_line"], state, runs, timer, *pebble])


@pytest.fixture(scope="module")
def box(testbed, tmp_path_factory) -> Iterator[dict]:
    machine = testbed.machine(f"acme{os.getpid() % 100000}")
    work = tmp_path_factory.mktemp("acme")
    host_ip = machine.ip.rsplit(".", 1)[0] + ".1"
    pebble = Pebble(host_ip, work)
    bundle = work / "acme-ca.pem"  # the listener's CA now; pebble's issuing root is added once it runs
    bundle.write_bytes(pebble.listener_ca.read_bytes())
    home = work / "home"
    padlab(home, "init", "box", "--provider", "ssh", "--host", f"{machine.user}@{machine.ip}",
           "--identity", str(machine.identity), "--firewall", "on", "--autostop", "2h",
           "--tls", "letsencrypt", "--acme-directory", pebble.directory, "--acme-ca", str(bundle))  # fmt: skip
    ctx = {"machine": machine, "home": home, "pebble": pebble, "bundle": bundle, "work": work}
    yield ctx
    pebble.stop()
    machine.destroy()


def test_with_the_acme_server_down_up_falls_back_to_padlabs_ca_and_says_why(box, record_property) -> None:
    t0 = time.monotonic()
    card = padlab_json(box["home"], "up", "box", "--password-stdin", input=PASSWORD + "\n")
    record_property(
        "figure",
        f"acme: first `up` (pebble down) {time.monotonic() - t0:.1f} s, of which ACME (installing "
        f"certbot's acme in root's venv, then the refused attempt) {card['acme_seconds']} s",
    )
    assert card["tls_line"] == "padlab's CA: cannot reach the ACME server: Connection refused", card
    assert card["ca_profile_hint"] and not card["public_cert"]
    status = padlab_json(box["home"], "status", "box", "--json")
    assert status["tls_line"] == card["tls_line"]
    served(box["machine"].ip, Path(card["ca_cert"]))  # padlab's CA verifies what Jupyter serves


def test_up_gets_a_certificate_from_pebble_for_the_box_ip(box, record_property) -> None:
    root = box["pebble"].start()
    box["root"] = root
    box["bundle"].write_bytes(box["pebble"].listener_ca.read_bytes() + root.read_bytes())
    t0 = time.monotonic()
    card = padlab_json(box["home"], "up", "box")
    took = time.monotonic() - t0
    record_property("figure", f"acme: `up` with pebble {took:.1f} s, of which ACME {card['acme_seconds']} s")
    assert card["public_cert"] and card["ca_profile_hint"] is None, why_not_public(box, card)
    assert card["tls_line"].endswith("no profile needed"), card["tls_line"]
    digest, cert = served(box["machine"].ip, root)  # pebble's root alone verifies it
    assert ("IP Address", box["machine"].ip) in cert["subjectAltName"]
    assert digest == card["cert_sha256"]
    assert next(s for s in card["steps"] if s["name"] == "tls")["changed"]
    assert "Pebble" in json.dumps(cert["issuer"])
    # Jupyter's user may read its key and chain but neither change nor replace them.
    owner = box["machine"].exec(
        "stat -c '%U:%G %a' /var/lib/padlab/acme-box /var/lib/padlab/acme-box/jupyter.pem"
    )
    assert owner.stdout.split("\n")[:2] == ["root:root 755", "root:padlab 440"], owner.stdout
    box["digest"] = digest


def test_login_and_a_kernel_work_through_a_client_that_trusts_only_pebble(box) -> None:
    client = NotebookClient(f"https://{box['machine'].ip}:{PORT}", str(box["root"]))
    assert client.login(PASSWORD)
    kernel = client.start_kernel()
    assert client.execute(kernel, "x = 41; print('set')").stdout.strip() == "set"
    box["client"], box["kernel"] = client, kernel


def test_the_autostop_agent_reads_jupyter_through_its_public_certificate(box) -> None:
    """The agent pins the certificate Jupyter serves (root's copy), not padlab's CA: it sees the use."""
    assert_agent_reads_jupyter(box["machine"])


def test_doctor_verifies_the_public_certificate_and_runs_a_kernel(box) -> None:
    out = padlab_json(box["home"], "doctor", "box", "--password-stdin", input=PASSWORD + "\n")
    assert out["ok"], out
    chain = next(c for c in out["checks"] if c["name"] == "TLS chain")
    assert "the ACME server's roots (--acme-ca)" in chain["detail"], chain


def test_a_second_up_keeps_the_certificate_and_changes_nothing(box) -> None:
    again = padlab_json(box["home"], "up", "box")
    assert not again["changed"], [s for s in again["steps"] if s["changed"]]
    assert again["cert_sha256"] == box["digest"] and again["public_cert"]


def acme_venv(machine) -> dict[str, list[str]]:
    """{package: [locked, installed]} in root's ACME venv on the box (its lock on stdin)."""
    proc = machine.exec([ACME_PYTHON, "-I", "-c", COMPARE], input=ACME_LOCK.read_text())
    return json.loads(proc.stdout)


def test_the_acme_venv_is_exactly_its_lock_and_up_brings_it_back(box) -> None:
    machine = box["machine"]
    assert off_lock(acme_venv(machine)) == {}
    locked = acme_venv(machine)["idna"][0]
    machine.exec(f"{ACME_PYTHON} -I -m pip install -q --disable-pip-version-check idna==3.10", timeout=300)
    assert off_lock(acme_venv(machine)) == {"idna": [locked, "3.10"]}
    card = padlab_json(box["home"], "up", "box")
    step = next(s for s in card["steps"] if s["name"] == "acme-client")
    assert step["changed"] and f"idna 3.10 -> {locked}" in step["detail"], step
    assert off_lock(acme_venv(machine)) == {}
    assert card["public_cert"] and card["cert_sha256"] == box["digest"]


def test_the_challenge_port_is_closed_again(box) -> None:
    machine = box["machine"]
    rules = machine.exec("nft list ruleset").stdout
    assert "padlab:jupyter" in rules and "policy drop" in rules, rules  # the firewall is on
    assert "padlab:acme" not in rules and "dport 80 " not in rules, rules
    assert ":80 " not in machine.exec("ss -Hltn").stdout  # and nothing listens there


def test_a_forced_renewal_swaps_the_certificate_under_a_live_kernel(box, record_property) -> None:
    machine = box["machine"]
    pid = machine.exec("systemctl show -p MainPID --value padlab-box.service").stdout.strip()
    t0 = time.monotonic()
    machine.exec(f"{RENEW} --force", timeout=300)
    record_property(
        "figure", f"acme: a forced renewal (order, http-01, finalize) {time.monotonic() - t0:.1f} s"
    )
    digest, cert = served(machine.ip, box["root"])
    assert digest != box["digest"]
    assert ("IP Address", machine.ip) in cert["subjectAltName"]
    assert machine.exec("systemctl show -p MainPID --value padlab-box.service").stdout.strip() == pid
    assert box["client"].execute(box["kernel"], "print(x + 1)").stdout.strip() == "42"
    assert "padlab:acme" not in machine.exec("nft list ruleset").stdout
    box["digest"] = digest
    assert_agent_reads_jupyter(machine)  # the renewed certificate is the agent's pin at its next check
    padlab(box["home"], "autostop", "box", "3h")  # new limits, no `up`: the agent keeps its pin
    assert_agent_reads_jupyter(machine, used=False)


def test_chromium_trusting_only_pebble_loads_jupyterlab(box, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    from tests.test_browser import browser_home, launch

    home = browser_home(tmp_path, str(box["root"]))
    url = f"https://{box['machine'].ip}:{PORT}/lab"
    with sync_playwright() as p:
        browser = launch(p, home)
        page = browser.new_page()
        page.goto(url)
        assert "/login" in page.url
        page.fill("input[type=password]", PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
        browser.close()


def test_a_failed_renewal_keeps_the_certificate_and_says_why(box) -> None:
    machine = box["machine"]
    box["pebble"].stop()
    proc = machine.exec(f"{RENEW} --force", check=False, timeout=300)
    assert proc.returncode == 1, proc
    assert served(machine.ip, box["root"])[0] == box["digest"]  # the old one is still served
    log = padlab(box["home"], "logs", "box", "--agent").stdout
    assert "failed (forced): cannot reach the ACME server: Connection refused; the current one is kept" in log
    status = padlab_json(box["home"], "status", "box", "--json")
    assert status["state"] == "running"
    assert status["tls_line"].endswith("renewal failed: cannot reach the ACME server: Connection refused"), (
        status
    )


def test_a_reboot_with_a_changed_address_gets_a_new_certificate(box, testbed, record_property) -> None:
    """The disk on a new machine (a restored snapshot): the timer at boot certifies the new address."""
    old = box["machine"]
    root = box["pebble"].start()  # pebble again (a new root), still on the old link's host address
    old.poweroff()
    disk = box["work"] / "disk"
    old.copy_disk(disk)
    new = testbed.create_machine(f"acme{os.getpid() % 100000}b", disk_from=disk)
    try:
        assert new.ip != old.ip
        t0 = time.monotonic()
        new.boot()
        deadline = time.monotonic() + 240  # the timer's 30 s after boot, its 1 min jitter, the order
        while True:
            try:
                _, cert = served(new.ip, root)
                if ("IP Address", new.ip) in cert["subjectAltName"]:
                    break
            except (OSError, ssl.SSLError):
                pass  # the old certificate (pebble's previous root) or Jupyter not up yet
            assert time.monotonic() < deadline, new.exec("journalctl -u 'padlab-acme-*' --no-pager").stdout
            time.sleep(2)
        record_property(
            "figure", f"acme: boot with a new address to its certificate {time.monotonic() - t0:.0f} s"
        )
    finally:
        new.destroy()


def test_choosing_padlabs_ca_switches_back_and_stops_the_renewals(box) -> None:
    machine = box["machine"]  # off since the snapshot: boot it again, on its own address
    machine.boot()
    padlab(box["home"], "init", "box", "--force", "--provider", "ssh", "--host", f"{machine.user}@{machine.ip}",
           "--identity", str(machine.identity), "--firewall", "on", "--autostop", "2h", "--tls", "padlab-ca")  # fmt: skip
    card = padlab_json(box["home"], "up", "box")
    assert card["tls_line"] == "padlab's CA: --tls padlab-ca chosen" and not card["public_cert"], card
    served(machine.ip, Path(card["ca_cert"]))
    assert_agent_reads_jupyter(machine, used=False)  # padlab's CA again verifies it for the agent
    assert padlab_json(box["home"], "status", "box", "--json")["tls_line"] == card["tls_line"]
    enabled = machine.exec("systemctl is-enabled padlab-acme-box.timer", check=False).stdout.strip()
    assert enabled == "disabled"
