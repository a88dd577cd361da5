"""The base of every provider whose box is another machine reached over ssh (ssh, aws, paperspace, digitalocean).

A subclass knows how to find, start and stop its machine; this base knows how to
reach and set up a running one: ``transport()`` (:class:`padlab.transport.SshTransport`
with the login user, ssh port and key), ``connected()`` (the shared ssh connection is
open), ``layout()`` (``/opt/padlab``, ``/etc/padlab``, system files through ``sudo -n``,
Jupyter runs as the login user, or as padlab's unprivileged ``padlab-jupyter`` where the
login user is root, with the mosh, rsync and firewall steps), ``jupyter_alive()``
(a TLS handshake padlab's CA verifies), ``agent_facts()`` (only over an open
connection) and ``after_up()`` (the ssh_config entry and the card's ssh, mosh and
Blink lines).

A cloud provider does not subclass this directly but ``providers.cloud.CloudProvider``,
which adds the find-or-create, start, wait, stop and destroy flows and asks the cloud
module only for its API calls (``_get``, ``_search``, ``_machine``, ``_create``,
``_power_on``, ``_power_off``, ``_delete``). How to add one, and what else it touches
(one registry entry, its fake, its tests): docs/architecture.md, "Providers".

Profile settings read here: ``host``, ``user``, ``ssh_port``, ``identity`` and,
in ``options``, ``allow_from`` (CIDR or "auto") and ``firewall`` ("on" lets padlab
turn on a firewall that was off).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from padlab import ssh
from padlab.box.request import MOSH_PORTS
from padlab.errors import PadlabError
from padlab.profiles import Profile
from padlab.providers.base import BoxLayout, Machine, ProviderBase

if TYPE_CHECKING:
    from padlab.transport import Transport

PREFIX = "/opt/padlab"
ETC = "/etc/padlab"
NAME_RE = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")


class RemoteProvider(ProviderBase):
    name = "remote"

    # -- how to log in (override in a cloud provider when the image dictates them) --------

    def login_user(self) -> str | None:
        """None: whatever ssh would use (~/.ssh/config, else the local user name)."""
        return self.profile.user

    def login_identity(self) -> str | None:
        return self.profile.identity

    def target(self, machine: Machine) -> ssh.Target:
        host = machine.host or self.profile.host
        if not host:
            raise PadlabError(
                f"{self.profile.name!r} has no address yet", f"run `padlab up {self.profile.name}`"
            )
        return ssh.Target(
            host,
            self.login_user(),
            self.profile.ssh_port,
            self.login_identity(),
            ssh.key_alias(self.profile.name),
        )

    # -- what workstation.py asks of every provider ----------------------------------------

    def transport(self, machine: Machine) -> Transport:
        from padlab.transport import SshTransport

        return SshTransport(self.target(machine))

    def connected(self, machine: Machine) -> bool:
        """Whether padlab's shared ssh connection to the box is open: a query then costs milliseconds."""
        return ssh.master_alive(self.target(machine))

    def jupyter_alive(self, machine: Machine) -> bool:
        """A TLS handshake that padlab's CA (or a public root) verifies: a bare TCP connect can be a
        middlebox or another program."""
        from padlab import state, tls

        if not machine.host:
            return False
        # No CA here (a panel that keeps it off): only a box recorded with a public certificate can answer.
        recorded = state.load(self.profile.name).get("tls") or {}
        if not tls.ca_cert_path().exists() and recorded.get("kind") != "public":
            return False
        try:
            tls.handshake(machine.host, self.profile.port, timeout=2.0, extra_ca=self.profile.acme_ca)
        except (OSError, ValueError):
            return False
        return True

    def agent_facts(self, machine: Machine, req: dict[str, Any]) -> dict[str, Any] | None:
        """Only over an ssh connection that is already open: `status` must stay instant."""
        if not self.connected(machine):
            return None
        try:
            report = self.transport(machine).call(req)
        except PadlabError:
            return None
        facts = report.get("autostop")
        if facts is not None and report.get("tls"):
            facts["tls"] = report["tls"]
        return facts

    def layout(self) -> BoxLayout:
        options = self.profile.options
        return BoxLayout(
            prefix=PREFIX,
            etc=ETC,
            system=True,
            user=None,  # the box chooses: the login user, never root (box/account.py)
            steps={
                "mosh": {"ports": list(MOSH_PORTS)},
                "rsync": {},
                "firewall": {
                    "allow_from": options.get("allow_from"),
                    "enable": options.get("firewall") == "on",
                },
            },
        )

    def after_up(self, machine: Machine, report: dict[str, Any]) -> dict[str, Any]:
        """Refresh the ssh_config entry and record the ssh, mosh and Blink lines for the card."""
        from padlab import sshconfig

        target = self.target(machine)
        seen = ssh.resolved(target)
        hostname = seen.get("hostname") or target.host
        user = seen.get("user") or target.user
        port = int(seen.get("port") or 22)
        jump = seen.get("proxyjump")
        jump = None if not jump or jump == "none" else jump
        name = self.profile.name
        sshconfig.write_entry(name, sshconfig.entry(name, hostname, user, port, target.identity, jump))
        return {
            "ssh_command": ssh_line(hostname, user, port),
            "mosh_command": mosh_line(hostname, user, port),
            "blink_host": blink_line(name, hostname, user, port),
            "ssh_config": str(sshconfig.path()),
        }

    # -- helpers for subclasses --------------------------------------------------------------

    def forget_host_key(self, machine: Machine) -> None:
        """The machine was re-created: trust its new host key on first use, drop the stale connection."""
        if machine.host:
            ssh.close_master(self.target(machine))
            ssh.forget_host(machine.host, self.profile.ssh_port, ssh.key_alias(self.profile.name))

    def wait_for_ssh(self, machine: Machine, timeout: float = 300.0) -> None:
        if machine.host:
            ssh.wait_reachable(machine.host, self.profile.ssh_port, timeout)


