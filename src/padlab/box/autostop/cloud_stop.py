"""What the box's cloud stops share (do_stop, lambda_stop, runpod_stop): the error, the key, one call.

Each stop asks its cloud's API to end this machine's billing with a Bearer key, over HTTPS
with the box's CA store, and records FAILED (and that the machine is still billed) when
that does not work. The key never reaches the log or the stop record: errors carry the
cloud's answer, never the request. The key files, where padlab sends one, are written by
``agent_setup.key_settings`` (0600, root's on system boxes). urllib is imported only when
a stop runs: every other check of the agent stays light.
"""

from __future__ import annotations

import json
import os


class StopError(Exception):
    """A stop (or one of its steps) failed; the text goes to the log and the stop record."""


def read_key(path: str, noun: str, login: str) -> str:
    """The key padlab sent (`padlab login LOGIN --autostop-token`), from its own file."""
    try:
        with open(path) as fh:
            key = fh.read().strip()
    except OSError as exc:
        raise StopError("cannot read the autostop %s (%s)" % (noun, exc.strerror)) from None
    if not key:
        raise StopError(
            "the autostop %s file is empty; run `padlab login %s --autostop-token`" % (noun, login)
        )
    return key


def parse(raw: bytes) -> dict:
    try:
        value = json.loads(raw.decode() or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def call(
    base: str,
    method: str,
    path: str,
    key: str,
    body=None,
    cloud: str = "the cloud",
    explain=None,
    what: str = "",
) -> tuple:
    """(status, JSON body) of one call; a 404 is returned, any other error is a StopError.

    explain(status, body, headers) is the cloud's own reading of an error answer (its
    message field, a rate limit); the default takes ``message`` or ``error``. what: the
    call in the error's words ("the stop"), else METHOD PATH.
    """
    import ssl
    import urllib.error
    import urllib.request

    base = base.rstrip("/")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + key)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        ctx = ssl.create_default_context() if base.startswith("https:") else None
        with urllib.request.urlopen(req, timeout=20.0, context=ctx) as resp:
            return resp.status, parse(resp.read())
    except urllib.error.HTTPError as exc:
        answer = parse(exc.read())
        if exc.code == 404:
            return 404, answer
        text = (explain or _message)(exc.code, answer, exc.headers) or exc.reason
        what = what or "%s %s" % (method, path)
        raise StopError("%s answered HTTP %d to %s: %s" % (cloud, exc.code, what, text)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StopError("cannot reach %s's API at %s: %s" % (cloud, base, reason)) from None


def _message(status: int, body: dict, headers) -> str:
    return str(body.get("message") or body.get("error") or "")


def sync() -> None:
    """Flush what Jupyter wrote before the machine (or its disk) goes."""
    os.sync()
