"""Autostop on RunPod: the pod stops itself with the API's stop and the pod's own key.

RunPod gives every pod two variables (RunPod's docs, pods/templates/environment-variables.mdx
in github.com/runpod/docs): ``RUNPOD_POD_ID`` and ``RUNPOD_API_KEY``, a *pod-scoped* API
key, and documents stopping a pod from inside it with ``POST /pods/$RUNPOD_POD_ID/stop``
(pods/manage-pods.mdx). So the box needs no key from padlab. The agent (root) reads both
from PID 1's environment (``/proc/1/environ``, readable by root only): the start command
that RunPod runs as PID 1 carries them, and nothing the Jupyter user writes can change it.

A stop wipes the container disk; padlab keeps everything on the volume at /workspace, so
Jupyter is stopped (notebooks saved) and the disks synced first. Success is recorded only
once RunPod accepted the stop; a refusal or a network failure records FAILED and that the
pod is still billed, and the next check tries again.
"""

from __future__ import annotations

from .cloud_stop import StopError, call, sync

ACTION = "runpod-stop"
PART = "runpod"  # of the request's autostop part, and of the agent's config
DEFAULT_API = "https://rest.runpod.io/v1"
BILLED = "the pod is still billed"
ENVIRON = "/proc/1/environ"
__all__ = ["ACTION", "BILLED", "DEFAULT_API", "PART", "StopError", "pod_identity", "settings", "stop", "sync"]


def pod_identity(path: str | None = None) -> tuple:
    """(pod id, pod-scoped key) from PID 1's environment. Raises StopError."""
    try:
        with open(path or ENVIRON, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise StopError("cannot read the pod's environment (%s)" % exc.strerror) from None
    env = dict(item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    pod, key = env.get(b"RUNPOD_POD_ID", b"").decode(), env.get(b"RUNPOD_API_KEY", b"").decode()
    if not pod or not key:
        raise StopError("RUNPOD_POD_ID or RUNPOD_API_KEY is missing from the pod's environment")
    return pod, key


def settings(raw: dict, req: dict) -> dict:
    """The agent's config part from the request's ``autostop.runpod``: where the API is (no key)."""
    return {"api_url": raw.get("api_url") or DEFAULT_API}


def stop(settings: dict, environ: str | None = None) -> str:
    """Ask RunPod to stop this pod; returns what it said. Raises StopError."""
    pod, key = pod_identity(environ)
    base = str(settings.get("api_url") or DEFAULT_API)
    status, answer = call(base, "POST", "/pods/%s/stop" % pod, key, None, "RunPod", what="the stop")
    if status == 404:
        raise StopError("RunPod does not know pod %s (HTTP 404)" % pod)
    if answer.get("desiredStatus") not in (None, "EXITED"):
        raise StopError("RunPod did not stop pod %s (it says %s)" % (pod, answer.get("desiredStatus")))
    return "RunPod accepted the stop of pod %s (the volume at /workspace stays)" % pod
