"""Machine-only actions that never touch the box: `up --skip-setup` and `destroy`.

Like ``workstation``, each holds the profile's lock and records what it is
doing first, so an interrupted run is finished by running it again.
"""

from __future__ import annotations

import time
from typing import Any

from padlab import profiles, providers, state
from padlab.profiles import Profile
from padlab.providers.base import Progress


def _quiet(_: str) -> None:
    pass


def start(profile: Profile, on_stage: Progress = _quiet, over_budget: bool = False) -> dict[str, Any]:
    """Make sure the machine runs and report its address; no ssh, no bootstrap.

    No agent is set up here, so no budget deadline either: only the refusal applies.
    """
    from padlab import ledger, money

    provider = providers.get(profile)
    money.check_up(profile.name, over_budget)
    with state.action(profile.name, "starting", "up --skip-setup") as before:
        ledger.before_acting(profile.name, provider)
        machine = provider.start_machine(on_stage)
        ledger.observe(profile.name, machine, time.time(), "padlab up --skip-setup")
        phase = "running" if before.get("phase") == "running" else state.MACHINE_UP
        state.update(profile.name, phase=phase, host=machine.host, machine=machine.as_dict())
    return {
        "name": profile.name,
        "provider": profile.provider,
        "host": machine.host,
        "machine": machine.as_dict(),
    }


def destroy(profile: Profile, on_stage: Progress = _quiet) -> dict[str, Any]:
    """Delete the profile's cloud machine and everything padlab made for it; the profile stays."""
    provider = providers.get(profile)
    if not provider.info.cloud:
        provider.destroy(on_stage)  # refuses, with a fix, before the state records an attempt
    from padlab import ledger

    with state.action(profile.name, "destroying", "destroy"):
        provider.destroy(on_stage)
        ledger.observe(profile.name, {"state": "missing"}, time.time(), "padlab destroy")
        # The box, its certificate and its password are gone with the disk: start afresh.
        state.remove(profile.name)
        if profile.options.pop("machine_id", None) is not None:
            profiles.save(profile)
    return {"name": profile.name, "provider": profile.provider, "state": "destroyed"}
