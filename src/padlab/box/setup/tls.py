"""The box's TLS certificate: key and CSR made here, certificate signed by the client's CA."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

from ..report import BoxError
from ..service import Layout
from ..system import Host, addresses, sha256


def wanted_names(extra: list, ip_out: str | None = None) -> list:
    """Every address a user may type: box IPs, the client's name for it, hostname, loopback
    (``ip_out``: system.addresses's)."""
    names = list(extra) + addresses(ip_out) + [socket.gethostname(), "localhost", "127.0.0.1", "::1"]
    return list(dict.fromkeys(n for n in names if n))


def check(host: Host, layout: Layout, ca_pem: str, sans: list, new_cert_pem: str | None) -> dict:
    """Ask keygen (in the venv) whether the current or offered certificate fits; else get a CSR.

    Its answer for the current certificate is kept with a fingerprint of everything it read
    (key, certificate, CA, names), so a re-run with nothing changed skips starting Python
    with cryptography, until the certificate is due for renewal.
    """
    host.makedirs(layout.tls_dir, mode=0o700, owner=layout.user, root=layout.system)
    stamp = os.path.join(layout.tls_dir, "checked.json")
    if new_cert_pem is None:
        cert = current_ok(host, layout, ca_pem, sans)
        if cert is not None:
            return {"status": "ok", "origin": "current", "pem": cert.decode()}
    request = {
        "key_path": layout.key,
        "cert_path": layout.cert,
        "ca_pem": ca_pem,
        "sans": sans,
        "new_cert_pem": new_cert_pem,
        "common_name": "padlab %s" % layout.name,
    }
    argv = [os.path.join(layout.venv, "bin", "python"), "-m", "padlab_box.setup.keygen"]
    env = dict(os.environ, PYTHONPATH=layout.lib)
    as_user = host.as_user(layout.user)
    if as_user:
        argv = as_user + ["env", "PYTHONPATH=%s" % layout.lib] + argv
    proc = subprocess.run(argv, input=json.dumps(request), capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise BoxError("making the TLS key failed: %s" % tail[0], "run `padlab up` again")
    result = json.loads(proc.stdout)
    if result["status"] == "ok":
        kept = {
            "fingerprint": _fingerprint(host, layout, result["pem"].encode(), ca_pem, sans),
            "renew_at": result["renew_at"],
        }
        host.write(stamp, json.dumps(kept) + "\n", mode=0o600, owner=layout.user, root=layout.system)
    return result


def current_ok(host: Host, layout: Layout, ca_pem: str | None, sans: list) -> bytes | None:
    """The current certificate when keygen already passed it, nothing it read changed and it is not yet
    due for renewal (a cheap read: no Python with cryptography); else None."""
    if not ca_pem:  # no padlab CA sent (a box with a public certificate): nothing of its to keep
        return None
    cert = host.read(layout.cert)
    kept = _load(host.read(os.path.join(layout.tls_dir, "checked.json")))
    if (
        cert is not None
        and kept.get("fingerprint") == _fingerprint(host, layout, cert, ca_pem, sans)
        and time.time() < float(kept.get("renew_at") or 0)
    ):
        return cert
    return None


def _fingerprint(host: Host, layout: Layout, cert: bytes, ca_pem: str, sans: list) -> str:
    """Of what makes keygen's answer: the key, the certificate, the CA and the wanted names."""
    key = host.read(layout.key) or b""
    parts = [sha256(key), sha256(cert), sha256(ca_pem), json.dumps(sorted(sans)), layout.name]
    return sha256("\n".join(parts))


def _load(raw: bytes | None) -> dict:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}
