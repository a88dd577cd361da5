"""The panel as a system service on a fresh always-on host (issue 21 part 1; issue 19's panel half).

One module-scoped testbed machine is the host; pebble (Debian's ACME test server) runs on the
host's end of its link, as in tests/test_acme_testbed.py. From the test (the "computer"):
`padlab panel install --on panelhost` ships this padlab over ssh, installs it in root's venv on
the host from padlab's lock, makes the padlab-panel system user and service, opens only ssh and
the panel's port, and gets the panel a pebble certificate for the host's IP over http-01. Then, in
file order: Chromium at iPad size trusting only pebble's root signs in (taps, never clicks); WebKit
signs in too; the unit is hardened and runs as its own user; a re-run changes nothing and shows no
password; a forced renewal reaches the live panel without a restart; a reboot brings it back.
The time from "the host is up" to "the panel answers" is printed (`-s`) for the record.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import padlab
from tests.panel.live import ipad_context
from tests.test_acme_testbed import Pebble
from tests.test_browser import CHROMIUM, browser_home, launch

pytestmark = [
    pytest.mark.testbed,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(
        not (shutil.which("pebble") and CHROMIUM) and not os.environ.get("CI"),
        reason="needs Debian's pebble and chromium",
    ),
]

PORT = 8443
RENEW = "/var/lib/padlab/acme-_panel/venv/bin/python -I /var/lib/padlab/acme-_panel/padlab-acme"


def served(ip: str, cafile: Path) -> tuple[str, dict]:
    """SHA-256 and details of the panel's certificate, verified against `cafile` alone."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection((ip, PORT), timeout=10) as sock,
        ctx.wrap_socket(sock, server_hostname=ip) as tls,
    ):
        return hashlib.sha256(tls.getpeercert(binary_form=True) or b"").hexdigest(), tls.getpeercert() or {}


def wait_served(ip: str, cafile: Path, timeout: float, unlike: str | None = None) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            digest, _ = served(ip, cafile)
            if digest != unlike:
                return digest
        except (OSError, ssl.SSLError):
            pass
        assert time.monotonic() < deadline, f"the panel at {ip}:{PORT} did not serve a new pebble certificate"
        time.sleep(1)


def main_pid(machine) -> str:
    return machine.exec("systemctl show -p MainPID --value padlab-panel.service").stdout.strip()


@pytest.fixture(scope="module")
def host(testbed, tmp_path_factory) -> Iterator[dict]:
    machine = testbed.machine(f"ph{os.getpid() % 100000}")
    up_at = time.monotonic()  # the host is up: sshd takes logins
    work = tmp_path_factory.mktemp("panelhost")
    pebble = Pebble(machine.ip.rsplit(".", 1)[0] + ".1", work)
    try:  # pebble and the machine go even when the install fails
        root = pebble.start()
        bundle = work / "acme-ca.pem"  # pebble's listener CA and its issuing root: the ACME client's trust
        bundle.write_bytes(pebble.listener_ca.read_bytes() + root.read_bytes())
        home = work / "home"
        padlab(home, "init", "panelhost", "--provider", "ssh", "--host", f"{machine.user}@{machine.ip}",
               "--identity", str(machine.identity), "--tls", "letsencrypt",
               "--acme-directory", pebble.directory, "--acme-ca", str(bundle))  # fmt: skip
        out = padlab(home, "panel", "install", "--on", "panelhost", "--firewall", "on")
        answered = time.monotonic() - up_at
        yield {
            "machine": machine,
            "home": home,
            "pebble": pebble,
            "root": root,
            "out": out,
            "answered": answered,
        }
    finally:
        pebble.stop()
        machine.destroy()


def test_install_on_prints_url_qr_password_and_a_public_certificate(host, record_property) -> None:
    text = host["out"].stdout
    setup = re.search(r"\(restarted; ([\d.]+) s\)", text)
    record_property(
        "figure",
        f"panel host: host up to the panel answering {host['answered']:.1f} s, of which `--system` on the "
        f"host (user, firewall, root's ACME venv, pebble's certificate, unit, first answer) "
        f"{setup.group(1) if setup else '?'} s; the rest ships padlab and installs its venv from the lock",
    )
    ip = host["machine"].ip
    assert f"padlab panel: https://{ip}:{PORT}/" in text, text
    assert "▀" in text or "█" in text, text  # the QR code, in the terminal
    assert "TLS: public certificate from Pebble" in text and "no profile needed" in text, text
    found = re.search(r"Panel password \(shown once, write it down\): (\S.*)$", text, re.M)
    assert found, text
    host["password"] = found.group(1).strip()
    digest, cert = served(ip, host["root"])  # pebble's root alone verifies it
    assert ("IP Address", ip) in cert["subjectAltName"]
    host["digest"] = digest


