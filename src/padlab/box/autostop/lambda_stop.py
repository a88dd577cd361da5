"""Autostop on Lambda Cloud: the instance terminates itself, because Lambda has no stop.

A powered-off Lambda instance is still billed; only a terminate ends that. What
padlab keeps (notebooks, the Jupyter venv, kernels, its box state) is on the
persistent filesystem, which a terminate leaves alone, so `padlab up` launches a
new instance with it attached and carries on.

The agent stops Jupyter (notebooks are saved, kernels end), syncs, then asks
Lambda's API to terminate this instance (POST /instance-operations/terminate,
Lambda's public API reference, /api/v1). Success is recorded only once Lambda
accepted the request; a refusal or a network failure records FAILED and that the
instance is still billed, and the next check tries again.

The key: Lambda's API keys are not scoped, so the box holds a key that can do
anything on the account. padlab asks for a second key for this
(`padlab login lambda --autostop-token`), so it can be revoked alone. It is kept in
a file of its own, 0600 and root's (``/var/lib/padlab/agent-NAME/lambda-key``),
never in the config, argv or the log, on the instance's own disk (gone with the
instance). Who can read it: root, so the login user through sudo (Lambda's
``ubuntu``), i.e. whoever holds your ssh key (docs/providers.md).
"""

from __future__ import annotations

import json
import os

ACTION = "lambda-terminate"
DEFAULT_API = "https://cloud.lambda.ai/api/v1"
TIMEOUT = 20.0
BILLED = "the instance is still billed"


class StopError(Exception):
    """The terminate failed; its text goes to the log and the stop record, so it never holds the key."""


def read_key(path: str) -> str:
    try:
        with open(path) as fh:
            key = fh.read().strip()
    except OSError as exc:
        raise StopError("cannot read the autostop key (%s)" % exc.strerror) from None
    if not key:
        raise StopError("the autostop key file is empty; run `padlab login lambda --autostop-token`")
    return key


def terminate(settings: dict) -> str:
    """Ask Lambda to terminate this instance; returns what it said. Raises StopError."""
    import ssl
    import urllib.error
    import urllib.request

    instance = str(settings.get("instance_id") or "")
    if not instance:
        raise StopError("no instance id in the agent's config; run `padlab up` again")
    base = str(settings.get("api_url") or DEFAULT_API).rstrip("/")
    body = json.dumps({"instance_ids": [instance]}).encode()
    req = urllib.request.Request(base + "/instance-operations/terminate", data=body, method="POST")
    req.add_header("Authorization", "Bearer " + read_key(settings["key_file"]))
    req.add_header("Accept", "application/json")
    req.add_header("Content-Type", "application/json")
    try:
        ctx = ssl.create_default_context() if base.startswith("https:") else None
        with urllib.request.urlopen(req, timeout=TIMEOUT, context=ctx) as resp:
            answer = json.loads(resp.read().decode() or "{}")
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read().decode() or "{}").get("error") or {}
        except ValueError:
            error = {}
        raise StopError(
            "Lambda answered HTTP %d to the terminate: %s %s"
            % (exc.code, error.get("code") or "", error.get("message") or exc.reason)
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise StopError("cannot reach Lambda's API at %s: %s" % (base, getattr(exc, "reason", exc))) from None
    done = [i.get("id") for i in (answer.get("data") or {}).get("terminated_instances") or []]
    if instance not in done:
        raise StopError("Lambda did not list instance %s as terminated" % instance)
    return "Lambda accepted the terminate of instance %s (the filesystem stays)" % instance


def sync() -> None:
    """Flush what Jupyter wrote (to the filesystem, over NFS) before the instance goes."""
    os.sync()
