"""TLS key and CSR on the box; run with the box venv's Python (needs cryptography).

The bootstrap calls ``python -m padlab_box.setup.keygen`` with a JSON request on
stdin. The private key is made here and never leaves the box: only a CSR goes
to the client, which signs it with padlab's CA.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

RENEW_BEFORE = datetime.timedelta(days=30)


def _san_strings(cert: x509.Certificate) -> set:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = {str(n) for n in ext.get_values_for_type(x509.DNSName)}
    names |= {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}
    return names


def _load_key(path: str):
    if os.path.exists(path):
        with open(path, "rb") as fh:
            return serialization.load_pem_private_key(fh.read(), password=None), False
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(path + ".new", path)
    return key, True


def _usable(cert: x509.Certificate, key, ca: x509.Certificate, sans: list) -> str:
    """Empty string when the certificate serves these names with this key; else why not."""
    if cert.public_key().public_numbers() != key.public_key().public_numbers():
        return "key mismatch"
    if cert.issuer != ca.subject:
        return "signed by another CA"
    try:
        cert.verify_directly_issued_by(ca)
    except Exception:
        return "signature does not verify against the CA"
    missing = set(sans) - _san_strings(cert)
    if missing:
        return "missing names: %s" % ", ".join(sorted(missing))
    not_after = cert.not_valid_after_utc
    if not_after - datetime.datetime.now(datetime.timezone.utc) < RENEW_BEFORE:
        return "expires soon"
    return ""


def _csr(key, sans: list, common_name: str) -> str:
    entries = []
    for name in sans:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .add_extension(x509.SubjectAlternativeName(entries), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def decide(req: dict) -> dict:
    """The usable certificate for these names ("ok"), or a CSR from the kept key ("need").

    Also called in-process by the client's panel (padlab/panel/certs.py) for its own certificate.
    """
    key, key_new = _load_key(req["key_path"])
    ca = x509.load_pem_x509_certificate(req["ca_pem"].encode())
    sans = req["sans"]
    candidates = []
    if req.get("new_cert_pem"):
        candidates.append(("new", req["new_cert_pem"].encode()))
    if os.path.exists(req["cert_path"]):
        with open(req["cert_path"], "rb") as fh:
            candidates.append(("current", fh.read()))
    reason = "no certificate yet"
    for origin, pem in candidates:
        cert = x509.load_pem_x509_certificate(pem)
        reason = _usable(cert, key, ca, sans)
        if not reason:
            der = cert.public_bytes(serialization.Encoding.DER)
            return {
                "status": "ok",
                "origin": origin,
                "pem": pem.decode(),
                "sha256": hashlib.sha256(der).hexdigest(),
                "renew_at": (cert.not_valid_after_utc - RENEW_BEFORE).timestamp(),
            }
    return {
        "status": "need",
        "reason": reason,
        "key_new": key_new,
        "csr": _csr(key, sans, req["common_name"]),
    }


def main() -> None:
    json.dump(decide(json.load(sys.stdin)), sys.stdout)


if __name__ == "__main__":
    main()
