"""Local receivers for alerts: an ntfy-compatible topic server and a Web Push service endpoint.

ntfy (https://docs.ntfy.sh/publish/): POST or PUT to /TOPIC, the message is the
body, headers Title, Tags and Priority; it answers with the message as JSON.
A push service (RFC 8030) takes a POST to the subscription's endpoint with an
aes128gcm body (RFC 8291), a TTL header and a VAPID Authorization header
(RFC 8292), and answers 201. Both record what they received; ``wait`` blocks
until a message arrives (the agent sends from another machine, at its own time).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOPIC_RE = re.compile(r"^/[A-Za-z0-9_-]{1,64}$")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class _Receiver:
    """A threaded HTTP server that records POSTs; subclasses decide what a valid one is."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.received: list[Received] = []
        self._cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                status, answer = outer.handle(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_PUT = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self._server.server_address[1]
        self.host = host
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        raise NotImplementedError

    def record(self, item: Received) -> None:
        with self._cond:
            self.received.append(item)
            self._cond.notify_all()

    def wait(self, count: int = 1, timeout: float = 60.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{count} message(s) expected, {len(self.received)} arrived")
                self._cond.wait(left)
            return list(self.received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):  # noqa: ANN204
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class FakeNtfy(_Receiver):
    """``with FakeNtfy(host) as ntfy: url = ntfy.topic_url(address)``; ``ntfy.wait()`` for messages."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.topic = "padlab-" + secrets.token_hex(8)

    def topic_url(self, address: str | None = None) -> str:
        return f"http://{address or self.host}:{self.port}/{self.topic}"

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if not TOPIC_RE.match(path):
            return 404, {"code": 40401, "http": 404, "error": "page not found"}
        if path[1:] != self.topic:
            return 403, {"code": 40301, "http": 403, "error": "forbidden"}  # a topic reserved by others
        self.record(Received(path, headers, body))
        return 200, {
            "id": secrets.token_hex(6),
            "time": int(time.time()),
            "event": "message",
            "topic": self.topic,
            "title": headers.get("title"),
            "message": body.decode("utf-8"),
        }


class FakePushService(_Receiver):
    """A push service endpoint: ``endpoint`` for a subscription; checks the RFC 8030/8291/8292 headers."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1")
        self.endpoint = f"http://127.0.0.1:{self.port}/push/{secrets.token_urlsafe(16)}"

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if not self.endpoint.endswith(path):
            return 404, {"error": "unknown subscription"}
        if not self.vapid_ok(headers.get("authorization", "")):
            return 401, {"error": "VAPID authorization required"}
        if headers.get("content-encoding") != "aes128gcm" or "ttl" not in headers:
            return 400, {"error": "aes128gcm body and TTL required"}
        self.record(Received(path, headers, body))
        return 201, {}

    def vapid_ok(self, auth: str) -> bool:
        """RFC 8292: 'vapid t=JWT, k=KEY'; the JWT is ES256-signed by KEY, for this origin, not expired."""
        import base64

        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        def unb64(text: str) -> bytes:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

        scheme, _, rest = auth.partition(" ")
        params = dict(p.strip().split("=", 1) for p in rest.split(",") if "=" in p)
        if scheme.lower() != "vapid" or not {"t", "k"} <= set(params):
            return False
        try:
            head, claims, sig = params["t"].split(".")
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(params["k"]))
            raw = unb64(sig)
            der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
            key.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
            body = json.loads(unb64(claims))
        except (ValueError, InvalidSignature):
            return False
        origin = self.endpoint.split("/push/")[0]
        return body.get("aud") == origin and int(body.get("exp", 0)) > time.time() and "sub" in body
