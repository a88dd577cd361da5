"""The local workstation end to end: a real Jupyter over HTTPS, driven through the CLI."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from padlab.notebook_api import NotebookClient, ssl_context
from tests.helpers import PASSWORD, free_port, padlab, padlab_env, padlab_json


def url(ws: dict) -> str:
    return f"https://127.0.0.1:{ws['port']}"


def ca(ws: dict) -> str:
    return ws["card"]["ca_cert"]


def test_up_prints_card_with_required_fields(workstation):
    card = workstation["card"]
    for key in ("url", "host", "port", "ca_cert", "cert_sha256", "ssh", "mosh", "state"):
        assert key in card
    assert card["state"] == "running"
    assert card["url"].startswith("https://") and card["url"].endswith(f":{workstation['port']}/")
    assert card["ssh"] is None and card["mosh"] is None
    assert Path(card["ca_cert"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert PASSWORD not in json.dumps(card)


def test_password_login_and_kernel_over_verified_https(workstation):
    with NotebookClient(url(workstation), ca(workstation)) as client:
        assert client.login(PASSWORD)
        kernel = client.start_kernel()
        try:
            result = client.execute(kernel, "import sys; print(sum(range(10)), sys.prefix)")
        finally:
            client.shutdown_kernel(kernel)
    assert result.error is None
    assert result.stdout.split()[0] == "45"
    # The kernel runs in padlab's dedicated environment, not the client's interpreter.
    assert "boxes/ws/venv" in result.stdout


def test_a_started_cell_runs_on_after_the_client_leaves(workstation):
    with NotebookClient(url(workstation), ca(workstation)) as client:
        assert client.login(PASSWORD)
        kernel = client.start_kernel()
        try:
            client.start(kernel, "import time; time.sleep(3)")
            state = client.api("GET", f"/kernels/{kernel}").json()["execution_state"]
        finally:
            client.shutdown_kernel(kernel)
    assert state == "busy"


def test_served_certificate_matches_card_fingerprint(workstation):
    import ssl

    pem = ssl.get_server_certificate(("127.0.0.1", workstation["port"]))
    from padlab.tls import fingerprint

    assert fingerprint(pem) == workstation["card"]["cert_sha256"]


def test_wrong_password_and_anonymous_calls_are_refused(workstation):
    with NotebookClient(url(workstation), ca(workstation)) as client:
        assert not client.login("not-the-password-at-all")
        assert client.http.get("/api/contents").status_code == 403
        assert client.http.get("/api/kernels").status_code == 403
        # No token login exists: an empty or made-up token does not let anyone in.
        assert client.http.get("/api/status", params={"token": ""}).status_code == 403
        assert client.http.get("/api/status", headers={"Authorization": "token x"}).status_code == 403


def test_untrusted_client_cannot_connect(workstation):
    """Without padlab's CA, TLS verification fails: there is no plain-HTTP fallback either."""
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url(workstation)}/login", verify=True)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
        httpx.get(f"http://127.0.0.1:{workstation['port']}/login")


