"""A padlab home: where profiles, state, credentials and the ledger live.

This machine, or a panel server the CLI logged in to (`padlab remote login`). The CLI's
commands call the `Home` methods of `current()` and never ask which home it is: `current()`
chooses, at this one place, between `LocalHome` (the action modules, in this process) and
`RemoteHome` (the same calls through the panel's API, `home/client.py`), as httpx chooses a
transport. The panel serves the API by calling `LocalHome` on its own machine, so both
homes run the same functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from padlab.providers.base import Progress

Event = Callable[[dict], None]


class Home(Protocol):
    """What CLI commands do with a home. Each method returns what the local action returns."""

    where: str  # "this machine", or the panel's URL

    def line(self) -> str | None:
        """One line naming a remote home (for `padlab status`); None for this machine."""

    def name_of(self, name: str | None) -> str | None:
        """The profile's name as this home resolves it, when that needs no call; else `name`."""

    def only_here(self, what: str, name: str | None = None) -> None:
        """Refuse (one line) a command that runs only against this machine's home."""

    def profiles(self) -> dict[str, Any]: ...

    def status(self, name: str | None) -> dict[str, Any]: ...

    def status_all(self) -> list[dict[str, Any]]: ...

    def prepare_up(self, name: str | None) -> dict[str, Any]:
        """{"name", "needs_password", "created"}: what `up` must ask before it starts."""

    def up(
        self,
        name: str,
        password: str | None,
        generated: bool,
        on_stage: Progress,
        over_budget: bool = False,
        move: bool = False,
        check: bool = False,
    ) -> dict[str, Any]: ...

    def down(
        self, name: str | None, on_stage: Progress, on_warning: Callable[[str], None]
    ) -> dict[str, Any]: ...

    def costs(self, name: str | None, month: str | None, reconcile: bool) -> dict[str, Any]: ...

    def get(self, name: str | None, spec: dict[str, Any], on_event: Event) -> dict[str, Any]: ...

    def downloads(self, name: str | None) -> dict[str, Any]: ...

    def passwd(
        self, name: str | None, password: str, generated: bool, on_stage: Progress
    ) -> dict[str, Any]: ...

    def kernels(self, name: str | None, cuda: bool, on_stage: Progress) -> dict[str, Any]: ...

    def kernel_create(
        self, name: str | None, kernel: str, want: dict[str, Any], on_stage: Progress
    ) -> dict[str, Any]: ...

    def autostop(
        self, name: str | None, limit: str | None, max_uptime: str | None, action: str | None
    ) -> dict[str, Any]: ...

    def keep(self, name: str | None, duration: str) -> dict[str, Any]: ...

    def budget(self, name: str | None, change: bool, value: float | None) -> dict[str, Any]: ...

    def logs(self, name: str | None, agent: bool, lines: int) -> dict[str, Any]: ...

    def set_default(self, name: str) -> dict[str, Any]: ...

    def init(
        self,
        name: str | None,
        provider: str | None,
        force: bool,
        cloud: dict[str, Any],
        fields: dict[str, Any],
    ) -> dict[str, Any]: ...

    def login(
        self, provider: str, parts: list[str], api_url: str | None, verify: bool, autostop_token: bool
    ) -> dict[str, Any]:
        """Store a provider's API key in this home; the answer never holds the key."""

    def doctor(self, name: str | None, password: str | None, host: str | None) -> dict[str, Any]:
        """{"ok", "checks"}: the client's view of the workstation, from where the home is."""

    def alert(
        self, name: str | None, ntfy: str | None, after_s: float | None, set_after: bool, test: bool
    ) -> dict[str, Any]: ...

    def start_machine(self, name: str | None, over_budget: bool, on_stage: Progress) -> dict[str, Any]:
        """`up --skip-setup`: only the machine, no setup."""

    def destroy(self, name: str, typed: str, on_stage: Progress) -> dict[str, Any]:
        """Only when `typed` is the profile's name: the confirmation travels and is checked by the home."""


def current() -> Home:
    """The home this CLI uses: the panel it logged in to, else this machine."""
    from padlab.home import config

    saved = config.load()
    if saved is None:
        from padlab.home.local import LocalHome

        return LocalHome()
    from padlab.home.client import RemoteHome

    return RemoteHome(saved)
