"""The panel's own HTTPS certificate, signed by padlab's CA like a box's, for this machine's names.

The key is made here and stays here (0600); keygen.decide is the same check and CSR a box uses.
"""

from __future__ import annotations

import socket
from pathlib import Path

from padlab import tls
from padlab.fileio import write_atomic


def names(extra: list[str] | None = None) -> list[str]:
    """This machine's hostname, its addresses (loopback included) and localhost."""
    from padlab.box.system import addresses

    host = socket.gethostname()
    fqdn = socket.getfqdn()
    found = [host, fqdn, "localhost", "127.0.0.1", "::1", *addresses(), *(extra or [])]
    return [n for n in dict.fromkeys(found) if n and n != "localhost.localdomain"]


def ensure(extra: list[str] | None = None) -> tuple[Path, Path, str]:
    """(cert path, key path, SHA-256) of a certificate valid for names(); reissued when they change."""
    from padlab.box.setup import keygen
    from padlab.panel.store import panel_dir

    directory = panel_dir()
    cert_path, key_path = directory / "panel-cert.pem", directory / "panel-key.pem"
    req = {
        "key_path": str(key_path),
        "cert_path": str(cert_path),
        "ca_pem": tls.ensure_ca(),
        "sans": names(extra),
        "common_name": f"padlab panel ({socket.gethostname()[:40]})",
    }
    out = keygen.decide(req)
    if out["status"] == "need":
        req["new_cert_pem"] = tls.sign_csr(out["csr"], req["sans"])
        out = keygen.decide(req)
        write_atomic(cert_path, out["pem"], mode=0o644)
    return cert_path, key_path, out["sha256"]
