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


# The most a private key file may hold (an RSA-16384 key is under 13 KB).
MAX_KEY_BYTES = 64 * 1024


def places() -> list[Path]:
    """Where a typed key may be: the panel user's ~/.ssh and padlab's home (the panel's own key's)."""
    return [Path.home() / ".ssh", paths.data_dir()]


def checked_identity(value: str) -> str:
    """A key typed in the new-workstation form, as the file ssh will read: a private key, unencrypted
    (the panel cannot type a passphrase), with its matching ``.pub`` beside it, in ``places()``.

    Any other path on the panel host is refused before it is opened, whether it exists or not: a
    session must not make padlab read, or offer a cloud as a key, a file such as /etc/shadow.
    """
    from padlab.errors import PadlabError

    where = " or ".join(str(p) for p in places())
    fix = (
        "leave the field empty for the panel's own key (its public half is on the Keys page), "
        f"or put the private key and its .pub in {places()[0]}"
    )
    typed = Path(value.strip()).expanduser()
    if not typed.is_absolute():
        raise PadlabError(f"the ssh key must be a full path in {where}, not {value.strip()!r}", fix)
    real = typed.resolve()
    pub = real.with_name(real.name + ".pub")
    inside = [p.resolve() for p in places()]
    if not any(root in real.parents for root in inside) or not any(
        root in pub.resolve().parents for root in inside
    ):
        raise PadlabError(f"the panel takes an ssh key only from {where}, not {typed}", fix)
    if not real.is_file():
        raise PadlabError(f"no ssh key file at {typed}", fix)
    try:
        with open(real, "rb") as handle:
            secret = handle.read(MAX_KEY_BYTES + 1)
        public_line = pub.read_text().split()
    except FileNotFoundError as exc:
        missing = "its public half " + str(pub) if exc.filename == str(pub) else str(typed)
        raise PadlabError(f"no such file: {missing}", fix) from None
    except (OSError, UnicodeDecodeError):
        raise PadlabError(f"the panel cannot read the ssh key {typed} or its .pub", fix) from None
    derived = _public_of(secret) if len(secret) <= MAX_KEY_BYTES else None
    if derived is None:
        raise PadlabError(f"{typed} is not a private ssh key the panel can use (or it has a passphrase)", fix)
    if public_line[:2] != derived.split()[:2]:
        raise PadlabError(f"{pub} is not the public half of {typed}", fix)
    return str(real)


def _public_of(secret: bytes) -> str | None:
    """The OpenSSH public line of an unencrypted private key (OpenSSH or PEM), else None."""
    from cryptography.hazmat.primitives import serialization

    loaders = (
        lambda: serialization.load_ssh_private_key(secret, password=None),
        lambda: serialization.load_pem_private_key(secret, password=None),
    )
    for load in loaders:
        try:
            key = load()
            public = key.public_key().public_bytes(  # type: ignore[union-attr]
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            )
        except (ValueError, TypeError, AttributeError):
            continue
        return public.decode()
    return None
