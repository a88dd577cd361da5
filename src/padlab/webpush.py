"""Web Push to the panel's Home Screen app: VAPID keys, subscriptions, sending (pywebpush).

The panel's service worker subscribes with the VAPID public key and hands the
subscription to the panel, which stores it here. The VAPID private key and the
subscriptions (their auth secrets) are kept 0600 under padlab's data folder.
Nothing here runs, and pywebpush is not imported, until a subscription exists.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from padlab import paths
from padlab.errors import PadlabError
from padlab.fileio import write_atomic

# Push services want a contact; RFC 8292 allows a mailto: or https: URI.
CONTACT = "mailto:padlab-alerts@users.noreply.github.com"
TTL_S = 12 * 3600  # an alert older than half a day is no longer news


def _dir() -> Path:
    return paths.ensure_private_dir(paths.data_dir() / "push")


def _subs_path() -> Path:
    return _dir() / "subscriptions.json"


def _key_path() -> Path:
    return _dir() / "vapid-private.pem"


def vapid_private_pem() -> bytes:
    """The VAPID key pair (P-256), made on first use and kept 0600."""
    path = _key_path()
    if path.exists():
        return path.read_bytes()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_atomic(path, pem, mode=0o600)
    return pem


def application_server_key() -> str:
    """The public key the browser's pushManager.subscribe() needs (uncompressed point, base64url)."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(vapid_private_pem(), password=None)
    raw = key.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def subscriptions() -> list[dict[str, Any]]:
    try:
        return list(json.loads(_subs_path().read_text()))
    except (FileNotFoundError, ValueError):
        return []


def subscribe(sub: dict[str, Any]) -> dict[str, Any]:
    """Store a PushSubscription (its toJSON()): endpoint plus keys p256dh and auth. Idempotent."""
    import urllib.parse

    endpoint = str(sub.get("endpoint") or "")
    keys = sub.get("keys") or {}
    parts = urllib.parse.urlsplit(endpoint)
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if not (parts.scheme == "https" or (parts.scheme == "http" and loopback)) or not parts.netloc:
        raise PadlabError("a push subscription needs an https endpoint", "subscribe again from the panel")
    for name in ("p256dh", "auth"):
        try:
            base64.urlsafe_b64decode(str(keys.get(name, "")) + "==")
        except ValueError:
            raise PadlabError(
                f"the push subscription's {name} key is not base64url", "subscribe again"
            ) from None
        if not keys.get(name):
            raise PadlabError(f"the push subscription has no {name} key", "subscribe again from the panel")
    clean = {"endpoint": endpoint, "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}}
    subs = [s for s in subscriptions() if s["endpoint"] != endpoint] + [clean]
    write_atomic(_subs_path(), json.dumps(subs, indent=2), mode=0o600)
    return clean


def unsubscribe(endpoint: str) -> None:
    subs = [s for s in subscriptions() if s["endpoint"] != endpoint]
    write_atomic(_subs_path(), json.dumps(subs, indent=2), mode=0o600)


def send_all(payload: dict[str, Any]) -> list[str]:
    """Push one JSON payload to every subscription; a gone one (404/410) is dropped. Returns failures."""
    subs = subscriptions()
    if not subs:
        return []
    try:
        from pywebpush import WebPushException, webpush
    except ImportError:
        return ["web push needs pywebpush: pip install 'padlab[push]'"]

    failed = []
    vapid_private_pem()
    key = str(_key_path())
    for sub in subs:
        try:
            webpush(
                sub,
                data=json.dumps(payload),
                vapid_private_key=key,
                vapid_claims={"sub": CONTACT},
                ttl=TTL_S,
                timeout=10,
            )
        except OSError as exc:  # requests' connection errors
            failed.append(f"web push to {sub['endpoint'][:40]}…: {exc}")
        except WebPushException as exc:
            status = getattr(exc.response, "status_code", None)
            if status in (404, 410):
                unsubscribe(sub["endpoint"])
            else:
                failed.append(f"web push to {sub['endpoint'][:40]}…: {exc}")
    return failed
