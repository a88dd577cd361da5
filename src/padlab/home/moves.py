"""Moving a profile from this home to another (`padlab remote push`): one live copy, ever.

The order is the guarantee. Under the profile's lock, the whole profile (settings, state,
ledger rows, budget, credentials) is written to one 0600 bundle, the move's recorded intent,
and taken out of this home in the same step (the ledger rows in the transaction that reads
them). Only then is it sent; the receiving home takes a move id once (`ledger.give`), so a
re-run of an interrupted move finishes it and counts each run once. A refusal from the other
home puts the profile back here from the bundle.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from padlab import paths
from padlab.errors import PadlabError
from padlab.fileio import write_atomic

FORMAT = 1


def _dir() -> Path:
    return paths.ensure_private_dir(paths.data_dir() / "moves")


def pending_path(name: str) -> Path:
    from padlab import profiles

    return _dir() / f"{profiles.check_name(name)}.json"


def pending(name: str) -> dict[str, Any] | None:
    """The bundle of a move that was started and not finished, else None."""
    try:
        return json.loads(pending_path(name).read_text())
    except FileNotFoundError:
        return None


def _credential_names(provider: str) -> list[str]:
    return [provider, f"{provider}-autostop"]


def _check_movable(profile: Any) -> None:
    from padlab import registry

    if registry.get(profile.provider).this_machine:
        raise PadlabError(
            f"{profile.name!r} is this machine ({profile.provider}): its box cannot live in another home",
            "move profiles whose box is a cloud machine or an ssh host",
        )
    for field, value in (("identity", profile.identity), ("acme_ca", profile.acme_ca)):
        if value:
            raise PadlabError(
                f"{profile.name!r} names a file on this machine ({field} = {value}) that the panel cannot read",
                f"remove it (padlab init {profile.name} --force ...) and push again",
            )


def take_out(name: str, destination: str) -> dict[str, Any]:
    """Write the move's bundle, then remove the profile from this home; a pending move's bundle as is."""
    from padlab import ledger, money, profiles, state
    from padlab.providers import credentials

    with state.locked(name):
        bundle = pending(name)
        if bundle is not None:
            if bundle["destination"] != destination:
                raise PadlabError(
                    f"{name!r} is already moving to {bundle['destination']}",
                    f"log in there (padlab remote login {bundle['destination']}) and push it again",
                )
            if profiles.exists(name) and profiles.load(name).to_toml() != bundle["profile"]:
                raise PadlabError(
                    f"a new profile {name!r} was made here while the old one was on its way to "
                    f"{bundle['destination']}",
                    f"rename the new one (padlab init OTHER ...; then remove {name}) and push again",
                )
        else:
            profile = profiles.load(name)
            _check_movable(profile)
            others = [n for n in profiles.names() if n != name]
            shared = {profiles.load(n).provider for n in others}
            creds: dict[str, str] = {}
            for cred in _credential_names(profile.provider):
                found = credentials.read_stored(cred)
                if found:
                    creds[cred] = found.value
            bundle = {
                "format": FORMAT,
                "move_id": uuid.uuid4().hex,
                "name": name,
                "destination": destination,
                "at": time.time(),
                "profile": profile.to_toml(),
                "state": state.load(name),
                "budget": money.budgets().get(name),
                "credentials": creds,
                "credentials_kept_here": profile.provider in shared,
                "was_default": profiles.exists(name) and _is_default(name),
            }

            def keep(taken: dict[str, Any]) -> None:
                # Inside the ledger's transaction: the rows leave only if the bundle holds them.
                write_atomic(pending_path(name), json.dumps(dict(bundle, ledger=taken)), mode=0o600)

            bundle["ledger"] = ledger.take(name, keep)
        _remove_here(bundle)
    return bundle


def _is_default(name: str) -> bool:
    from padlab import profiles

    try:
        return profiles.default_name() == name
    except PadlabError:
        return False


def _remove_here(bundle: dict[str, Any]) -> None:
    """The profile leaves this home (idempotent: a re-run after a crash removes what is left)."""
    from padlab import ledger, money, profiles, state
    from padlab.providers import credentials

    name = bundle["name"]
    ledger.forget(name)  # a crash between the bundle and the ledger's commit left them here
    if name in money.budgets():
        money.set_budget(name, None)
    if not bundle.get("credentials_kept_here"):
        for cred in bundle["credentials"]:
            credentials.stored_path(cred).unlink(missing_ok=True)
    profiles.remove(name)
    state.remove(name)


def finish(name: str) -> None:
    """The other home has it: the bundle (the last copy here) goes."""
    pending_path(name).unlink(missing_ok=True)


def put_back(name: str) -> None:
    """The other home refused it: the profile comes back here from the bundle."""
    bundle = pending(name)
    if bundle is not None:
        take_in(bundle)
        finish(name)


def take_in(bundle: dict[str, Any]) -> dict[str, Any]:
    """Make the bundle's profile live in this home, once per move id; the profile file comes last."""
    from padlab import ledger, money, profiles, state
    from padlab.providers import credentials

    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        raise PadlabError("not a padlab profile bundle this version reads", "update padlab on both ends")
    name = profiles.check_name(str(bundle.get("name")))
    move_id = str(bundle.get("move_id"))
    profile = profiles.Profile(name=name, **bundle["profile"]).validate()
    with state.locked(name):
        here = state.load(name) if profiles.exists(name) else None
        if here is not None:
            if here.get("moved_in") == move_id:
                return {"name": name, "moved": True, "again": True}
            raise PadlabError(
                f"this home already has a profile named {name!r}",
                "rename one of them first: padlab init NEWNAME ... on this machine, then padlab remote push NEWNAME",
            )
        for cred, value in bundle.get("credentials", {}).items():
            have = credentials.read_stored(cred)
            if have is not None and have.value != value.strip():
                raise PadlabError(
                    f"this home has another {cred} key than {name!r} uses",
                    "use the same key in both homes, or remove the other one with its profiles",
                )
        for cred, value in bundle.get("credentials", {}).items():
            credentials.store(cred, value)
        ledger.give(name, bundle.get("ledger") or {}, move_id)
        if bundle.get("budget") is not None:
            money.set_budget(name, float(bundle["budget"]))
        state.save(name, dict(bundle.get("state") or {}, moved_in=move_id))
        profiles.save(profile)
    return {"name": name, "moved": True, "again": False}
