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

from .cloud_stop import StopError, call, read_key, sync

ACTION = "lambda-terminate"
PART = "lambda"  # of the request's autostop part, and of the agent's config
DEFAULT_API = "https://cloud.lambda.ai/api/v1"
BILLED = "the instance is still billed"
__all__ = ["ACTION", "BILLED", "DEFAULT_API", "PART", "StopError", "settings", "sync", "terminate"]


def _explain(status: int, body: dict, headers) -> str:
    error = body.get("error") or {}
    return ("%s %s" % (error.get("code") or "", error.get("message") or "")).strip()


def settings(raw: dict, req: dict) -> dict:
    """The agent's config part from the request's ``autostop.lambda`` (the key's file aside)."""
    return {
        "instance_id": str(raw["instance_id"]) if raw.get("instance_id") else None,
        "api_url": raw.get("api_url") or DEFAULT_API,
    }


def terminate(settings: dict) -> str:
    """Ask Lambda to terminate this instance; returns what it said. Raises StopError."""
    instance = str(settings.get("instance_id") or "")
    if not instance:
        raise StopError("no instance id in the agent's config; run `padlab up` again")
    key = read_key(settings["key_file"], "key", "lambda")
    base = str(settings.get("api_url") or DEFAULT_API)
    _, answer = call(base, "POST", "/instance-operations/terminate", key, {"instance_ids": [instance]},
                     "Lambda", _explain, "the terminate")  # fmt: skip
    done = [i.get("id") for i in (answer.get("data") or {}).get("terminated_instances") or []]
    if instance not in done:
        raise StopError("Lambda did not list instance %s as terminated" % instance)
    return "Lambda accepted the terminate of instance %s (the filesystem stays)" % instance
