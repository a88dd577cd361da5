"""The machine padlab runs on: always 'running', reached without ssh."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from padlab import paths
from padlab.box.system import primary_address
from padlab.profiles import Profile
from padlab.providers.base import BoxLayout, Machine, Progress

if TYPE_CHECKING:
    from padlab.transport import Transport


class LocalProvider:
    name = "local"
    manages_power = False

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    def describe(self) -> Machine:
        return Machine(state="running", host=primary_address() or "127.0.0.1", id="localhost")

    def ensure_running(self, progress: Progress) -> Machine:
        return self.describe()

    def stop(self, progress: Progress) -> Machine:
        return self.describe()

    def transport(self, machine: Machine) -> Transport:
        from padlab.transport import LocalTransport

        return LocalTransport()

    def layout(self) -> BoxLayout:
        box = paths.data_dir() / "boxes" / self.profile.name
        return BoxLayout(prefix=str(box), etc=str(box / "etc"), system=False)

    def box(self) -> Any:
        """The box program's own Layout of this machine's workstation, for reading it in-process."""
        from padlab.box import service

        layout = self.layout()
        return service.Layout(self.profile.name, layout.prefix, layout.etc, "", False)

    def after_up(self, machine: Machine, report: dict[str, Any]) -> dict[str, Any]:
        return {}
