"""Moving a profile from this home to another (`padlab remote push`): one live copy, ever.

The order is the guarantee. Under the profile's lock, the whole profile (settings, state,
ledger rows, budget, credentials, the ssh key padlab reaches the box with and the box's recorded
host key) is written to one 0600 bundle, the move's recorded intent,
and taken out of this home in the same step (the ledger rows in the transaction that reads
them). Only then is it sent; the receiving home takes a move id once (`ledger.give`), so a
re-run of an interrupted move finishes it and counts each run once. A refusal from the other
home puts the profile back here from the bundle.

The ssh key: a key file in padlab's own home (one `padlab init --identity` or the panel made) moves
with the profile, and leaves here unless another profile here uses it. A key of the user's own
(the profile's --identity outside padlab's home, or with none, the default ~/.ssh/id_* that ssh
and the clouds use) is never taken away: a copy goes only with `--copy-key`, and the original stays.
The receiving home keeps the key as keys/NAME/KEYFILE (0600) and points the profile at it.
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
    """The key, the box's own stop key, and the API URL the key was checked against (onboard)."""
    from padlab.onboard import KEY_URL_SUFFIX

    return [provider, f"{provider}-autostop", provider + KEY_URL_SUFFIX]


def _check_movable(profile: Any) -> None:
    from padlab import registry

    if registry.get(profile.provider).this_machine:
        raise PadlabError(
            f"{profile.name!r} is this machine ({profile.provider}): its box cannot live in another home",
            "move profiles whose box is a cloud machine or an ssh host",
        )
    if profile.acme_ca:
        raise PadlabError(
            f"{profile.name!r} names a file on this machine (acme_ca = {profile.acme_ca}) that the panel cannot read",
            f"remove it (padlab init {profile.name} --force ...) and push again",
        )


def keys_dir(name: str) -> Path:
    """Where a moved-in profile's ssh key lives in this home."""
    from padlab import profiles

    return paths.ensure_private_dir(paths.data_dir() / "keys" / profiles.check_name(name))


def _ssh_key_of(profile: Any) -> Path | None:
    """The private key ssh uses to reach the box: the profile's identity, else the first default key."""
    if profile.identity:
        return Path(profile.identity).expanduser()
    ssh = Path.home() / ".ssh"
    return next((ssh / f"id_{k}" for k in ("ed25519", "ecdsa", "rsa") if (ssh / f"id_{k}").is_file()), None)


def _in_padlab_home(path: Path) -> bool:
    root = paths.data_dir().resolve()
    return root in path.resolve().parents


def _ssh_key(profile: Any, others: list[Any], copy_key: bool) -> dict[str, Any] | None:
    """The key the panel needs to reach the box, and whether it leaves here; a user's own key only
    with copy_key (it stays here too)."""
    key = _ssh_key_of(profile)
    if key is None:
        return None
    try:
        private = key.read_text()
    except OSError as exc:
        raise PadlabError(
            f"cannot read {profile.name!r}'s ssh key {key}: {exc.strerror}",
            f"point the profile at a key you can read: padlab init {profile.name} --identity KEY --force ...",
        ) from None
    public_path = key.with_name(key.name + ".pub")
    public = public_path.read_text() if public_path.is_file() else None
    own = _in_padlab_home(key)
    if not own and not copy_key:
        raise PadlabError(
            f"{profile.name!r} reaches its box with your own ssh key {key}, which padlab does not take "
            "away from you",
            f"send a copy (yours stays here): padlab remote push {profile.name} --copy-key",
        )
    panel_keys = (
        paths.data_dir() / "panel"
    ).resolve()  # the panel's own key here serves its new workstations
    shared = own and (
        panel_keys in key.resolve().parents
        or any(o.identity and Path(o.identity).expanduser().resolve() == key.resolve() for o in others)
    )
    return {
        "file": key.name,
        "private": private,
        "public": public,
        "from": str(key),
        "leaves": own and not shared,
    }


