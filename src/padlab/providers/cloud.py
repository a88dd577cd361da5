"""What every cloud provider does the same way: find-or-create, start, wait, stop, remember.

A cloud module only answers questions about its API (describe, create, power
on/off, destroy). This base turns those into an ``up`` that can be interrupted
at any point and finished by running it again:

* the machine id, and the intent to create one, are written to the profile's
  state (``padlab.state``, key ``cloud``) before the API is asked to act;
* a machine is found by its recorded id, the profile's ``machine_id``, or the
  provider's tag/name for the profile, before anything is created;
* every wait polls with backoff under a deadline, and a timeout names the state
  the machine was left in.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from padlab import registry, state
from padlab.errors import PadlabError
from padlab.profiles import Profile
from padlab.providers import credentials, retry
from padlab.providers.base import Machine, Progress
from padlab.providers.http import JsonApi, base_url
from padlab.providers.remote import RemoteProvider

# Deadlines (seconds) for the slow parts; generous, because GPU machines are slow to place and boot.
CREATE_TIMEOUT = 1200.0
START_TIMEOUT = 900.0
STOP_TIMEOUT = 900.0

# The states padlab shows, whatever the cloud calls them.
RUNNING, STARTING, STOPPING, OFF, MISSING = "running", "starting", "stopping", "off", "missing"


@dataclass(frozen=True)
class BoxKey:
    """A key of its own that the box's stop needs (DigitalOcean's token, Lambda's second key).

    `padlab login NAME --autostop-token` stores it (``keep_box_key``); `up` and `autostop`
    send it in the request's provider part, and the box keeps it root's, 0600.
    """

    credential: str  # the stored credential's name
    action: str  # the registry stop that needs it
    noun: str  # "token", "API key": as the cloud calls it
    needs: str  # why an explicit limit is refused without it
    how: str  # the fix: how to get and store one


class CloudProvider(RemoteProvider):
    """Base of the cloud providers: subclasses fill in the API calls; RemoteProvider reaches the box."""

    name = "cloud"
    box_key: BoxKey | None = None  # set where the box's stop needs a key of its own

    def __init__(self, profile: Profile) -> None:
        super().__init__(profile)
        self.options: dict[str, Any] = dict(profile.options)

    # -- what each cloud implements ---------------------------------------------------

    def _get(self, machine_id: str) -> dict[str, Any] | None:
        """The cloud's record of one machine, or None when it does not exist (any more)."""
        raise NotImplementedError

    def _search(self) -> dict[str, Any] | None:
        """This profile's machine found by name or tag; two matches are an error, never a guess."""
        raise NotImplementedError

    def _machine(self, raw: dict[str, Any]) -> Machine:
        """The cloud's record as padlab's Machine."""
        raise NotImplementedError

    def _attached_may_vanish(self) -> bool:
        """Whether an attached machine that is gone was replaced by padlab's own cycle (DigitalOcean)."""
        return False

    def find(self) -> dict[str, Any] | None:
        """The id padlab recorded, else the attached --machine-id, else a search by name or tag."""
        recorded = self.memo().get("machine_id")
        if recorded:
            raw = self._get(recorded)
            if raw:
                return raw
            self.remember(machine_id=None)  # deleted outside padlab: look again
        attached = self.options.get("machine_id")
        if attached and self.memo().get("attached_gone") != str(attached):
            raw = self._get(attached)
            if raw is not None:
                return raw
            if not self._attached_may_vanish():
                raise self.not_found_attached(attached)
            self.remember(attached_gone=str(attached))
        return self._search()

    def describe(self) -> Machine:
        """The machine behind this profile now (state ``missing`` if there is none)."""
        raw = self.find()
        return self._machine(raw) if raw else self.missing()

    def _create(self, progress: Progress) -> Machine:
        """Ask the cloud for a new machine; the caller has recorded the intent."""
        raise NotImplementedError

    def _power_on(self, machine: Machine, progress: Progress) -> None:
        raise NotImplementedError

    def _power_off(self, machine: Machine, progress: Progress) -> None:
        raise NotImplementedError

    def _delete(self, machine: Machine, progress: Progress) -> None:
        """Delete the machine and what padlab made for it (disks, snapshots, firewall rules)."""
        raise NotImplementedError

    # -- remembered facts ------------------------------------------------------------------

    def memo(self) -> dict[str, Any]:
        return dict(state.load(self.profile.name).get("cloud") or {})

    def remember(self, **changes: Any) -> dict[str, Any]:
        """Merge into the profile's cloud memo; a None value forgets the key."""
        data = self.memo()
        data.update(changes)
        data = {k: v for k, v in data.items() if v is not None}
        state.update(self.profile.name, cloud=data)
        return data

    def attempt_id(self) -> str:
        """The id of the current create attempt, made once and reused until a machine is recorded."""
        memo = self.memo()
        attempt = memo.get("create_attempt")
        if not attempt:
            attempt = uuid.uuid4().hex[:16]
            self.remember(create_attempt=attempt, create_started_at=time.time())
        return attempt

    def resource_name(self) -> str:
        """The name padlab gives what it creates for this profile; also how it finds it again."""
        return str(self.options.get("machine_name") or f"padlab-{self.profile.name}")

    @property
    def label(self) -> str:
        return self.info.label

    def login_user(self) -> str | None:
        return self.profile.user or self.info.default_user

    # -- a stop the box makes with a key of its own (box_key) ------------------------------

    def autostop_ready(self) -> bool:
        return self.box_key is None or credentials.read_stored(self.box_key.credential) is not None

    def check_autostop(self, fields: dict[str, Any]) -> None:
        """An explicit limit needs the box's own key (the default one is simply off without it).

        Checked by the commands that set a limit, not when a profile is read: a key removed
        later must not make the profile unreadable; `up` then says what is missing.
        """
        key = self.box_key
        wanted = fields["idle_s"] or fields["max_uptime_s"]
        if key and wanted and fields["action"] == key.action and not self.autostop_ready():
            raise PadlabError(key.needs, key.how)

    def stored_box_key(self) -> str:
        """The box's key, for the request's provider part; its absence is one line with the fix."""
        assert self.box_key is not None
        stored = credentials.read_stored(self.box_key.credential)
        if stored is None:
            raise PadlabError(f"no autostop {self.box_key.noun} for {self.label} is stored", self.box_key.how)
        return stored.value

    # -- the flows workstation drives -----------------------------------------------------

    def ensure_running(self, progress: Progress) -> Machine:
        """Running, addressed and answering ssh: what `padlab up` needs before the bootstrap."""
        machine = self.start_machine(progress)
        progress(f"waiting for ssh on {machine.host}")
        self.wait_for_ssh(machine)
        return machine

    def start_machine(self, progress: Progress) -> Machine:
        """Running with a public address (the cloud's view; sshd may still be booting)."""
        machine = self.describe()
        created = machine.state == MISSING
        if created:
            self.attempt_id()  # the intent, on disk before the API call
            progress(f"creating {self.resource_name()} on {self.label}")
            machine = self._create(progress)
            self.remember(machine_id=machine.id, create_attempt=None, create_started_at=None)
        elif machine.id:
            self.remember(machine_id=machine.id)
        if machine.state == STOPPING:
            machine = self.wait(lambda m: m.state == OFF, "waiting for the machine to finish stopping")
        if machine.state == OFF:
            progress(f"starting {self.label} machine {machine.id or self.resource_name()}")
            self._power_on(machine, progress)
        machine = self.wait(
            lambda m: m.state == RUNNING and bool(m.host),
            "waiting for the machine to run and get a public address",
            timeout=CREATE_TIMEOUT if created else START_TIMEOUT,
            progress=progress,
        )
        if machine.id:
            self.remember(machine_id=machine.id)
        memo = self.memo()
        if (memo.get("running_id"), memo.get("running_host")) != (machine.id, machine.host):
            # A new machine, or a new address that may have belonged to another machine before.
            self.forget_host_key(machine)
            self.remember(running_host=machine.host, running_id=machine.id)
        if not memo.get("running_since"):
            self.remember(running_since=machine.started_at or time.time())
        self.remember(create_attempt=None, create_started_at=None)
        return machine

    def stop(self, progress: Progress) -> Machine:
        machine = self.describe()
        if machine.state in (RUNNING, STARTING):
            if machine.state == STARTING:
                machine = self.wait(
                    lambda m: m.state != STARTING, "waiting for the machine to finish starting"
                )
            if machine.state == RUNNING:
                progress(f"powering off {self.label} machine {machine.id}")
                self._power_off(machine, progress)
        machine = self.wait(
            lambda m: m.state in (OFF, MISSING),
            "waiting for the machine to power off",
            timeout=STOP_TIMEOUT,
            progress=progress,
        )
        self.remember(running_since=None)
        return machine

    def destroy(self, progress: Progress) -> None:
        machine = self.describe()
        if machine.state == MISSING and not machine.extra.get("leftovers"):
            state.update(self.profile.name, cloud={})
            return
        progress(f"deleting {self.label} machine {machine.id or self.resource_name()}")
        self._delete(machine, progress)
        state.update(self.profile.name, cloud={})

    def wait(
        self,
        done: Any,
        what: str,
        timeout: float = START_TIMEOUT,
        progress: Progress | None = None,
    ) -> Machine:
        """Describe until ``done(machine)``; a timeout says the state and what to run next."""
        seen: dict[str, Machine] = {}

        def check() -> tuple[bool, str]:
            seen["m"] = self.describe()
            return bool(done(seen["m"])), self._state_text(seen["m"])

        retry.wait_for(
            check,
            what,
            timeout,
            fix=f"check the machine in {self.label}'s console, then run the same padlab command again",
            progress=progress,
        )
        return seen["m"]

    def _state_text(self, machine: Machine) -> str:
        raw = machine.extra.get("provider_state")
        return f"{machine.state} ({raw})" if raw and raw != machine.state else machine.state

    def uptime_start(self, machine_state: str, started_at: float | None) -> float | None:
        """When the machine last came up: the cloud's figure, else when padlab first saw it running."""
        if machine_state != RUNNING:
            return None
        return started_at or self.memo().get("running_since")

    def missing(self, **extra: Any) -> Machine:
        return Machine(state=MISSING, extra=extra)

    def not_found_attached(self, machine_id: str) -> PadlabError:
        return PadlabError(
            f"{self.label} has no machine {machine_id} (the profile {self.profile.name!r} is attached to it)",
            f"attach another with `padlab init {self.profile.name} --provider {self.name} --machine-id ID --force`",
        )