def test_secret_files_are_private(workstation):
    home = workstation["home"]
    etc = home / "boxes" / "ws" / "etc"
    for path in (
        etc / "jupyter" / "jupyter_server_config.json",
        etc / "cookie_secret",
        etc / "tls" / "server.key",
        home / "ca" / "padlab-ca.key",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    box = home / "boxes" / "ws"
    for directory in (home, home / "boxes", box, box / "run", box / "log", box / "agent-ws"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    cfg = json.loads((etc / "jupyter" / "jupyter_server_config.json").read_text())
    assert cfg["PasswordIdentityProvider"]["hashed_password"].startswith("argon2:")
    assert cfg["PasswordIdentityProvider"]["allow_password_change"] is False
    assert cfg["IdentityProvider"]["token"] == ""


def test_password_is_stored_nowhere_in_plain_text(workstation):
    for path in workstation["home"].rglob("*"):
        if path.is_file() and "venv" not in path.parts:
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_second_up_is_a_noop(workstation, steady_addresses):
    # Testbed networks of other tests come and go between the fixture's `up` and this test, and a
    # new host address rightly gets a new certificate; this `up` settles on the addresses held now.
    settled = padlab_json(workstation["home"], "up")
    t0 = time.monotonic()
    again = padlab_json(workstation["home"], "up")
    assert again["changed"] is False, [s for s in again["steps"] if s["changed"]]
    assert again["cert_sha256"] == settled["cert_sha256"]
    assert time.monotonic() - t0 < 30  # generous: the contract is "no change", not a timing


def test_status_reports_running_with_uptime(workstation):
    st = padlab_json(workstation["home"], "status")
    assert st["state"] == "running"
    assert st["uptime_s"] is not None and st["uptime_s"] >= 0
    assert st["url"] == workstation["card"]["url"]


def doctor(ws: dict, password: str) -> tuple[int, dict]:
    """padlab doctor from the client's side, against the loopback address the certificate names."""
    args = ("doctor", "--json", "--password-stdin", "--host", "127.0.0.1")
    proc = padlab(ws["home"], *args, input=password + "\n", check=False)
    return proc.returncode, json.loads(proc.stdout)


def test_doctor_all_checks_pass(workstation):
    code, result = doctor(workstation, PASSWORD)
    assert code == 0, result
    names = {c["name"]: c["ok"] for c in result["checks"]}
    assert names == {
        "port open": True,
        "TLS chain": True,
        "login page": True,
        "password login": True,
        "kernel runs code": True,
        "Jupyter stack": True,
        "GPU visible": None,
    }


def test_doctor_reports_wrong_password_with_fix(workstation):
    code, result = doctor(workstation, "wrong-password-here")
    assert code == 1
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["password login"]["ok"] is False
    assert "padlab passwd" in checks["password login"]["fix"]


def test_persistence_across_down_and_up(tmp_path, steady_addresses):
    """A notebook, the password and the certificate all survive down + up."""
    home = tmp_path / "h"
    port = free_port()
    padlab(home, "init", "p", "--provider", "local", "--port", str(port), "--root-dir", str(tmp_path / "nb"))
    first = padlab_json(home, "up", "--password-stdin", input=PASSWORD + "\n")
    base = f"https://127.0.0.1:{port}"
    with NotebookClient(base, first["ca_cert"]) as client:
        assert client.login(PASSWORD)
        nb = {
            "type": "notebook",
            "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
        }
        assert client.api("PUT", "/contents/keep.ipynb", json=nb).status_code in (200, 201)

    padlab(home, "down")
    assert padlab_json(home, "status")["state"] == "stopped"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/login", verify=ssl_context(first["ca_cert"]))
    assert (tmp_path / "nb" / "keep.ipynb").exists()

    second = padlab_json(home, "up")  # no password needed: it was kept
    assert second["cert_sha256"] == first["cert_sha256"]
    with NotebookClient(base, first["ca_cert"]) as client:
        assert client.login(PASSWORD)
        assert client.api("GET", "/contents/keep.ipynb").status_code == 200

    # passwd takes effect at once; the notebook on disk stays.
    new = "copper-meadow-signal-orbit"
    padlab(home, "passwd", "--password-stdin", input=new + "\n")
    with NotebookClient(base, first["ca_cert"]) as client:
        assert not client.login(PASSWORD)
    with NotebookClient(base, first["ca_cert"]) as client:
        assert client.login(new)
        assert client.api("GET", "/contents/keep.ipynb").status_code == 200
    padlab(home, "down")


def test_generated_password_is_printed_once_and_works(tmp_path):
    home = tmp_path / "h"
    port = free_port()
    padlab(home, "init", "g", "--provider", "local", "--port", str(port), "--root-dir", str(tmp_path / "nb"))
    card = padlab_json(home, "up", "--generate-password")
    password = card["generated_password"]
    assert len(password.split("-")) == 5
    with NotebookClient(f"https://127.0.0.1:{port}", card["ca_cert"]) as client:
        assert client.login(password)
    later = padlab_json(home, "card")
    assert "generated_password" not in later
    assert password not in json.dumps(later)
    padlab(home, "down")


def test_interrupted_up_is_finished_by_running_it_again(tmp_path):
    home = tmp_path / "h"
    port = free_port()
    padlab(home, "init", "i", "--provider", "local", "--port", str(port), "--root-dir", str(tmp_path / "nb"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "padlab", "up", "--password-stdin"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=padlab_env(home),
    )
    assert proc.stdin and proc.stderr
    proc.stdin.write(PASSWORD + "\n")
    proc.stdin.close()
    for line in proc.stderr:
        if "installing Jupyter" in line:
            break
    proc.send_signal(signal.SIGINT)  # Ctrl-C in the middle of the install
    assert proc.wait(timeout=60) == 130
    assert padlab_json(home, "status")["state"] in ("error", "stopped")

    card = padlab_json(home, "up", "--password-stdin", input=PASSWORD + "\n")
    assert card["state"] == "running"
    with NotebookClient(f"https://127.0.0.1:{port}", card["ca_cert"]) as client:
        assert client.login(PASSWORD)
    padlab(home, "down")


def test_concurrent_ups_do_not_start_two_servers(tmp_path):
    home = tmp_path / "h"
    port = free_port()
    padlab(home, "init", "c", "--provider", "local", "--port", str(port), "--root-dir", str(tmp_path / "nb"))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "padlab", "up", "--password-stdin", "--json"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=padlab_env(home),
        )
        for _ in range(2)
    ]
    outs = [p.communicate(PASSWORD + "\n", timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    pidfile = home / "boxes" / "c" / "run" / "jupyter-c.pid"
    pid = int(pidfile.read_text())
    jupyters = [
        p
        for p in os.listdir("/proc")
        if p.isdigit()
        and _cmdline(p).find(str(home / "boxes" / "c" / "venv")) >= 0
        and "jupyter-lab" in _cmdline(p)
    ]
    assert jupyters == [str(pid)]
    padlab(home, "down")


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_new_address_gets_a_new_certificate(tmp_path, monkeypatch):
    """When the box's address changes, up issues a certificate that names the new one."""
    import ssl

    from cryptography import x509

    from padlab import profiles, workstation
    from padlab.providers import local

    home = tmp_path / "h"
    port = free_port()
    padlab(home, "init", "a", "--provider", "local", "--port", str(port), "--root-dir", str(tmp_path / "nb"))
    first = padlab_json(home, "up", "--password-stdin", input=PASSWORD + "\n")
    monkeypatch.setenv("PADLAB_HOME", str(home))
    monkeypatch.setenv("PATH", padlab_env(home)["PATH"])
    monkeypatch.setattr(local, "primary_address", lambda: "198.18.77.7")
    moved = workstation.up(profiles.load("a"))
    assert moved["url"] == f"https://198.18.77.7:{port}/"
    assert moved["cert_sha256"] != first["cert_sha256"]
    assert [s["changed"] for s in moved["steps"] if s["name"] == "tls"] == [True]
    served = x509.load_pem_x509_certificate(ssl.get_server_certificate(("127.0.0.1", port)).encode())
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "198.18.77.7" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    workstation.down(profiles.load("a"))


def test_addresses_that_change_during_up_still_end_in_the_certificate_signed(tmp_path):
    """Host addresses come and go (other tests' testbed networks): `up` reads them once and serves
    the certificate padlab's CA signed for that read, never a card for one it did not install."""
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    fake = tmp_path / "bin"
    fake.mkdir()
    # `ip -o addr`, as iproute2 prints it, with a new address at every call.
    (fake / "ip").write_text(
        '#!/bin/sh\nn=$(($(cat "$0.n" 2>/dev/null || echo 0) + 1)); echo $n > "$0.n"\n'
        'echo "9: eth9    inet 198.18.250.$n/24 brd 198.18.250.255 scope global eth9"\n'
    )
    (fake / "ip").chmod(0o755)
    home = tmp_path / "h"
    port = free_port()
    padlab(home, "init", "m", "--provider", "local", "--port", str(port), "--root-dir", str(tmp_path / "nb"))
    path = f"{fake}{os.pathsep}{os.environ['PATH']}"
    proc = padlab(home, "up", "--json", "--password-stdin", input=PASSWORD + "\n", PATH=path)
    card = json.loads(proc.stdout)
    served = x509.load_pem_x509_certificate(ssl.get_server_certificate(("127.0.0.1", port)).encode())
    assert card["cert_sha256"] == served.fingerprint(hashes.SHA256()).hex()  # the card's is the served one
    sans = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    assert "127.0.0.1" in names and any(n.startswith("198.18.250.") for n in names), names
    padlab(home, "down")


def test_a_certificate_changed_behind_padlabs_back_is_checked_again(tmp_path, steady_addresses):
    """A no-op up trusts its last TLS check only for the very files it read: change one and it checks again."""
    import ssl

    home = tmp_path / "h"
    port = free_port()
    padlab(home, "init", "c", "--provider", "local", "--port", str(port), "--root-dir", str(tmp_path / "nb"))
    first = padlab_json(home, "up", "--password-stdin", input=PASSWORD + "\n")
    tls_dir = home / "boxes" / "c" / "etc" / "tls"
    assert json.loads((tls_dir / "checked.json").read_text())["renew_at"] > time.time()
    assert [s["changed"] for s in padlab_json(home, "up")["steps"] if s["name"] == "tls"] == [False]
    ca = (home / "ca" / "padlab-ca.pem").read_text()
    (tls_dir / "server.crt").write_text(ca)  # a valid certificate, but not this key's, nor for these names
    again = padlab_json(home, "up")
    assert [s["changed"] for s in again["steps"] if s["name"] == "tls"] == [True]
    assert again["cert_sha256"] != first["cert_sha256"]  # a newly signed one
    served = ssl.get_server_certificate(("127.0.0.1", port))
    assert "".join(served.split()) != "".join(ca.split())
    assert (tls_dir / "server.crt").read_text() != ca
    padlab(home, "down")


def test_status_changes_nothing(tmp_path):
    """status only reads: no CA, no box directory, no state appear for a profile never brought up."""
    home = tmp_path / "h"
    padlab(home, "init", "s", "--provider", "local", "--port", str(free_port()))
    before = sorted(p.relative_to(home) for p in home.rglob("*"))
    assert padlab_json(home, "status")["state"] == "new"
    padlab(home, "status")
    padlab(home, "status", "--all")
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before
