"""Public certificates for the box's IP (Let's Encrypt by default): the client's part.

The ACME client itself runs on the box (box/setup/acme_setup.py says why); the client holds the
ACME account key, made once per client, kept 0600 and reused for every box and renewal,
and decides whether to ask at all: ``--tls padlab-ca``, an address that is not public
(with ``auto``) or a box reached by name fall back to padlab's CA with a one-line reason.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from padlab import paths
from padlab.errors import PadlabError
from padlab.fileio import write_atomic

LETSENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
MODES = ("auto", "letsencrypt", "padlab-ca")


def account_key_path() -> Path:
    return paths.data_dir() / "acme" / "account.key"


def account_key() -> str:
    """The ACME account's key (EC P-256, PEM), made on first use and kept 0600."""
    path = account_key_path()
    if path.exists():
        return path.read_text()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    paths.ensure_private_dir(path.parent)
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    write_atomic(path, pem, mode=0o600)
    return pem


def challenge_port(profile: Any) -> int | None:
    """The port a cloud's own firewall keeps open for the box's http-01 renewals, None under padlab-ca.

    Open to anywhere: Let's Encrypt validates from several places. The box renews without the
    client (its timer), so a cloud firewall cannot open it just in time; on the box itself only
    the challenge opens it, and nothing listens there outside one (box/setup/acme_client.py).
    """
    return None if (profile.tls or "auto") == "padlab-ca" else 80


def check(mode: str | None, directory: str | None, ca: str | None) -> None:
    """A profile's TLS settings, refused with how to fix them."""
    if mode is not None and mode not in MODES:
        raise PadlabError(
            f"--tls {mode!r} is not one of {', '.join(MODES)}", "padlab init NAME --tls auto --force"
        )
    if directory is not None and not directory.startswith("https://"):
        raise PadlabError(
            f"--acme-directory {directory!r} is not an https:// URL",
            f"pass the ACME directory's URL, e.g. {LETSENCRYPT}",
        )
    if ca is not None and not Path(ca).is_file():
        raise PadlabError(f"--acme-ca {ca!r} is not a file", "pass a PEM file of the ACME server's roots")


def box_fields(
    profile: Any, host: str | None, this_machine: bool
) -> tuple[dict[str, Any] | None, str | None]:
    """(the request's `acme` part, None) when the box should get a public certificate, else (None, why)."""
    mode = profile.tls or "auto"
    if mode == "padlab-ca":
        return None, "--tls padlab-ca chosen"
    if this_machine:
        return None, "Jupyter on this machine keeps padlab's CA"
    if not host:
        return None, "the box has no address yet"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return (
            None,
            f"the box is reached by name ({host}); public certificates here are for bare IP addresses",
        )
    if mode == "auto" and not ip.is_global:
        return None, f"{host} is not a public address"
    ca_pem = Path(profile.acme_ca).read_text() if profile.acme_ca else None
    return {
        "directory": profile.acme_directory or LETSENCRYPT,
        "ip": str(ip),
        "account_key_pem": account_key(),
        "ca_pem": ca_pem,
    }, None


def summary(tls: dict[str, Any] | None) -> str | None:
    """One line for status and the card."""
    if not tls:
        return None
    if tls.get("kind") == "public":
        line = "public certificate from " + _org(tls.get("issuer")) + ": no profile needed"
        if tls.get("renewal_failed"):
            line += f"; renewal failed: {tls['renewal_failed']}"
        return line
    return f"padlab's CA: {tls.get('reason') or 'chosen'}"


def _org(issuer: str | None) -> str:
    """The issuer's organisation (else its CN) from an RFC 4514 string."""
    parts = dict(p.strip().partition("=")[::2] for p in (issuer or "").split(","))
    return parts.get("O") or parts.get("CN") or issuer or "the ACME server"
