"""tests/chromium_steady.py: Chromium, as the browser tests start it, loads pages while the host's addresses change.

The testbed adds and removes host-side veth addresses whenever an xdist worker makes or destroys a
machine; Chromium as it comes fails the connections it is setting up with net::ERR_NETWORK_CHANGED.
Here a veth pair comes and goes on the host, with an address, during every page load; the
server's slow TLS handshake (a loaded machine's) keeps each connection in setup long enough.
"""

from __future__ import annotations

import datetime
import http.server
import os
import shutil
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.test_browser import CHROMIUM, FLAGS, STEADY, launch
from tests.testbed.network import host_addresses_fixed

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip") or (not CHROMIUM and not os.environ.get("CI")),
    reason="needs root (a veth on the host) and Chromium",
)

LOADS = 8


def _self_signed(folder: Path) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (folder / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(folder / "c.pem"), str(folder / "k.pem")


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the handler's name)
        body = b"<html><body>loaded</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _SlowTLS(http.server.ThreadingHTTPServer):
    """Each connection's TLS handshake starts 0.3 s late: the browser's connection is still being set up."""

    context: ssl.SSLContext

    def finish_request(self, request, client_address) -> None:
        time.sleep(0.3)
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except OSError:
            return
        _Page(request, client_address, self)


def _churn(stop: threading.Event, link: str, address: str) -> None:
    """A veth pair on the host, with an address, up then deleted, again and again (what the testbed does)."""
    while not stop.is_set():
        for argv in (
            ["ip", "link", "add", link, "type", "veth", "peer", "name", link + "p"],
            ["ip", "addr", "add", address, "dev", link],
            ["ip", "link", "set", link, "up"],
        ):
            subprocess.run(argv, capture_output=True)
        time.sleep(0.1)
        subprocess.run(["ip", "link", "delete", link], capture_output=True)
        time.sleep(0.1)


def test_page_loads_survive_host_address_changes(tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    server = _SlowTLS(("127.0.0.1", 0), _Page)
    server.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.context.load_cert_chain(*_self_signed(tmp_path))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    link = f"plst{os.getpid() % 100000}"
    address = f"198.19.254.{4 * (os.getpid() % 60) + 1}/30"  # 198.19/16: the testbed's range, unused by it
    stop = threading.Event()
    churn = threading.Thread(target=_churn, args=(stop, link, address))
    # The churn is the testbed's own kind of change: tests that hold the host's addresses still
    # (a local box's certificate names every address) wait for it, as they wait for a new network.
    with host_addresses_fixed():
        churn.start()
        failed = []
        try:
            with sync_playwright() as p:
                browser = launch(p, tmp_path, [*FLAGS, "--ignore-certificate-errors"])
                page = browser.new_page()
                for _ in range(LOADS):
                    try:
                        page.goto(f"https://127.0.0.1:{server.server_port}/")
                    except Exception as exc:  # playwright's Error: what failed, not a stop
                        failed.append(str(exc).splitlines()[0])
                browser.close()
        finally:
            stop.set()
            churn.join()
            subprocess.run(["ip", "link", "delete", link], capture_output=True)
            server.shutdown()
    assert failed == [], failed
    assert Path(STEADY).stat().st_mode & 0o111  # executable in a fresh clone: Playwright starts it
