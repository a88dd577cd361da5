"""padlab's personal CA on the client: create once, sign box CSRs, export for iPads.

The CA key never leaves this machine (mode 0600). Boxes make their own keys;
only CSRs come here. Certificates last 397 days, inside Apple's limits for
TLS server certificates, and the box asks for a new one 30 days before expiry.
"""

from __future__ import annotations

from pathlib import Path

from padlab import paths
from padlab.errors import PadlabError
from padlab.fileio import write_atomic

CERT_DAYS = 397
CA_YEARS = 10


def ca_dir() -> Path:
    return paths.data_dir() / "ca"


def ca_cert_path() -> Path:
    return ca_dir() / "padlab-ca.pem"


def ca_key_path() -> Path:
    return ca_dir() / "padlab-ca.key"


# Whether a box may make this machine create padlab's CA: yes for the CLI (the CA is made when a
# box first needs it); a panel serving a public certificate says no unless its admin allowed it
# (`padlab panel --allow-padlab-ca`), so its CA key stays off a public panel (docs/panel.md).
_may_create = {"yes": True}


def keep_ca_off(off: bool) -> None:
    """Set by the panel at start: a public panel creates no CA for a box (ca_for_box refuses)."""
    _may_create["yes"] = not off


def existing_ca() -> str | None:
    """The CA certificate PEM when the CA exists; never creates it."""
    cert_path, key_path = ca_cert_path(), ca_key_path()
    if cert_path.exists() and key_path.exists():
        return cert_path.read_text()
    return None


def ca_for_box(why: str | None) -> str:
    """The CA certificate PEM for a box that gets no public certificate (``why``: the reason),
    creating the CA only where this machine may (keep_ca_off); else a one-line refusal."""
    pem = existing_ca()
    if pem is not None:
        return pem
    if not _may_create["yes"]:
        raise PadlabError(
            f"the box got no public certificate ({why or 'no reason given'}), and this public "
            "panel keeps padlab's CA key off unless allowed",
            "make the box's address reachable from the internet on port 80 (ACME's http-01 "
            "challenge), or allow padlab's CA for workstations: run the panel with --allow-padlab-ca",
        )
    return ensure_ca()


def ensure_ca() -> str:
    """The CA certificate PEM, creating the CA on first use (only where the user asked for it,
    or a box needs it: ca_for_box)."""
    cert_path, key_path = ca_cert_path(), ca_key_path()
    if cert_path.exists() and key_path.exists():
        return cert_path.read_text()
    paths.ensure_private_dir(ca_dir())
    import datetime
    import socket

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"padlab CA ({socket.gethostname()[:40]})"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "padlab personal CA"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_atomic(key_path, key_pem, mode=0o600)
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    write_atomic(cert_path, pem, mode=0o644)
    return pem


def sign_csr(csr_pem: str, sans: list[str]) -> str:
    """Sign a box's CSR for exactly the names padlab asked for, never what the CSR claims."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ensure_ca()
    ca = x509.load_pem_x509_certificate(ca_cert_path().read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path().read_bytes(), password=None)
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    if not csr.is_signature_valid:
        raise PadlabError("the box sent a CSR with a bad signature", "run padlab up again")
    entries: list[x509.GeneralName] = []
    for name in sans:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.timezone.utc)
    cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(cn[0].value) if cn else "padlab")])
        )
        .issuer_name(ca.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(entries), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def fingerprint(pem: str) -> str:
    """SHA-256 of the certificate's DER form, as browsers show it."""
    import base64
    import hashlib

    body = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
    return hashlib.sha256(base64.b64decode(body)).hexdigest()


def handshake(host: str, port: int, timeout: float, extra_ca: str | None = None) -> None:
    """A TLS handshake that padlab's CA, a public root or extra_ca (a private ACME server's)
    must verify for host; raises OSError (ssl errors included)."""
    import socket
    import ssl

    ctx = ssl.create_default_context()
    if ca_cert_path().exists():  # none on a client whose boxes all have public certificates
        ctx.load_verify_locations(cafile=str(ca_cert_path()))
    if extra_ca:
        ctx.load_verify_locations(cafile=extra_ca)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        with ctx.wrap_socket(sock, server_hostname=host):
            pass


def pretty_fingerprint(hexdigest: str) -> str:
    return ":".join(hexdigest[i : i + 2] for i in range(0, len(hexdigest), 2)).upper()


def export(out_dir: Path) -> dict[str, str]:
    """Write the CA as .pem, .crt (DER) and an iOS/iPadOS .mobileconfig; returns the paths."""
    import base64
    import hashlib
    import plistlib
    import uuid

    pem = ensure_ca()
    der = base64.b64decode(
        "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(der).hexdigest()
    ns = uuid.UUID("5f2d7c1e-8c4b-4a8e-9d2f-1a3b5c7d9e0f")
    cert_payload = {
        "PayloadCertificateFileName": "padlab-ca.cer",
        "PayloadContent": der,
        "PayloadDescription": "Lets this device trust padlab workstations' HTTPS certificates.",
        "PayloadDisplayName": "padlab CA",
        "PayloadIdentifier": f"dev.padlab.ca.{digest[:16]}.cert",
        "PayloadType": "com.apple.security.root",
        "PayloadUUID": str(uuid.uuid5(ns, digest + "cert")).upper(),
        "PayloadVersion": 1,
    }
    profile = {
        "PayloadContent": [cert_payload],
        "PayloadDescription": "Installs padlab's personal certificate authority. "
        "Then turn on full trust in Settings > General > About > Certificate Trust Settings.",
        "PayloadDisplayName": "padlab CA",
        "PayloadIdentifier": f"dev.padlab.ca.{digest[:16]}",
        "PayloadRemovalDisallowed": False,
        "PayloadType": "Configuration",
        "PayloadUUID": str(uuid.uuid5(ns, digest)).upper(),
        "PayloadVersion": 1,
    }
    files = {
        "pem": out_dir / "padlab-ca.pem",
        "crt": out_dir / "padlab-ca.crt",
        "mobileconfig": out_dir / "padlab-ca.mobileconfig",
    }
    write_atomic(files["pem"], pem, mode=0o644)
    write_atomic(files["crt"], der, mode=0o644)
    write_atomic(files["mobileconfig"], plistlib.dumps(profile), mode=0o644)
    return {k: str(v) for k, v in files.items()}
