"""The box's TLS certificate: key and CSR made here, certificate signed by the client's CA."""

from __future__ import annotations

import json
import os
import socket
import subprocess

from .report import BoxError
from .service import Layout
from .system import Host, addresses


def wanted_names(extra: list) -> list:
    """Every address a user may type: box IPs, the client's name for it, hostname, loopback."""
    names = list(extra) + addresses() + [socket.gethostname(), "localhost", "127.0.0.1", "::1"]
    return list(dict.fromkeys(n for n in names if n))


def check(host: Host, layout: Layout, ca_pem: str, sans: list, new_cert_pem: str | None) -> dict:
    """Ask keygen (in the venv) whether the current or offered certificate fits; else get a CSR."""
    host.makedirs(layout.tls_dir, mode=0o700, owner=layout.user, root=layout.system)
    request = {
        "key_path": layout.key,
        "cert_path": layout.cert,
        "ca_pem": ca_pem,
        "sans": sans,
        "new_cert_pem": new_cert_pem,
        "common_name": "padlab %s" % layout.name,
    }
    argv = [os.path.join(layout.venv, "bin", "python"), "-m", "padlab_box.keygen"]
    env = dict(os.environ, PYTHONPATH=layout.lib)
    as_user = host.as_user(layout.user)
    if as_user:
        argv = as_user + ["env", "PYTHONPATH=%s" % layout.lib] + argv
    proc = subprocess.run(argv, input=json.dumps(request), capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise BoxError("making the TLS key failed: %s" % tail[0], "run `padlab up` again")
    return json.loads(proc.stdout)
