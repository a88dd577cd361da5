"""padlab's CA: private key mode, CA constraints, CSR signing and the iPad profile."""

from __future__ import annotations

import plistlib
import stat

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from padlab import tls


def make_csr(names: list[str]) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "box")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_ca_is_created_once_with_a_private_key(home):
    pem = tls.ensure_ca()
    assert tls.ensure_ca() == pem
    assert stat.S_IMODE(tls.ca_key_path().stat().st_mode) == 0o600
    assert stat.S_IMODE(tls.ca_dir().stat().st_mode) == 0o700
    ca = x509.load_pem_x509_certificate(pem.encode())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_signed_certificate_has_exactly_the_requested_names(home):
    ca = x509.load_pem_x509_certificate(tls.ensure_ca().encode())
    # The CSR asks for a name padlab did not choose: it must not appear in the certificate.
    pem = tls.sign_csr(make_csr(["evil.example"]), ["198.18.0.2", "box", "localhost", "127.0.0.1"])
    cert = x509.load_pem_x509_certificate(pem.encode())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = {str(v) for v in san.get_values_for_type(x509.DNSName)} | {
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    }
    assert names == {"198.18.0.2", "box", "localhost", "127.0.0.1"}
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    validity = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert validity.days <= 398  # within Apple's limit for TLS server certificates


def test_export_writes_pem_crt_and_mobileconfig(home, tmp_path):
    files = tls.export(tmp_path / "out")
    pem = (tmp_path / "out" / "padlab-ca.pem").read_text()
    der = (tmp_path / "out" / "padlab-ca.crt").read_bytes()
    assert x509.load_der_x509_certificate(der) == x509.load_pem_x509_certificate(pem.encode())
    profile = plistlib.loads((tmp_path / "out" / "padlab-ca.mobileconfig").read_bytes())
    assert profile["PayloadType"] == "Configuration"
    (payload,) = profile["PayloadContent"]
    assert payload["PayloadType"] == "com.apple.security.root"
    assert payload["PayloadContent"] == der
    assert set(files) == {"pem", "crt", "mobileconfig"}
    # The same CA exports the same profile (same UUIDs), so re-installing replaces it.
    tls.export(tmp_path / "again")
    assert (tmp_path / "again" / "padlab-ca.mobileconfig").read_bytes() == (
        tmp_path / "out" / "padlab-ca.mobileconfig"
    ).read_bytes()


def test_fingerprint_matches_cryptography(home):
    pem = tls.ensure_ca()
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert tls.fingerprint(pem) == cert.fingerprint(hashes.SHA256()).hex()
    assert tls.pretty_fingerprint("abcd") == "AB:CD"
