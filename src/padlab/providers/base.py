"""The Provider protocol: a provider knows its cloud's API and nothing about Jupyter.

``padlab.workstation`` asks a provider for a running machine and a transport
to reach it, then runs the same box program everywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from padlab.transport import Transport

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
    user: str | None = None
    # Settings of the optional box steps, sent as request fields (e.g. "mosh", "firewall").
    steps: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    name: str
    # False: `down` stops only Jupyter (a machine the user owns); True: it powers the machine off.
    manages_power: bool

    def describe(self) -> Machine: ...

    def ensure_running(self, progress: Progress) -> Machine: ...

    def stop(self, progress: Progress) -> Machine: ...

    def transport(self, machine: Machine) -> Transport: ...

    def layout(self) -> BoxLayout: ...

    def after_up(self, machine: Machine, report: dict[str, Any]) -> dict[str, Any]:
        """State to record after a successful `up` (e.g. ssh and mosh commands for the card)."""
        ...
