"""Providers, imported lazily so one cloud's SDK never slows another's commands.

Which providers exist, and what each can do, is in ``padlab.registry``; this
package holds their code (``base.Provider`` is the protocol they all follow).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from padlab import registry

if TYPE_CHECKING:
    from padlab.profiles import Profile
    from padlab.providers.base import Provider

NAMES = registry.NAMES


def get(profile: Profile) -> Provider:
    info = registry.get(profile.provider)
    return getattr(import_module(info.module), info.cls)(profile)
