"""A Linux machine the user already has and reaches with ssh: padlab never powers it on or off.

`down` stops Jupyter and disables its unit; the machine keeps running.

The box needs python3 (3.8+) to run padlab's program. padlab does not install
it: a box without one stops `up` with one line naming the apt-get/dnf command,
because installing an interpreter on a machine padlab does not own is the
owner's call. Everything else (venv, Jupyter, mosh, nftables when asked) padlab
installs itself, through `sudo -n`.
"""

from __future__ import annotations

from padlab import ssh
from padlab.errors import PadlabError
from padlab.providers.base import Machine, Progress
from padlab.providers.remote import RemoteProvider


class SshProvider(RemoteProvider):
    name = "ssh"

    def target(self, machine: Machine) -> ssh.Target:
        """Always the profile's host as typed, so a ~/.ssh/config alias keeps its ProxyJump, keys..."""
        return ssh.Target(
            str(self.profile.host),
            self.login_user(),
            self.profile.ssh_port,
            self.login_identity(),
            ssh.key_alias(self.profile.name),
        )

    def describe(self) -> Machine:
        """running when ssh answers (the shared connection, else sshd's banner), else unreachable."""
        target = self.target(Machine(state="unknown"))
        host = str(self.profile.host)
        if ssh.master_alive(target):
            return Machine(state="running", host=self._address(target), id=host)
        seen = ssh.resolved(target)
        address = seen.get("hostname") or host
        if seen.get("proxyjump", "none") != "none" or seen.get("proxycommand", "none") != "none":
            reachable = _login_works(target)
        else:
            reachable = ssh.port_open(address, int(seen.get("port") or 22))
        return Machine(state="running" if reachable else "unreachable", host=address, id=host)

    def ensure_running(self, progress: Progress) -> Machine:
        target = self.target(Machine(state="unknown"))
        progress(f"connecting to {target.display}")
        ssh.ensure_master(target)
        return Machine(state="running", host=self._address(target), id=self.profile.host)

    def stop(self, progress: Progress) -> Machine:
        return self.describe()

    def _address(self, target: ssh.Target) -> str:
        """The address a tablet should use: ssh's HostName for the profile's host."""
        return ssh.resolved(target).get("hostname") or target.host


def _login_works(target: ssh.Target) -> bool:
    try:
        ssh.ensure_master(target, timeout=10)
    except PadlabError:
        return False
    return True
