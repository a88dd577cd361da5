"""Passkeys (WebAuthn, with py_webauthn) as a second way to sign in, when the panel has a DNS name.

A relying-party ID must be a domain name, never an IP address: reached at
https://192.168.1.5:8443/ the panel offers only its password and says why.
The name must be one the panel's certificate carries (`padlab panel --name`).
Credentials (public keys only) live in panel/passkeys.json, 0600.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import threading
import time
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from padlab.panel import audit, store
from padlab.panel.web import client, panel_of, render, signed_in, too_many

CHALLENGE_S = 300
RP_NAME = "padlab panel"
USER = "padlab"


NO_NAME = (
    "Passkeys need the panel's DNS name, not an IP address "
    "(a WebAuthn relying-party ID cannot be an IP): start it with `padlab panel --name NAME` "
    "and open https://NAME:PORT/."
)


def _why_not(request: Request) -> str | None:
    """Why passkeys are refused at the Host this request names; None when they work there.

    The Host header is the client's word: only the panel's own names at its own port count,
    so a page on the same name at another port (Jupyter at :8888) cannot pass as the panel.
    """
    host = request.url.hostname or ""
    try:
        ipaddress.ip_address(host)
        return NO_NAME
    except ValueError:
        pass
    panel = panel_of(request)
    if not host or (panel.names is not None and host not in panel.names):
        return NO_NAME
    if (request.url.port or 443) != panel.port:
        return f"Passkeys work only at the panel's own port: open https://{host}{_port_suffix(panel.port)}/."
    return None


def _port_suffix(port: int) -> str:
    return "" if port == 443 else f":{port}"


def rp_id(request: Request) -> str | None:
    """The host the browser used, when it is one of the panel's DNS names at its port; else None."""
    return None if _why_not(request) else request.url.hostname


def origin(request: Request) -> str:
    """The one origin a passkey may come from: the panel's name (checked by rp_id) at the panel's port."""
    return f"https://{rp_id(request)}{_port_suffix(panel_of(request).port)}"


def offer(request: Request) -> dict[str, Any]:
    """What the sign-in page says about passkeys here: usable, or why not."""
    rid = rp_id(request)
    if rid is None:
        return {"usable": False, "why": _why_not(request)}
    return {
        "usable": bool(credentials(rid)),
        "why": None
        if credentials(rid)
        else "No passkey for this name yet: sign in with the password, then add one on the Passkeys page.",
    }


# --- credentials on disk ------------------------------------------------------------------------

_lock = threading.Lock()


def _read() -> dict[str, Any]:
    try:
        return json.loads((store.panel_dir() / "passkeys.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _write(data: dict[str, Any]) -> None:
    from padlab.fileio import write_atomic

    write_atomic(store.panel_dir() / "passkeys.json", json.dumps(data, indent=2, sort_keys=True), mode=0o600)


def credentials(rid: str) -> dict[str, Any]:
    return {k: v for k, v in _read().items() if v["rp_id"] == rid}


def _user_id() -> bytes:
    """One user (the panel's owner), with a stable random handle."""
    from padlab.fileio import write_atomic

    path = store.panel_dir() / "passkey-user"
    with _lock:
        if not path.exists():
            write_atomic(path, secrets.token_bytes(32), mode=0o600)
        return path.read_bytes()


# --- challenges: one use, five minutes, kept in memory --------------------------------------------

# Anyone may ask for a sign-in challenge, so the store is capped: a few per address (a person
# has one sign-in page open, maybe two) and a total; past either, the oldest goes first.
PER_CLIENT = 8
MAX_CHALLENGES = 1000


class Challenges:
    def __init__(self, per_client: int = PER_CLIENT, total: int = MAX_CHALLENGES) -> None:
        self.per_client, self.total = per_client, total
        self._items: dict[str, tuple[float, bytes, str]] = {}  # oldest first
        self._lock = threading.Lock()

    def put(self, key: str, challenge: bytes, client: str = "") -> None:
        now = time.monotonic()
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if now - v[0] < CHALLENGE_S and k != key}
            mine = [k for k, v in self._items.items() if v[2] == client]
            for old in mine[: max(0, len(mine) - self.per_client + 1)]:
                del self._items[old]
            while len(self._items) >= self.total:
                del self._items[next(iter(self._items))]
            self._items[key] = (now, challenge, client)

    def take(self, key: str) -> bytes | None:
        with self._lock:
            item = self._items.pop(key, None)
        return item[1] if item and time.monotonic() - item[0] < CHALLENGE_S else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


_challenges = Challenges()


def _stale_login_page() -> Response:
    """The sign-in page's CSRF cookie is gone or does not match: its passkey calls are refused."""
    return JSONResponse({"error": "this sign-in page is out of date", "fix": "reload it"}, status_code=403)


def _header_csrf_ok(request: Request, expected: str | None) -> bool:
    import hmac

    sent = request.headers.get("x-csrf-token", "")
    return bool(expected) and hmac.compare_digest(sent.encode(), str(expected).encode())


def _no_name(request: Request) -> Response:
    why = _why_not(request) or ""
    if why != NO_NAME:
        error, fix = "passkeys work only at the panel's own address", why
    else:
        error, fix = "passkeys need the panel's DNS name, not an IP address", (
            "start the panel with --name NAME and open https://NAME:PORT/"
        )
    return JSONResponse({"error": error, "fix": fix}, status_code=400)


# --- registration (signed in) ---------------------------------------------------------------------


@signed_in
async def page(request: Request) -> Response:
    rid = rp_id(request)
    items = [
        {"label": v["label"], "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(v["created_at"]))}
        for v in (credentials(rid) if rid else {}).values()
    ]
    return render(request, "passkeys.html", rp_id=rid, passkeys=items, offer=offer(request))


@signed_in
async def register_options(request: Request) -> Response:
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        PublicKeyCredentialDescriptor,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    rid = rp_id(request)
    if rid is None:
        return _no_name(request)
    from webauthn.helpers import base64url_to_bytes

    options = generate_registration_options(
        rp_id=rid,
        rp_name=RP_NAME,
        user_name=USER,
        user_id=_user_id(),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(k)) for k in credentials(rid)
        ],
    )
    _challenges.put("reg:" + request.state.session["csrf"], options.challenge, client(request))
    return Response(options_to_json(options), media_type="application/json")


