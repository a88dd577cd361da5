"""Providers, imported lazily so one cloud's SDK never slows another's commands."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from padlab.profiles import Profile
    from padlab.providers.base import Provider

_MODULES = {
    "local": ("padlab.providers.local", "LocalProvider"),
    "ssh": ("padlab.providers.ssh", "SshProvider"),
    "paperspace": ("padlab.providers.paperspace", "PaperspaceProvider"),
    "aws": ("padlab.providers.aws", "AwsProvider"),
    "digitalocean": ("padlab.providers.digitalocean", "DigitalOceanProvider"),
}
NAMES = tuple(_MODULES)


def get(profile: Profile) -> Provider:
    module, cls = _MODULES[profile.provider]
    return getattr(import_module(module), cls)(profile)