def configure(
    profile: Profile,
    host: str | None,
    ssh_port: int | None,
    identity: str | None,
    allow_from: str | None,
    firewall: str | None,
    user: str | None = None,
) -> None:
    """Apply `padlab init`'s ssh and firewall flags to a profile, refusing bad values with a fix."""
    from pathlib import Path

    if host:
        user, address = ssh.split_user_host(host)
        if not address or any(c.isspace() for c in host):
            raise PadlabError(f"bad --host {host!r}", "give USER@HOST, e.g. --host ubuntu@203.0.113.7")
        profile.host, profile.user = address, user
    if user:
        if not NAME_RE.match(user):
            raise PadlabError(f"bad --user {user!r}", "give a login name such as ubuntu or root")
        profile.user = user
    if ssh_port is not None:
        profile.ssh_port = ssh_port
    if identity:
        key = Path(identity).expanduser()
        if not key.is_file():
            raise PadlabError(
                f"no key file at {key}", "give the private key, e.g. --identity ~/.ssh/id_ed25519"
            )
        profile.identity = str(key.resolve())
    if allow_from:
        profile.options["allow_from"] = check_cidr(allow_from)
    if firewall:
        profile.options["firewall"] = firewall


def check_cidr(value: str) -> str:
    """'auto', or a network in CIDR form (an address alone means just that address)."""
    import ipaddress

    if value == "auto":
        return value
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError as exc:
        raise PadlabError(
            f"--allow-from {value!r} is not a CIDR", "give e.g. 203.0.113.0/24 or 2001:db8::/64, or 'auto'"
        ) from exc


def _where(host: str, user: str | None) -> str:
    return f"{user}@{host}" if user else host


def ssh_line(host: str, user: str | None, port: int) -> str:
    return f"ssh {f'-p {port} ' if port != 22 else ''}{_where(host, user)}"


def mosh_line(host: str, user: str | None, port: int) -> str:
    lo, hi = MOSH_PORTS
    via = f'--ssh="ssh -p {port}" ' if port != 22 else ""
    return f"mosh -p {lo}:{hi} {via}{_where(host, user)}"


def blink_line(name: str, host: str, user: str | None, port: int) -> str:
    """What to type into Blink Shell's host settings (Settings > Hosts > +)."""
    lo, hi = MOSH_PORTS
    return f"Host {name}  HostName {host}  User {user or '-'}  Port {port}  Mosh Port {lo}:{hi}"
