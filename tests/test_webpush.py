"""Web Push: a subscription pointing at a local push endpoint gets a payload its keys decrypt."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from padlab import alerts, webpush
from padlab.errors import PadlabError
from tests.fakes.push_endpoints import FakePushService


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def browser_subscription(endpoint: str) -> tuple[dict, ec.EllipticCurvePrivateKey, bytes]:
    """What a browser's PushSubscription.toJSON() gives, and the keys it keeps to decrypt."""
    key = ec.generate_private_key(ec.SECP256R1())
    auth = b"0123456789abcdef"
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {"endpoint": endpoint, "keys": {"p256dh": b64(public), "auth": b64(auth)}}, key, auth


def test_an_alert_reaches_the_subscription_and_decrypts(home: Path) -> None:
    import http_ece

    with FakePushService() as service:
        sub, key, auth = browser_subscription(service.endpoint)
        webpush.subscribe(sub)
        assert alerts.send("stopping", "gpu is powering off: idle for 1 h") == []
        [msg] = service.wait(1)
    plain = http_ece.decrypt(msg.body, private_key=key, auth_secret=auth, version="aes128gcm")
    assert json.loads(plain) == {
        "title": "stopping",
        "body": "gpu is powering off: idle for 1 h",
        "tags": "warning",
    }
    # The VAPID key the panel hands the browser is the one that signed the request.
    assert f"k={webpush.application_server_key()}" in msg.headers["authorization"]
    assert (home / "push" / "vapid-private.pem").stat().st_mode & 0o777 == 0o600
    assert (home / "push" / "subscriptions.json").stat().st_mode & 0o777 == 0o600


def test_a_gone_subscription_is_dropped(home: Path) -> None:
    with FakePushService() as service:
        sub, _, _ = browser_subscription(service.endpoint + "-expired")
        webpush.subscribe(sub)
        assert webpush.send_all({"title": "t"}) == []
    assert webpush.subscriptions() == []


@pytest.mark.parametrize(
    "sub",
    [
        {"endpoint": "http://push.example/x", "keys": {"p256dh": "AA", "auth": "AA"}},
        {"endpoint": "https://push.example/x", "keys": {"auth": "AA"}},
        {"endpoint": "https://push.example/x", "keys": {"p256dh": "A!", "auth": "AA"}},
    ],
)
def test_bad_subscriptions_are_refused(home: Path, sub: dict) -> None:
    with pytest.raises(PadlabError):
        webpush.subscribe(sub)
