"""Kernels on a workstation: list the box's Python environments, build one on demand.

The profile remembers each kernel it declared, so `up` on a re-created machine
(a DigitalOcean droplet after `down`) builds it again.
"""

from __future__ import annotations

from typing import Any, Callable

from padlab import profiles, providers, state, workstation
from padlab.errors import PadlabError
from padlab.profiles import Profile

Stage = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def _running(profile: Profile) -> Any:
    provider = providers.get(profile)
    machine = provider.describe()
    if machine.state != "running":
        raise PadlabError(
            f"the machine behind {profile.name!r} is {machine.state}", f"run `padlab up {profile.name}` first"
        )
    return provider, machine


def listing(profile: Profile, cuda: bool = True, on_stage: Stage = _quiet) -> dict[str, Any]:
    """The box's environments: name, interpreter, Python, torch, and whether torch sees CUDA."""
    provider, machine = _running(profile)
    req = workstation.request_for(profile, provider, "kernels", machine)
    req["cuda"] = cuda
    report = provider.transport(machine).call(req, lambda e: on_stage(e.get("stage", "")))
    return {"name": profile.name, "kernels": report["kernels"], "default": report["default"]}


def declaration(
    packages: list[str], requirements: str | None, python: str | None, torch_backend: str | None
) -> dict[str, Any]:
    """What to build, as the profile records it; nothing to install is refused."""
    if not packages and not (requirements or "").strip():
        raise PadlabError(
            "nothing to install", 'give packages (--packages "fastai fastbook") or a requirements file'
        )
    want: dict[str, Any] = {"packages": packages}
    if requirements:
        want["requirements"] = requirements
    if python:
        want["python"] = python
    if torch_backend:
        want["torch_backend"] = torch_backend
    return want


def create(profile: Profile, name: str, want: dict[str, Any], on_stage: Stage = _quiet) -> dict[str, Any]:
    """Build the kernel with uv on the box (a no-op when already built as asked), then remember it."""
    profiles.check_kernel(name, want)
    with state.locked(profile.name):
        provider, machine = _running(profile)
        req = workstation.request_for(profile, provider, "kernel-create", machine)
        req["kernel"] = {"name": name, "want": want}
        report = provider.transport(machine).call(req, lambda e: on_stage(e.get("stage", "")))
        if profile.kernels.get(name) != want:
            profile.kernels[name] = want
            profiles.save(profile)
    return {"name": name, "changed": report["changed"], "steps": report["steps"], "kernel": report["kernel"]}