def test_chromium_at_ipad_size_trusting_only_pebble_signs_in(host, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    url = f"https://{host['machine'].ip}:{PORT}/"
    with sync_playwright() as p:
        browser = launch(p, browser_home(tmp_path, str(host["root"])))
        context = ipad_context(browser)
        page = context.new_page()
        page.goto(url)
        assert "/login" in page.url
        assert "no profile needed" in page.locator("#tls-line").inner_text()
        page.fill("#password", host["password"])
        page.get_by_role("button", name="Sign in").tap()
        page.get_by_role("heading", name="Workstations").wait_for(timeout=30_000)
        assert "/login" not in page.url
        page.screenshot(path=str(tmp_path / "panel-host.png"), full_page=True)
        page.get_by_role("link", name="Trust padlab").tap()
        page.get_by_text("padlab's CA is not on this panel").wait_for(timeout=30_000)
        browser.close()


def test_webkit_trusting_pebble_signs_in(host, tmp_path) -> None:
    from tests.panel import test_webkit

    if not (test_webkit.DRIVER and test_webkit.MINIBROWSER and shutil.which("Xvfb")):
        pytest.skip("needs Xvfb and Debian's webkit2gtk-driver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with test_webkit.webkit(str(host["root"]), tmp_path) as driver:
        driver.get(f"https://{host['machine'].ip}:{PORT}/login")
        driver.find_element(By.ID, "password").send_keys(host["password"])
        driver.find_element(By.XPATH, "//button[normalize-space()='Sign in']").click()
        WebDriverWait(driver, 30).until(
            lambda d: d.find_elements(By.XPATH, "//h1[normalize-space()='Workstations']")
        )


def test_the_service_is_hardened_runs_as_its_own_user_and_opens_only_its_port(host) -> None:
    machine = host["machine"]
    props = machine.exec(
        "systemctl show padlab-panel.service -p User -p NoNewPrivileges -p ProtectSystem "
        "-p ReadWritePaths -p Restart -p UnitFileState -p ActiveState"
    ).stdout
    for want in ("User=padlab-panel", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "ReadWritePaths=/var/lib/padlab-panel", "Restart=on-failure",
                 "UnitFileState=enabled", "ActiveState=active"):  # fmt: skip
        assert want in props, props
    owner = machine.exec(f"ps -o user= -p {main_pid(machine)}").stdout.strip()
    assert owner == "padlab-panel"
    perms = machine.exec("stat -c '%U %a' /var/lib/padlab-panel /opt/padlab-panel/venv/bin/python3").stdout
    assert perms.split("\n")[0] == "padlab-panel 700", perms
    assert machine.exec("stat -L -c %U /opt/padlab-panel/venv/bin/padlab").stdout.strip() == "root"
    rules = machine.exec("nft list ruleset").stdout
    assert "padlab:panel:tcp:8443" in rules and "policy drop" in rules, rules
    assert "padlab:acme" not in rules and "dport 80 " not in rules, rules  # the challenge port is shut
    assert ":80 " not in machine.exec("ss -Hltn").stdout
    # padlab's CA key stays off a panel that has a public certificate.
    assert machine.exec("test -e /var/lib/padlab-panel/ca/padlab-ca.key", check=False).returncode != 0


def test_a_second_install_changes_nothing_and_shows_no_password(host) -> None:
    machine = host["machine"]
    pid = main_pid(machine)
    out = padlab(host["home"], "panel", "install", "--on", "panelhost", "--firewall", "on").stdout
    assert "Panel password: unchanged" in out and "shown once" not in out, out
    assert "(unchanged;" in out, out
    assert main_pid(machine) == pid
    assert served(machine.ip, host["root"])[0] == host["digest"]


def test_a_forced_renewal_reaches_the_live_panel_without_a_restart(host) -> None:
    machine = host["machine"]
    pid = main_pid(machine)
    machine.exec(f"{RENEW} --force", timeout=300)
    host["digest"] = wait_served(machine.ip, host["root"], 90, unlike=host["digest"])
    assert main_pid(machine) == pid


def test_a_reboot_brings_the_panel_back(host) -> None:
    machine = host["machine"]
    machine.reboot()
    assert wait_served(machine.ip, host["root"], 120) == host["digest"]


def test_two_runs_of_the_acme_client_at_once_take_turns(host) -> None:
    """The timer fires at once when enabled on a host up for over 30 s, beside the install's own
    run: without a lock both bind port 80 and one fails ("port 80 is in use")."""
    both = host["machine"].exec(
        f"{RENEW} --force >/dev/null & p=$!; {RENEW} --force >/dev/null; b=$?; wait $p; echo $? $b",
        timeout=600,
    )
    assert both.stdout.split() == ["0", "0"], both


def test_the_install_lines_run_on_the_host_itself_fall_back_to_padlabs_ca_and_say_why(
    machine, tmp_path
) -> None:
    """docs/ipad-only.md's lines in the host's browser console, a wheel of this padlab standing in
    for the package index: padlab in a venv of root's (what pipx makes), then `--system`, which
    installs the service's own venv from the lock. 198.18.X.2 is not public: padlab's CA, and why."""
    import base64

    from padlab.panel import host as panel_host

    name, data = panel_host.wheel()
    machine.exec(f"base64 -d > /root/{name}", input=base64.b64encode(data).decode())
    machine.exec("cat > /root/host-lock.txt", input=panel_host.lock_text())
    pip = "PIP_CERT=/etc/ssl/certs/ca-certificates.crt /root/padlab-cli/bin/pip install -q"
    machine.exec(
        "python3 -m venv /root/padlab-cli && "
        f"{pip} --only-binary :all: --no-binary http-ece --require-hashes -r /root/host-lock.txt && "
        f"{pip} --no-deps /root/{name}",
        timeout=600,
    )
    out = machine.exec("/root/padlab-cli/bin/padlab panel install --system", timeout=900).stdout
    assert f"padlab panel: https://{machine.ip}:{PORT}/" in out, out
    assert f"TLS: padlab's CA: {machine.ip} is not a public address" in out, out
    assert "padlab CA SHA-256:" in out and "Panel password (shown once, write it down):" in out, out
    ca = machine.exec("cat /var/lib/padlab-panel/ca/padlab-ca.pem").stdout
    (tmp_path / "ca.pem").write_text(ca)
    served(machine.ip, tmp_path / "ca.pem")  # padlab's CA (the panel's own) verifies what it serves
    assert machine.exec("stat -c %U /opt/padlab-panel/venv/bin/python3").stdout.strip() == "root"
    again = machine.exec("/root/padlab-cli/bin/padlab panel install --system", timeout=900).stdout
    assert "Panel password: unchanged" in again and "(unchanged;" in again, again
