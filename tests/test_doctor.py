"""doctor against a Jupyter whose kernel websocket stops answering: a failed check, never a hang.

The server is a loopback HTTPS stand-in for the few Jupyter endpoints doctor calls (the REST
paths of jupyter_server's /api, https://jupyter-server.readthedocs.io/en/latest/developers/rest-api.html)
with a real TLS 1.3 handshake and a real RFC 6455 upgrade. Its kernel websocket goes silent in
the two ways a stuck or half-open connection does: it never answers the upgrade, or it sends the
start of a TLS record and nothing more. On the old client both hung doctor forever (websockets
joins its reader thread, blocked in a TLS read, with no timeout).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from padlab import doctor, notebook_api, tls

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


class _Silent(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "after-upgrade"
    release = threading.Event()

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, code: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/login"):
            self._send(200, b"<form>password</form>", Set_Cookie="_xsrf=x; Path=/")
        elif self.path == "/api/status":
            self._send(200, b"{}", Content_Type="application/json")
        elif self.path == "/api/kernelspecs":
            self._send(200, json.dumps({"kernelspecs": {}}).encode(), Content_Type="application/json")
        elif "/channels" in self.path:
            self._go_silent()
        else:
            self._send(404)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/login":
            self._send(302, Location="/tree", Set_Cookie="session=1; Path=/")
        elif self.path == "/api/kernels":
            self._send(201, b'{"id": "k1"}', Content_Type="application/json")
        else:
            self._send(404)

    def do_DELETE(self) -> None:
        self._send(204)

    def _go_silent(self) -> None:
        if self.mode == "after-upgrade":
            accept = hashlib.sha1((self.headers["Sec-WebSocket-Key"] + WS_GUID).encode()).digest()
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", base64.b64encode(accept).decode())
            self.end_headers()
            self.wfile.flush()
            # The header of a 64-byte TLS application record, and nothing more: a stream cut
            # mid-record, as a half-open connection leaves it.
            raw = socket.socket(fileno=os.dup(self.request.fileno()))
            raw.sendall(b"\x17\x03\x03\x00\x40")
            raw.close()
        self.release.wait(120)  # silent, with the connection open
        self.close_connection = True


@pytest.fixture
def silent_jupyter(tmp_path: Path) -> Iterator[tuple[int, str, type[_Silent]]]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "silent")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    pem = tls.sign_csr(csr.public_bytes(serialization.Encoding.PEM).decode(), ["127.0.0.1"])
    (tmp_path / "cert.pem").write_text(pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    handler = type("Handler", (_Silent,), {"release": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], str(tls.ca_cert_path()), handler
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("mode", ["after-upgrade", "no-upgrade"])
def test_a_kernel_websocket_that_stops_answering_is_a_failed_check_not_a_hang(
    home, silent_jupyter, monkeypatch, mode
):
    port, ca, handler = silent_jupyter
    handler.mode = mode
    monkeypatch.setattr(doctor, "KERNEL_TIMEOUT", 3.0, raising=False)
    monkeypatch.setattr(notebook_api, "OPEN_TIMEOUT", 3.0, raising=False)
    monkeypatch.setattr(notebook_api, "CLOSE_TIMEOUT", 2.0, raising=False)
    monkeypatch.setattr(notebook_api, "CLOSE_GRACE", 4.0, raising=False)
    found: list = []
    run = threading.Thread(target=lambda: found.extend(doctor.run("127.0.0.1", port, "pw")), daemon=True)
    run.start()
    run.join(90)  # the bounds above add up to well under this, even on a loaded machine
    assert not run.is_alive(), "doctor hung on a kernel websocket that stopped answering"
    checks = {c.name: c for c in found}
    assert checks["password login"].ok
    kernel = checks["kernel runs code"]
    assert kernel.ok is False and "\n" not in kernel.detail, kernel
    assert "in time" in kernel.detail, kernel