class JsonApiProvider(CloudProvider):
    """A cloud reached through one JSON HTTPS API with a Bearer key (Paperspace, Lambda, RunPod).

    A subclass names its API (``api_label``, ``default_url``, ``url_env``, ``key_env``) and its
    ``defaults``; the client is made on first use, so `status` without a call makes none.
    """

    api_label = ""  # the cloud's name in messages: "Lambda"
    default_url = ""
    url_env = ""  # the environment variable that overrides the URL (tests, staging)
    key_env: tuple[str, ...] = ()  # where `credentials.lookup` looks besides padlab's store
    defaults: dict[str, Any] = {}  # machine_type, region, ... when the profile gives none

    def __init__(self, profile: Profile) -> None:
        super().__init__(profile)
        self._api: JsonApi | None = None

    def secret(self) -> credentials.Secret:
        return credentials.lookup(self.name, f"{self.api_label} API key", self.key_env)

    def api_url(self) -> str:
        return base_url(self.options, self.url_env, self.default_url)

    @property
    def api(self) -> JsonApi:
        if self._api is None:
            self._api = JsonApi(self.api_label, self.name, self.api_url(), self.secret())
        return self._api

    def setting(self, key: str) -> Any:
        """The profile's option, else the provider's default."""
        return self.options.get(key) or self.defaults[key]

    def region(self) -> str:
        return str(self.setting("region"))


