"""The panel's secrets on disk: its password hash, API token hashes and sessions, all 0600.

Only hashes are kept: a stolen file gives no password and no usable token.
Sessions live in a file so that a restarted panel (a service) keeps people signed in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from padlab import paths
from padlab.errors import PadlabError
from padlab.fileio import write_atomic

SESSION_S = 12 * 3600
# scrypt at n=2^14 costs ~50 ms: cheap for one sign-in, slow for a guesser that stole the file.
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_lock = threading.Lock()


def panel_dir() -> Path:
    return paths.ensure_private_dir(paths.data_dir() / "panel")


def _read(name: str) -> dict[str, Any]:
    try:
        return json.loads((panel_dir() / name).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _write(name: str, data: dict[str, Any]) -> None:
    write_atomic(panel_dir() / name, json.dumps(data, indent=2, sort_keys=True), mode=0o600)


def _scrypt(password: str, salt: bytes) -> str:
    return hashlib.scrypt(password.encode(), salt=salt, dklen=32, maxmem=64 * 1024 * 1024, **SCRYPT).hex()


# --- the panel password -------------------------------------------------------------------


def has_password() -> bool:
    return bool(_read("password.json").get("hash"))


def set_password(password: str) -> None:
    from padlab import passwords

    passwords.check(password)
    salt = secrets.token_bytes(16)
    _write("password.json", {"salt": salt.hex(), "hash": _scrypt(password, salt), "set_at": time.time()})


def check_password(password: str) -> bool:
    data = _read("password.json")
    if not data.get("hash"):
        return False
    return hmac.compare_digest(_scrypt(password, bytes.fromhex(data["salt"])), data["hash"])


# --- API tokens: shown once, stored as SHA-256 (they are random, so no slow hash is needed) ---


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


SCOPES = ("read", "start-stop", "admin")  # each includes the ones before it
SCOPE_HELP = {
    "read": "status, costs, downloads and the profile list",
    "start-stop": "read, and start, stop, keep, get",
    "admin": "start-stop, and moving profiles in (their cloud keys with them)",
}
# Tokens made before scopes existed did list, start, stop and keep: they keep exactly that.
LEGACY_SCOPE = "start-stop"


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise PadlabError(f"unknown token scope {scope!r}", f"use one of: {', '.join(SCOPES)}")
    return scope


def allows(have: str, need: str) -> bool:
    """Whether a token of scope `have` may do what needs `need` (admin > start-stop > read)."""
    return have in SCOPES and SCOPES.index(have) >= SCOPES.index(need)


def check_label(label: str) -> str:
    if not label or len(label) > 40 or not label.replace("-", "").replace("_", "").isalnum():
        raise PadlabError(
            f"invalid token label {label!r}", "use letters, digits, - and _ (e.g. ipad-shortcuts)"
        )
    return label


def add_token(label: str, scope: str = LEGACY_SCOPE) -> str:
    """A new token of that scope, returned once; only its hash is kept."""
    check_label(label)
    check_scope(scope)
    with _lock:
        tokens = _read("tokens.json")
        if label in tokens:
            raise PadlabError(
                f"a token labelled {label!r} exists", f"revoke it first: padlab panel token revoke {label}"
            )
        token = "padlab_" + secrets.token_urlsafe(32)
        tokens[label] = {"sha256": _digest(token), "created_at": time.time(), "scope": scope}
        _write("tokens.json", tokens)
    return token


def list_tokens() -> list[dict[str, Any]]:
    return [
        {"label": k, "created_at": v["created_at"], "scope": v.get("scope", LEGACY_SCOPE)}
        for k, v in sorted(_read("tokens.json").items())
    ]


def revoke_token(label: str) -> None:
    with _lock:
        tokens = _read("tokens.json")
        if label not in tokens:
            known = ", ".join(tokens) or "none"
            raise PadlabError(f"no token labelled {label!r}", f"labels: {known} (padlab panel token list)")
        del tokens[label]
        _write("tokens.json", tokens)


def rotate_token(label: str) -> str:
    """A new token for the label, the old one refused at once; the entry's other fields are kept."""
    with _lock:
        tokens = _read("tokens.json")
        if label not in tokens:
            known = ", ".join(tokens) or "none"
            raise PadlabError(f"no token labelled {label!r}", f"labels: {known} (padlab panel token list)")
        token = "padlab_" + secrets.token_urlsafe(32)
        tokens[label] = dict(tokens[label], sha256=_digest(token), rotated_at=time.time())
        _write("tokens.json", tokens)
    return token


def token_entry(token: str) -> dict[str, str] | None:
    """{"label", "scope"} of a valid token, else None; compares every entry in constant time."""
    found = None
    digest = _digest(token)
    for label, entry in _read("tokens.json").items():
        if hmac.compare_digest(digest, entry["sha256"]):
            found = {"label": label, "scope": entry.get("scope", LEGACY_SCOPE)}
    return found


def token_label(token: str) -> str | None:
    """The label of a valid token, else None."""
    entry = token_entry(token)
    return entry["label"] if entry else None


# --- sessions: a random id in the cookie, its hash here, with an expiry and a CSRF token ------


def new_session(how: str) -> tuple[str, dict[str, Any]]:
    sid = secrets.token_urlsafe(32)
    now = time.time()
    entry = {"expires": now + SESSION_S, "csrf": secrets.token_urlsafe(32), "how": how, "created": now}
    with _lock:
        sessions = {k: v for k, v in _read("sessions.json").items() if v["expires"] > now}
        sessions[_digest(sid)] = entry
        _write("sessions.json", sessions)
    return sid, entry


def session(sid: str | None) -> dict[str, Any] | None:
    if not sid:
        return None
    entry = _read("sessions.json").get(_digest(sid))
    if entry and entry["expires"] > time.time():
        return entry
    return None


def end_session(sid: str | None) -> None:
    if not sid:
        return
    with _lock:
        sessions = _read("sessions.json")
        if sessions.pop(_digest(sid), None) is not None:
            _write("sessions.json", sessions)


def end_all_sessions() -> None:
    """After a password change nobody stays signed in with the old one."""
    with _lock:
        _write("sessions.json", {})
