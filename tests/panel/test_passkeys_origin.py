"""A passkey assertion counts only from the panel's own origin (its names at its own port),
whatever Host header a request carries. A software authenticator (P-256, as a platform
authenticator signs) makes real assertions that py_webauthn verifies.

Chromium's virtual authenticator (test_passkeys.py) cannot sign for another port of the same
name without a second server; here the attacker's request is made directly.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

NAME, PORT, OTHER = "panel.test", 8443, 8888
SESSION = "__Host-padlab-session"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Authenticator:
    """One resident P-256 credential for NAME, stored in the panel as if registered."""

    def __init__(self) -> None:
        import cbor2

        self.key = ec.generate_private_key(ec.SECP256R1())
        numbers = self.key.public_key().public_numbers()
        self.cose = cbor2.dumps(
            {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        )
        self.id = b64(b"credential-for-" + NAME.encode())
        self.count = 0

    def register(self) -> None:
        from padlab.panel import passkeys

        passkeys._write(
            {
                self.id: {
                    "rp_id": NAME,
                    "public_key": b64(self.cose),
                    "sign_count": 0,
                    "label": "iPad",
                    "created_at": 0,
                }
            }
        )

    def assert_for(self, challenge: str, origin: str) -> dict:
        """What navigator.credentials.get() returns to a page at `origin` (rpId NAME)."""
        self.count += 1
        client_data = json.dumps(
            {"type": "webauthn.get", "challenge": challenge, "origin": origin, "crossOrigin": False}
        ).encode()
        auth_data = hashlib.sha256(NAME.encode()).digest() + bytes([0x05]) + self.count.to_bytes(4, "big")
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(client_data),
                "authenticatorData": b64(auth_data),
                "signature": b64(signature),
                "userHandle": b64(b"user"),
            },
        }


@pytest.fixture
def app(panel_home):
    from padlab.panel.app import create_app
    from padlab.panel.web import Panel

    return create_app(Panel(cache_s=0, names=[NAME], port=PORT))


def client_at(app, port: int):
    from starlette.testclient import TestClient

    return TestClient(app, base_url=f"https://{NAME}:{port}")


def challenge_at(client, token: str):
    headers = {"X-CSRF-Token": token, "Cookie": f"__Host-padlab-login={token}"}
    return client.post("/passkeys/login/options", headers=headers)


def sign_in(client, token: str, credential: dict):
    headers = {"X-CSRF-Token": token, "Cookie": f"__Host-padlab-login={token}"}
    return client.post("/passkeys/login", headers=headers, json={"credential": credential})


def test_a_passkey_from_the_panels_own_origin_signs_in(app):
    authenticator = Authenticator()
    authenticator.register()
    with client_at(app, PORT) as c:
        challenge = challenge_at(c, "t1").json()["challenge"]
        ok = sign_in(c, "t1", authenticator.assert_for(challenge, f"https://{NAME}:{PORT}"))
    assert ok.status_code == 200, ok.text
    assert SESSION in ok.headers.get("set-cookie", "")


def test_a_passkey_made_by_a_page_at_another_port_is_refused(app):
    """Jupyter at :8888 on the same name gets an assertion for NAME; it must not open the panel."""
    authenticator = Authenticator()
    authenticator.register()
    evil = f"https://{NAME}:{OTHER}"
    # Sent with the other port in Host, as a page there would: refused whatever the origin says.
    with client_at(app, PORT) as c:
        challenge = challenge_at(c, "t2").json()["challenge"]
    with client_at(app, OTHER) as c:
        refused = sign_in(c, "t2", authenticator.assert_for(challenge, evil))
        assert refused.status_code in (400, 401) and SESSION not in refused.headers.get("set-cookie", "")
        assert challenge_at(c, "t3").status_code == 400
        assert f":{PORT}/" in c.get("/login").text  # the page says where passkeys work
    # Sent to the panel's own Host with the other port's origin: the origin does not match.
    with client_at(app, PORT) as c:
        challenge = challenge_at(c, "t4").json()["challenge"]
        refused = sign_in(c, "t4", authenticator.assert_for(challenge, evil))
        assert refused.status_code == 401 and SESSION not in refused.headers.get("set-cookie", "")
