"""The panel's own ssh key: an iPad-only user has no ssh key to give a new workstation.

Made once (ed25519, the private half 0600 in the panel's home, ``panel/ssh/``), used as the
identity of every workstation the panel creates without one. Clouds whose API takes a key
(DigitalOcean, Lambda, RunPod, AWS) get its public half through `cloud.public_key`; where the
user must add it in the provider's console (Paperspace), the Keys page shows it to copy.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from padlab import paths
from padlab.fileio import write_atomic

NAME = "id_ed25519"
COMMENT = "padlab-panel"
_lock = threading.Lock()


def folder() -> Path:
    return paths.ensure_private_dir(paths.data_dir() / "panel" / "ssh")


def path() -> Path:
    """The private key's file (its public half beside it, ``.pub``)."""
    return folder() / NAME


def ensure() -> tuple[str, str]:
    """(private key path, public key line), making the pair the first time only."""
    with _lock:
        key = path()
        pub = key.with_name(NAME + ".pub")
        if not key.exists():
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import ed25519

            private = ed25519.Ed25519PrivateKey.generate()
            secret = private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
            )
            public = private.public_key().public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            )
            # The public half first: a key file is only ever there with its .pub beside it.
            write_atomic(pub, public.decode() + f" {COMMENT}\n", mode=0o644)
            write_atomic(key, secret.decode(), mode=0o600)
        os.chmod(key, 0o600)
        return str(key), pub.read_text().strip()