@signed_in
async def register(request: Request) -> Response:
    from webauthn import verify_registration_response
    from webauthn.helpers import bytes_to_base64url

    rid = rp_id(request)
    challenge = _challenges.take("reg:" + request.state.session["csrf"])
    if rid is None:
        return _no_name(request)
    body = await request.json()
    try:
        if challenge is None:
            raise ValueError("the challenge expired")
        verified = verify_registration_response(
            credential=body["credential"],
            expected_challenge=challenge,
            expected_rp_id=rid,
            expected_origin=origin(request),
            require_user_verification=True,
        )
    except Exception as exc:  # py_webauthn raises several kinds; each is a refusal here
        audit.record("passkey-add", client(request), ok=False, error=type(exc).__name__)
        return JSONResponse(
            {"error": f"the passkey was not accepted: {exc}", "fix": "try again"}, status_code=400
        )
    label = str(body.get("label") or "passkey")[:60]
    with _lock:
        data = _read()
        data[bytes_to_base64url(verified.credential_id)] = {
            "rp_id": rid,
            "public_key": bytes_to_base64url(verified.credential_public_key),
            "sign_count": verified.sign_count,
            "label": label,
            "created_at": time.time(),
        }
        _write(data)
    audit.record("passkey-add", client(request), label=label)
    return JSONResponse({"ok": True})


# --- sign-in (anonymous, with the login form's CSRF cookie) -------------------------------------


def routes(login_cookie: str, start_session: Callable[[str, str], Response]) -> list[Route]:
    async def login_options(request: Request) -> Response:
        from webauthn import generate_authentication_options, options_to_json
        from webauthn.helpers.structs import UserVerificationRequirement

        token = request.cookies.get(login_cookie)
        if not _header_csrf_ok(request, token):
            return _stale_login_page()
        rid = rp_id(request)
        if rid is None:
            return _no_name(request)
        options = generate_authentication_options(
            rp_id=rid, user_verification=UserVerificationRequirement.REQUIRED
        )
        _challenges.put("auth:" + str(token), options.challenge, client(request))
        return Response(options_to_json(options), media_type="application/json")

    async def login(request: Request) -> Response:
        from webauthn import verify_authentication_response
        from webauthn.helpers import base64url_to_bytes

        panel, who = panel_of(request), client(request)
        retry = panel.failures.retry_after(who)
        if retry:
            return too_many(request, retry, api=True)
        token = request.cookies.get(login_cookie)
        if not _header_csrf_ok(request, token):
            return _stale_login_page()
        rid = rp_id(request)
        if rid is None:
            return _no_name(request)
        challenge = _challenges.take("auth:" + str(token))
        body = await request.json()
        credential = body.get("credential") or {}
        entry = credentials(rid).get(str(credential.get("id", "")))
        retry = panel.failures.reserve(who)  # before the check: checks in flight count toward the limit
        if retry:
            return too_many(request, retry, api=True)
        verified = None
        try:
            if challenge is None or entry is None:
                raise ValueError("unknown passkey or expired challenge")
            verified = await run_in_threadpool(
                lambda: verify_authentication_response(
                    credential=credential,
                    expected_challenge=challenge,
                    expected_rp_id=rid,
                    expected_origin=origin(request),
                    credential_public_key=base64url_to_bytes(entry["public_key"]),
                    credential_current_sign_count=entry["sign_count"],
                    require_user_verification=True,
                )
            )
        except Exception as exc:  # py_webauthn raises several kinds; each is a refusal here
            audit.record("sign-in", who, ok=False, how="passkey", error=type(exc).__name__)
            return JSONResponse(
                {"error": "the passkey was not accepted", "fix": "try again, or use the password"},
                status_code=401,
            )
        finally:
            panel.failures.settle(who, verified is not None)
        with _lock:
            data = _read()
            data[credential["id"]]["sign_count"] = verified.new_sign_count
            _write(data)
        audit.record("sign-in", who, how="passkey", label=entry["label"])
        response = start_session(_safe(body.get("next")), "passkey")
        return _as_json(response)

    return [
        Route("/passkeys", page),
        Route("/passkeys/register/options", register_options, methods=["POST"]),
        Route("/passkeys/register", register, methods=["POST"]),
        Route("/passkeys/login/options", login_options, methods=["POST"]),
        Route("/passkeys/login", login, methods=["POST"]),
    ]


def _safe(value: Any) -> str:
    text = str(value or "/")
    return text if text.startswith("/") and not text.startswith("//") else "/"


def _as_json(redirect: Response) -> Response:
    """The session a redirect would set, as JSON for the script that asked: {"next": URL}."""
    out = JSONResponse({"next": redirect.headers["location"]})
    for key, value in redirect.raw_headers:
        if key == b"set-cookie":
            out.raw_headers.append((key, value))
    return out
