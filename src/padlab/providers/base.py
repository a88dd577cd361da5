"""The Provider protocol: a provider knows its cloud's API and nothing about Jupyter.

``padlab.workstation`` asks a provider for a running machine and a transport
to reach it, then runs the same box program everywhere. The protocol declares
everything callers use; ``ProviderBase`` gives the answers most providers share,
and each provider overrides only where it differs (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

from padlab import registry

if TYPE_CHECKING:
    from padlab.profiles import Profile
    from padlab.ssh import Target
    from padlab.transport import Transport

# Receives one line per stage of a long step ("creating padlab-gpu on AWS EC2").
Progress = Callable[[str], None]


@dataclass
class Machine:
    """What a provider knows about the machine behind a profile."""

    state: str  # running | starting | stopping | off | missing | error
    host: str | None = None  # the address the user types (public IP, hostname)
    id: str | None = None
    price_per_hour: float | None = None
    price_source: str | None = None
    billed_while_down: str | None = None
    # USD per hour while the machine is off (disk, snapshot, a powered-off droplet); None: unknown.
    down_usd_per_hour: float | None = None
    started_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BoxLayout:
    """Where the workstation lives on the box, and whether system files need sudo."""

    prefix: str
    etc: str
    system: bool
    # The user Jupyter runs as (request field "user"); None lets the box choose: the login user,
    # or padlab's unprivileged padlab-jupyter where the login user is root (box/account.py).
    user: str | None = None
    # Settings of the optional box steps, sent as request fields (e.g. "mosh", "firewall").
    steps: dict[str, Any] = field(default_factory=dict)
    # The notebook folder where the provider decides it (Lambda: on the filesystem that outlives
    # the instance); None: the profile's root_dir.
    root_dir: str | None = None


class Provider(Protocol):
    name: str
    profile: Profile

    @property
    def info(self) -> registry.ProviderInfo:
        """This provider's entry in padlab.registry (manages_power, cloud, stop_actions...)."""
        ...

    @property
    def manages_power(self) -> bool:
        """True: `down` powers the machine off; False: it stops only Jupyter (a machine the user owns)."""
        ...

    def describe(self) -> Machine: ...

    def ensure_running(self, progress: Progress) -> Machine:
        """Running and reachable: ready for the box program."""
        ...

    def start_machine(self, progress: Progress) -> Machine:
        """Running with an address, nothing more (`up --skip-setup`)."""
        ...

    def stop(self, progress: Progress) -> Machine: ...

    def move(self, progress: Progress) -> None:
        """`up --move`: let go of the machine so the next start makes a new one on the same volume
        (RunPod: a pod resumed without its GPUs); a PadlabError where machines cannot move."""
        ...

    def destroy(self, progress: Progress) -> None:
        """Delete the machine and what padlab made for it; a PadlabError where there is none to delete."""
        ...

    def transport(self, machine: Machine) -> Transport: ...

    def target(self, machine: Machine) -> Target | None:
        """How to reach the box with ssh (push/pull's rsync, `padlab ssh`); None: it is this machine."""
        ...

    def connected(self, machine: Machine) -> bool:
        """Whether a box call costs milliseconds now (no new connection, no machine to wake)."""
        ...

    def layout(self) -> BoxLayout: ...

    def after_up(self, machine: Machine, report: dict[str, Any]) -> dict[str, Any]:
        """State to record after a successful `up` (e.g. ssh and mosh commands for the card)."""
        ...

    def jupyter_alive(self, machine: Machine) -> bool:
        """Cheap liveness of Jupyter on a running machine, for `padlab status`."""
        ...

    def agent_facts(self, machine: Machine, req: dict[str, Any]) -> dict[str, Any] | None:
        """The autostop agent's view of a running box (a `status` request), None when not cheap to read."""
        ...

    def autostop_ready(self) -> bool:
        """Whether this provider's own autostop stop can run (DigitalOcean: its box token is stored)."""
        ...

    def check_autostop(self, fields: dict[str, Any]) -> None:
        """Refuse, with a fix, a policy whose stop this provider cannot carry out now."""
        ...

    def autostop_fields(self, action: str, machine: Machine | None) -> dict[str, Any]:
        """Extra fields of the request's autostop part for an enabled stop of this kind."""
        ...

    def stopped_by_box(self, machine: Machine, st: dict[str, Any]) -> tuple[float, str] | None:
        """(when, why) the box stopped itself, read from the cloud where the box cannot tell (it is gone)."""
        ...

    def billing(self, resource_ids: set[str]) -> dict[str, Any] | None:
        """The cloud's own month-to-date figures for `padlab costs --reconcile`; None where it has none."""
        ...


class ProviderBase:
    """The answers most providers share; a provider overrides what it does differently."""

    name = "base"

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    @property
    def info(self) -> registry.ProviderInfo:
        return registry.get(self.name)

    @property
    def manages_power(self) -> bool:
        return self.info.manages_power

    def start_machine(self, progress: Progress) -> Machine:
        return self.ensure_running(progress)  # type: ignore[attr-defined]

    def destroy(self, progress: Progress) -> None:
        from padlab.errors import PadlabError

        raise PadlabError(
            f"{self.profile.name!r} uses the {self.name} provider, which has no machine for padlab to delete",
            "`padlab destroy` is for cloud profiles; use `padlab down` here",
        )

    def target(self, machine: Machine) -> Target | None:
        return None

    def move(self, progress: Progress) -> None:
        from padlab.errors import PadlabError

        raise PadlabError(
            f"--move is for providers whose work lives on a volume a new machine can take over (runpod); "
            f"{self.profile.name!r} uses {self.name}",
            f"drop --move: padlab up {self.profile.name}",
        )

    def autostop_ready(self) -> bool:
        return True

    def check_autostop(self, fields: dict[str, Any]) -> None:
        return None

    def autostop_fields(self, action: str, machine: Machine | None) -> dict[str, Any]:
        return {}

    def stopped_by_box(self, machine: Machine, st: dict[str, Any]) -> tuple[float, str] | None:
        return None

    def billing(self, resource_ids: set[str]) -> dict[str, Any] | None:
        return None
