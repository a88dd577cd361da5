"""This machine as the home: each method is the action module's function, called in this process.

The panel's API calls these same methods on the panel's machine, so a command gives the
same result whichever home runs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from padlab.home import Event
    from padlab.providers.base import Progress


def _quiet(_: str) -> None:
    return None


def _mask(url: str | None) -> str | None:
    """The topic is the secret: show its first characters only."""
    if not url:
        return None
    head, _, topic = url.rstrip("/").rpartition("/")
    return f"{head}/{topic[:3]}…"


class LocalHome:
    where = "this machine"

    def line(self) -> str | None:
        return None

    def name_of(self, name: str | None) -> str | None:
        from padlab import profiles

        return profiles.load(name).name

    def only_here(self, what: str, name: str | None = None) -> None:
        return None

    def profiles(self) -> dict[str, Any]:
        from padlab import profiles
        from padlab.errors import PadlabError

        known = profiles.names()
        try:
            default = profiles.default_name() if known else None
        except PadlabError:
            default = None
        return {"profiles": known, "default": default}

    def status(self, name: str | None) -> dict[str, Any]:
        from padlab import profiles, workstation

        return workstation.status(profiles.load(name))

    def status_all(self) -> list[dict[str, Any]]:
        from padlab import profiles, workstation

        return [workstation.status(profiles.load(n)) for n in profiles.names()]

    def prepare_up(self, name: str | None, create: bool = True) -> dict[str, Any]:
        """With no profile at all, `up` makes 'lab' for this machine (never on a panel's API)."""
        from padlab import profiles, workstation

        created = False
        if create and name is None and not profiles.names():
            profiles.save(profiles.Profile(name="lab", provider="local"))
            created = True
        profile = profiles.load(name)
        return {
            "name": profile.name,
            "needs_password": workstation.needs_password(profile),
            "created": created,
        }

    def up(
        self,
        name: str,
        password: str | None,
        generated: bool,
        on_stage: Progress = _quiet,
        over_budget: bool = False,
        move: bool = False,
        check: bool = False,
    ) -> dict[str, Any]:
        from padlab import profiles, workstation

        return workstation.up(
            profiles.load(name),
            password,
            generated,
            on_stage=on_stage,
            over_budget=over_budget,
            move=move,
            check=check,
        )

    def down(
        self, name: str | None, on_stage: Progress = _quiet, on_warning: Callable[[str], None] = _quiet
    ) -> dict[str, Any]:
        """A damaged profile or state file must not keep a running Jupyter up: use what is readable."""
        from padlab import profiles, state, workstation

        profile, damaged = profiles.salvage(name)
        for problem in (damaged, state.recover(profile.name)):
            if problem:
                on_warning(problem)
        return workstation.down(profile, on_stage=on_stage)

    def costs(self, name: str | None, month: str | None, reconcile: bool) -> dict[str, Any]:
        from padlab import money, profiles

        names = [profiles.load(name).name] if name else profiles.names()
        notes = money.refresh(names)
        data = money.costs(name, month)
        data["unread"] = notes
        if reconcile:
            data["reconcile"] = money.reconcile(names, data)
        return data

    def get(self, name: str | None, spec: dict[str, Any], on_event: Event) -> dict[str, Any]:
        from padlab import files, profiles

        checked = files.check_get(spec["url"], spec["to"], spec.get("sha256"), bool(spec.get("unpack")))
        return files.get(profiles.load(name), checked, on_event)

    def downloads(self, name: str | None) -> dict[str, Any]:
        from padlab import files, profiles

        return files.downloads(profiles.load(name))

    def passwd(
        self, name: str | None, password: str, generated: bool, on_stage: Progress = _quiet
    ) -> dict[str, Any]:
        from padlab import profiles, workstation

        return workstation.passwd(profiles.load(name), password, generated, on_stage=on_stage)

    def kernels(self, name: str | None, cuda: bool, on_stage: Progress = _quiet) -> dict[str, Any]:
        from padlab import kernels, profiles

        return kernels.listing(profiles.load(name), cuda=cuda, on_stage=on_stage)

    def kernel_create(
        self, name: str | None, kernel: str, want: dict[str, Any], on_stage: Progress = _quiet
    ) -> dict[str, Any]:
        from padlab import kernels, profiles

        return kernels.create(profiles.load(name), kernel, want, on_stage=on_stage)

    def autostop(
        self, name: str | None, limit: str | None, max_uptime: str | None, action: str | None
    ) -> dict[str, Any]:
        """{"name", "policy", "box", "changed"}: the policy as set (or as it is, with nothing to set)."""
        from padlab import profiles, workstation

        profile = profiles.load(name)
        return dict(workstation.set_autostop(profile, limit, max_uptime, action), name=profile.name)

    def keep(self, name: str | None, duration: str) -> dict[str, Any]:
        """{"name", "facts"}: the box's autostop view after the hold."""
        from padlab import autostop, profiles, workstation

        profile = profiles.load(name)
        facts = workstation.keep(profile, autostop.keep_seconds(duration, profile.name))
        return {"name": profile.name, "facts": facts}

    def budget(self, name: str | None, change: bool, value: float | None) -> dict[str, Any]:
        """Set NAME's budget (all profiles' with no name) when `change`, then the budgets and spend."""
        from padlab import money, profiles

        if change:
            if name is not None:
                profiles.load(name)  # an unknown profile is one line listing the known ones
            money.set_budget(name, value)
        return money.budget_view()

    def logs(self, name: str | None, agent: bool, lines: int) -> dict[str, Any]:
        from padlab import profiles, workstation

        return {"text": workstation.logs(profiles.load(name), agent, lines)}

    def set_default(self, name: str) -> dict[str, Any]:
        from padlab import profiles

        profiles.load(name)
        profiles.set_default(name)
        return {"name": name}

    def destroy(self, name: str, typed: str, on_stage: Progress = _quiet) -> dict[str, Any]:
        """Only when `typed` is the profile's name, as the CLI asks for it."""
        from padlab import machines, onboard, profiles

        profile = profiles.load(name)
        onboard.confirm_destroy(name, typed)
        return machines.destroy(profile, on_stage=on_stage)

    def init(
        self,
        name: str | None,
        provider: str | None,
        force: bool,
        cloud: dict[str, Any],
        fields: dict[str, Any],
    ) -> dict[str, Any]:
        """{"name", "path", "default"}: the profile `padlab init` made (onboard.create_profile)."""
        from padlab import onboard, profiles

        profile, path = onboard.create_profile(name, provider, force=force, cloud=cloud, **fields)
        return {"name": profile.name, "path": str(path), "default": profiles.default_name() == profile.name}

    def login(
        self, provider: str, parts: list[str], api_url: str | None, verify: bool, autostop_token: bool
    ) -> dict[str, Any]:
        """{"provider", "path"[, "checked"]}: where the key is stored, never the key."""
        from padlab import onboard

        if autostop_token:
            return onboard.store_autostop_key(provider, parts, api_url, verify=verify)
        return onboard.store_key(provider, parts, api_url, verify=verify)

    def doctor(self, name: str | None, password: str | None, host: str | None) -> dict[str, Any]:
        """`padlab doctor`'s checks, from this machine, of the profile's address (or `host`)."""
        from padlab import doctor, profiles, state
        from padlab.errors import PadlabError

        profile = profiles.load(name)
        target = host or state.load(profile.name).get("host")
        if not target:
            raise PadlabError(f"{profile.name!r} has no address yet", f"run `padlab up {profile.name}` first")
        return doctor.as_json(doctor.run(target, profile.port, password, extra_ca=profile.acme_ca))

    def alert(
        self, name: str | None, ntfy: str | None, after_s: float | None, set_after: bool, test: bool
    ) -> dict[str, Any]:
        """Where alerts go (the topic URL masked: it is the secret); set first, then a test alert."""
        from padlab import alerts, profiles
        from padlab.errors import PadlabError

        if name:
            name = profiles.load(name).name
        if set_after and name is None:
            raise PadlabError("--after needs a profile", "padlab alert NAME --after 3h")
        changing = ntfy is not None or set_after
        cfg = alerts.configure(ntfy, name, after_s if set_after else False) if changing else alerts.config()
        if test:
            failed = alerts.send("test", "a test alert from padlab", "white_check_mark")
            if failed:
                raise PadlabError("the test alert failed: " + "; ".join(failed), "check the topic URL")
        return dict(cfg, ntfy=_mask(cfg.get("ntfy")))

    def start_machine(
        self, name: str | None, over_budget: bool, on_stage: Progress = _quiet
    ) -> dict[str, Any]:
        """`up --skip-setup`: the machine runs and has an address; nothing else happens."""
        from padlab import machines, profiles

        return machines.start(profiles.load(name), on_stage=on_stage, over_budget=over_budget)
