"""Per-machine network namespaces on 198.18.0.0/15, routed and NATed by the host.

Each machine or client gets netns `pltb-<name>` joined to the host by a veth pair:
host side 198.18.X.1/24 (`pltbhX`), namespace side `eth0` 198.18.X.2 with a default
route via the host. The host routes between namespaces untouched (so firewall tests
see real source addresses) and masquerades machine traffic to the outside, limited to
DNS/HTTP/HTTPS, because padlab's bootstrap must reach the package registries. All
rules live in one nftables table per network so removal is exact.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .host import TestbedError, current_owner, file_lock, owner_alive, read_json, run, write_json

TEST_RANGE = "198.18.0.0/15"
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_HOST_IF_RE = re.compile(r"^pltbh(\d+)\b")
_IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
# Namespace names, veths and ip_forward are host-wide, shared by testbeds with different caches.
_HOST_STATE = Path("/run/padlab-testbed")
_LOCK = _HOST_STATE / "net.lock"
_FORWARD_SAVED = _HOST_STATE / "ip_forward.orig"


@contextlib.contextmanager
def host_addresses_fixed() -> Iterator[None]:
    """Keep this host's addresses as they are: no testbed network is made or removed meanwhile.

    Each network adds an address on the host, and the local provider's certificate names every
    address of the host, so a test that compares two certificates holds this around both.
    """
    with file_lock(_LOCK):
        yield


def check_name(name: str) -> str:
    """Names become netns, hostnames and nspawn machine names, so keep them boring."""
    if not NAME_RE.match(name):
        raise TestbedError(f"bad name {name!r}: use 1-20 chars of a-z, 0-9 and '-', starting with a letter")
    return name


@dataclass(frozen=True)
class Network:
    """One namespace, its veth pair and its nftables table."""

    name: str
    index: int
    nat: bool
    run_dir: Path

    @property
    def netns(self) -> str:
        return f"pltb-{self.name}"

    @property
    def host_if(self) -> str:
        return f"pltbh{self.index}"

    @property
    def host_ip(self) -> str:
        return f"198.18.{self.index}.1"

    @property
    def ip(self) -> str:
        return f"198.18.{self.index}.2"

    @property
    def table(self) -> str:
        return f"pltb_{self.index}"

    @property
    def record(self) -> Path:
        return record_path(self.run_dir, self.name)

    def exec_args(self, argv: Sequence[str]) -> list[str]:
        """Argv that runs `argv` inside this namespace (host filesystem, namespace network)."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def remove(self, hold: bool = False) -> None:
        """Kill what still runs in the namespace and delete namespace, veth, rules and record.

        `hold`: keep the address for this process's next `create_network(..., index=)`, so that a
        test can hand a freed address to the machine or client it chooses (as a cloud may reuse one)
        without another testbed user taking it in between.
        """
        with file_lock(_LOCK):
            record = read_json(self.record)
            if record is None or int(record["index"]) != self.index:
                return  # already removed; the name may belong to a newer network now
            pids = run(["ip", "netns", "pids", self.netns], check=False).stdout.split()
            if pids:
                run(["kill", "-KILL", *pids], check=False)
            run(["ip", "netns", "delete", self.netns], check=False)
            run(["ip", "link", "delete", self.host_if], check=False)
            run(["nft", "delete", "table", "ip", self.table], check=False)
            if hold:
                write_json(_hold_path(self.run_dir, self.index), {**record, "name": _hold_name(self.index)})
            self.record.unlink(missing_ok=True)
            _restore_ip_forward_if_unused()

    def _setup(self) -> None:
        ns = ["ip", "-n", self.netns]
        run(["ip", "netns", "add", self.netns])
        run(["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", "eth0", "netns", self.netns])
        run(["ip", "addr", "add", f"{self.host_ip}/24", "dev", self.host_if])
        run(["ip", "link", "set", self.host_if, "up"])
        run([*ns, "link", "set", "lo", "up"])
        run([*ns, "addr", "add", f"{self.ip}/24", "dev", "eth0"])
        run([*ns, "link", "set", "eth0", "up"])
        run([*ns, "route", "add", "default", "via", self.host_ip])
        outside = f'iifname "{self.host_if}" ip daddr != {TEST_RANGE}'
        rules = [f"table ip {self.table} {{", "chain forward {", "type filter hook forward priority filter;"]
        if self.nat:
            rules.append(f"{outside} meta l4proto {{ tcp, udp }} th dport {{ 53, 80, 443 }} accept")
        rules += [f"{outside} drop", "}"]
        if self.nat:
            rules += [
                "chain postrouting {",
                "type nat hook postrouting priority srcnat;",
                f"ip saddr {self.host_ip}/24 ip daddr != {TEST_RANGE} masquerade",
                "}",
            ]
        rules.append("}")
        run(["nft", "-f", "-"], input="\n".join(rules) + "\n")


