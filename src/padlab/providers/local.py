"""The machine padlab runs on: always 'running', reached without ssh, read in-process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from padlab import paths
from padlab.box.system import login_user, primary_address
from padlab.providers.base import BoxLayout, Machine, Progress, ProviderBase

if TYPE_CHECKING:
    from padlab.transport import Transport


class LocalProvider(ProviderBase):
    name = "local"

    def describe(self) -> Machine:
        return Machine(state="running", host=primary_address() or "127.0.0.1", id="localhost")

    def ensure_running(self, progress: Progress) -> Machine:
        return self.describe()

    def stop(self, progress: Progress) -> Machine:
        return self.describe()

    def transport(self, machine: Machine) -> Transport:
        from pathlib import Path

        from padlab.transport import LocalTransport

        # PADLAB_HOME, boxes/ and boxes/NAME are 0700 before the box program writes into them.
        paths.ensure_private_dir(Path(self.layout().prefix))
        return LocalTransport()

    def connected(self, machine: Machine) -> bool:
        return True

    def layout(self) -> BoxLayout:
        box = paths.data_dir() / "boxes" / self.profile.name
        return BoxLayout(prefix=str(box), etc=str(box / "etc"), system=False)

    def box(self) -> Any:
        """The box program's own Layout of this machine's workstation, for reading it in-process."""
        from padlab.box import service

        layout = self.layout()
        return service.Layout(self.profile.name, layout.prefix, layout.etc, login_user(), False)

    def after_up(self, machine: Machine, report: dict[str, Any]) -> dict[str, Any]:
        return {}

    def jupyter_alive(self, machine: Machine) -> bool:
        """The pidfile, read in-process: no network, no subprocess."""
        from padlab.box import service
        from padlab.box.system import Host

        return service.read_pid(Host(sudo=False), self.box()) is not None

    def agent_facts(self, machine: Machine, req: dict[str, Any]) -> dict[str, Any] | None:
        """Read in-process (the box program is stdlib only); nothing to ask when autostop is off."""
        fields = req["autostop"]
        if not (fields["idle_s"] or fields["max_uptime_s"]):
            return {"summary": "off", "decision": None, "last_stop": None}
        from padlab.box.autostop import agent_setup
        from padlab.box.system import Host

        return agent_setup.facts(Host(sudo=False), self.box())
