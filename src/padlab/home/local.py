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


class LocalHome:
    where = "this machine"

    def line(self) -> str | None:
        return None

    def name_of(self, name: str | None) -> str | None:
        from padlab import profiles

        return profiles.load(name).name

    def only_here(self, what: str) -> None:
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