def _host_keys(name: str) -> list[str]:
    """The box's host key as padlab recorded it, under the profile's alias."""
    from padlab import ssh

    path = ssh.known_hosts()
    return ssh._recorded(ssh.key_alias(name), path) if path.exists() else []


def take_out(name: str, destination: str, copy_key: bool = False) -> dict[str, Any]:
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
            others = [profiles.load(n) for n in profiles.names() if n != name]
            shared = {o.provider for o in others}
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
                "ssh_key": _ssh_key(profile, others, copy_key),
                "host_keys": _host_keys(name),
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
    key = bundle.get("ssh_key")
    if key and key["leaves"]:
        for path in (Path(key["from"]), Path(key["from"] + ".pub")):
            path.unlink(missing_ok=True)
    if bundle.get("host_keys"):
        from padlab import ssh

        ssh.forget_host("", None, ssh.key_alias(name))
    profiles.remove(name)
    state.remove(name)


def finish(name: str) -> None:
    """The other home has it: the bundle (the last copy here) goes."""
    pending_path(name).unlink(missing_ok=True)


def put_back(name: str) -> None:
    """The other home refused it: the profile comes back here from the bundle."""
    bundle = pending(name)
    if bundle is not None:
        take_in(bundle, back=True)
        finish(name)


def _place_key(name: str, key: dict[str, Any], back: bool) -> str:
    """The key file, atomically, 0600: as keys/NAME/FILE here, or back where it was (a refused move)."""
    if back:
        target = Path(key["from"])
        if _in_padlab_home(target):
            paths.ensure_private_dir(target.parent)
    else:
        file = Path(str(key["file"])).name
        if not file or file.startswith("."):
            raise PadlabError("the bundle's ssh key has no usable file name", "update padlab on both ends")
        target = keys_dir(name) / file
    if back and target.exists():
        return str(target)  # never overwrite a key where it was: it is still there
    if key.get("public"):
        write_atomic(target.with_name(target.name + ".pub"), str(key["public"]), mode=0o644)
    write_atomic(target, str(key["private"]), mode=0o600)
    return str(target)


def _names_only(line: Any, alias: str) -> bool:
    """A known_hosts line for this profile's alias alone (plain, or hashed as ssh hashes names):
    a bundle must not make this home trust a key for another profile's box or any other host."""
    import base64
    import hashlib
    import hmac

    if not isinstance(line, str) or "\n" in line or "\r" in line:
        return False
    fields = line.split()
    if len(fields) < 3 or fields[0].startswith("@"):
        return False
    if fields[0] == alias:
        return True
    parts = fields[0].split("|")
    if len(parts) != 4 or parts[:2] != ["", "1"]:
        return False
    try:
        salt, digest = base64.b64decode(parts[2]), base64.b64decode(parts[3])
    except ValueError:
        return False
    return hmac.compare_digest(hmac.new(salt, alias.encode(), hashlib.sha1).digest(), digest)


def _add_host_keys(name: str, lines: list[Any]) -> None:
    from padlab import ssh

    alias = ssh.key_alias(name)
    path = ssh.known_hosts()
    have = set(path.read_text().splitlines()) if path.exists() else set()
    new = [line.strip() for line in lines if _names_only(line, alias) and line.strip() not in have]
    if new:
        with path.open("a") as fh:
            fh.write("".join(line + "\n" for line in new))


def take_in(bundle: dict[str, Any], back: bool = False) -> dict[str, Any]:
    """Make the bundle's profile live in this home, once per move id; the profile file comes last.

    `back`: a refused move returns here, with its key where it was."""
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
        key = bundle.get("ssh_key")
        if isinstance(key, dict) and key.get("private"):
            identity = _place_key(name, key, back)
            if not back:
                profile.identity = identity
        if bundle.get("host_keys"):
            _add_host_keys(name, list(bundle["host_keys"]))
        ledger.give(name, bundle.get("ledger") or {}, move_id)
        if bundle.get("budget") is not None:
            money.set_budget(name, float(bundle["budget"]))
        state.save(name, dict(bundle.get("state") or {}, moved_in=move_id))
        profiles.save(profile)
    return {"name": name, "moved": True, "again": False}