def record_path(run_dir: Path, name: str) -> Path:
    return run_dir / f"net-{name}.json"


def _hold_name(index: int) -> str:
    return f"held{index}"


def _hold_path(run_dir: Path, index: int) -> Path:
    return record_path(run_dir, _hold_name(index))


def release_hold(run_dir: Path, index: int) -> None:
    """Give a held address (`Network.remove(hold=True)`) back to everyone."""
    with file_lock(_LOCK):
        _hold_path(run_dir, index).unlink(missing_ok=True)


def create_network(run_dir: Path, name: str, *, nat: bool, index: int | None = None) -> Network:
    """Allocate a free 198.18.X.0/24 (or `index`, an address this process holds) and build the
    namespace; undo everything on failure."""
    check_name(name)
    with file_lock(_LOCK):  # held through setup, so no other testbed can take the same index
        if record_path(run_dir, name).exists():
            raise TestbedError(f"network {name!r} already exists (another machine or client uses the name)")
        if index is not None:
            held = read_json(_hold_path(run_dir, index))
            if held is None or held["owner"] != current_owner():
                raise TestbedError(f"198.18.{index}.0/24 is not held by this process")
            _hold_path(run_dir, index).unlink()
        else:
            used = {int(rec["index"]) for rec in _records(run_dir)} | _host_indexes()
            free = [i for i in range(1, 255) if i not in used]
            if not free:
                raise TestbedError("no free 198.18.X.0/24 subnet left")
            index = free[0]
        net = Network(name=name, index=index, nat=nat, run_dir=run_dir)
        write_json(net.record, {"name": name, "index": net.index, "nat": nat, "owner": current_owner()})
        _enable_ip_forward()
        try:
            net._setup()
        except BaseException as exc:
            error = exc
        else:
            return net
    net.remove()  # outside the lock: remove() takes it again
    raise error


def _host_indexes() -> set[int]:
    """Indexes of pltbhX veths on the host, whoever made them."""
    links = run(["ip", "-o", "link", "show"]).stdout.splitlines()
    return {int(m.group(1)) for line in links if (m := _HOST_IF_RE.match(line.split(": ")[1]))}


def _records(run_dir: Path) -> list[dict]:
    return [rec for path in sorted(run_dir.glob("net-*.json")) if (rec := read_json(path)) is not None]


def sweep_networks(run_dir: Path, *, everything: bool = False) -> list[str]:
    """Remove networks whose owner died (or all with `everything`); returns their names."""
    removed = []
    for rec in _records(run_dir):
        if everything or not owner_alive(rec["owner"]):
            Network(name=rec["name"], index=int(rec["index"]), nat=bool(rec["nat"]), run_dir=run_dir).remove()
            removed.append(rec["name"])
    return removed


def _enable_ip_forward() -> None:
    _HOST_STATE.mkdir(parents=True, exist_ok=True)
    # Called before our veth exists: with no testbed veth on the host, today's value is the original.
    if not _FORWARD_SAVED.exists() or not _host_indexes():
        _FORWARD_SAVED.write_text(_IP_FORWARD.read_text())
    _IP_FORWARD.write_text("1\n")


def _restore_ip_forward_if_unused() -> None:
    if _FORWARD_SAVED.exists() and not _host_indexes():
        _IP_FORWARD.write_text(_FORWARD_SAVED.read_text())
        _FORWARD_SAVED.unlink()