def keep_box_key(
    key: BoxKey, value: str, main: Callable[[], credentials.Secret], check: Callable[[str], str] | None
) -> tuple[str, str]:
    """`padlab login NAME --autostop-token`: refuse padlab's own key (before any call with it),
    check the key (``check``: what the check showed; None: --no-verify), store it.

    Returns where it is stored and what the check showed.
    """
    value = value.strip()
    try:
        own = main()
    except PadlabError:
        own = None
    if own is not None and own.value == value:
        raise PadlabError(
            f"that is the {key.noun} padlab uses for up and down (from {own.source}); "
            f"the box must not hold it: give it a {key.noun} of its own",
            key.how,
        )
    note = check(value) if check is not None else "not checked (--no-verify)"
    return str(credentials.store(key.credential, value)), note


def public_key(profile: Profile, kinds: tuple[str, ...] = ("ed25519", "ecdsa", "rsa")) -> tuple[str, str]:
    """(key text, path) of the ssh public key a new machine should trust: the profile's, else the usual ones.

    ``kinds``: the default keys (``~/.ssh/id_KIND.pub``) to try, in order, for a cloud that
    takes only some types (AWS: no ECDSA). The profile's own key is returned whatever its type.
    """
    from pathlib import Path

    if profile.identity:
        candidates = [Path(profile.identity).expanduser().with_name(Path(profile.identity).name + ".pub")]
    else:
        ssh = Path.home() / ".ssh"
        candidates = [ssh / f"id_{kind}.pub" for kind in kinds]
    for path in candidates:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text:
            return text, str(path)
    raise PadlabError(
        f"no ssh public key to put on the new machine (looked in {', '.join(map(str, candidates))})",
        "create one with `ssh-keygen -t ed25519`, or point the profile's identity at your key",
    )


def configure(profile: Profile, values: dict[str, Any]) -> None:
    """Store `padlab init`'s cloud flags in the profile's options, refusing them on other providers."""
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        return
    if not registry.get(profile.provider).cloud:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        *most, last = registry.CLOUDS
        raise PadlabError(
            f"{flags} only apply to cloud providers",
            f"use --provider {', '.join(most)} or {last}, or drop them",
        )
    if "disk_size" in given and int(given["disk_size"]) < 10:
        raise PadlabError(f"--disk-size {given['disk_size']} is too small", "give at least 10 (GB)")
    if "price" in given and float(given["price"]) < 0:
        raise PadlabError("--price cannot be negative", "give USD per hour, e.g. --price 0.76")
    if "api_url" in given and not str(given["api_url"]).startswith(("https://", "http://")):
        raise PadlabError(
            f"--api-url {given['api_url']!r} is not a URL", "give e.g. https://api.paperspace.com/v1"
        )
    if "subnet" in given and profile.provider != "aws":
        raise PadlabError("--subnet is for AWS profiles", "drop it")
    profile.options.update(given)
