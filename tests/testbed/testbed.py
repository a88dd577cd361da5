"""The Testbed: owns images, machines and client namespaces for one test run or CLI process."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from .host import TestbedError, cache_dir, host_problems
from .image import ImageStore
from .machine import Machine, sweep_machines
from .network import Network, check_name, create_network, sweep_networks


class TestbedUnavailable(TestbedError):
    """This host cannot run the testbed (not root, tools missing); fixtures skip on it outside CI."""


class ClientNamespace:
    """A namespace that is not a machine: a test's 'somebody else on the network'.

    Its address is routed to the machines through the host without NAT, so a guest
    firewall sees it as the source and can refuse it.
    """

    def __init__(self, net: Network) -> None:
        self.net = net
        self.name = net.name
        self.ip = net.ip
        self.netns = net.netns

    def run(
        self, cmd: str | Sequence[str], check: bool = True, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run a host command (curl, ssh, nc...) with this namespace's network; a string goes through sh."""
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        proc = subprocess.run(
            self.net.exec_args(argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise TestbedError(f"client {self.name}: {cmd!r} exited {proc.returncode}\n{proc.stderr.strip()}")
        return proc

    def remove(self) -> None:
        """Delete the namespace and its veth/rules."""
        self.net.remove()


class Testbed:
    """Creates machines from cached images and tears all of it down on close() (also at exit)."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, cache: str | os.PathLike[str] | None = None) -> None:
        problems = host_problems()
        if problems:
            raise TestbedUnavailable("testbed unavailable: " + "; ".join(problems))
        self.cache = cache_dir(cache)
        self.run_dir = self.cache / "run"
        self.machines_dir = self.cache / "machines"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.machines_dir.mkdir(parents=True, exist_ok=True)
        self.images = ImageStore(self.cache)
        self._machines: list[Machine] = []
        self._clients: list[ClientNamespace] = []
        self._lock = threading.Lock()
        self.sweep()
        atexit.register(self.close)

    @property
    def identity(self) -> Path:
        """The private key every image authorizes for `padlab`."""
        return self.images.ensure_keypair()

    def sweep(self, everything: bool = False) -> list[str]:
        """Remove leftovers of runs that died without cleaning up (all testbed resources with `everything`)."""
        removed = sweep_machines(self.machines_dir, everything=everything)
        return removed + sweep_networks(self.run_dir, everything=everything)

    def machine(self, name: str, image: str = "bookworm", timeout: float = 180) -> Machine:
        """A fresh machine booted from `image`, returned once sshd answers."""
        return self.machines([name], image=image, timeout=timeout)[0]

    def machines(self, names: Iterable[str], image: str = "bookworm", timeout: float = 180) -> list[Machine]:
        """Several fresh machines, booted in parallel."""
        names = [check_name(name) for name in names]
        created: list[Machine] = []
        try:
            for name in names:
                created.append(self.create_machine(name, image))
            for machine in created:
                machine.boot(wait=False)
            for machine in created:
                machine.wait_ssh(timeout)
        except BaseException:
            for machine in created:
                machine.destroy()
            raise
        return created

    def create_machine(
        self,
        name: str,
        image: str = "bookworm",
        disk_from: Path | None = None,
        index: int | None = None,
        binds: Sequence[tuple[Path, str]] = (),
    ) -> Machine:
        """A machine with its disk and network made but not booted, like a created, stopped cloud VM.

        `disk_from`: a copy made by `Machine.copy_disk` from a machine of the same image.
        `index`: the address 198.18.<index>.2, held by this process (`Machine.destroy(hold_address=True)`).
        `binds`: (host directory, guest path) pairs bind-mounted at every boot, as a cloud's network
        filesystem that outlives the machine; the directories are the caller's to make and remove.
        """
        name = check_name(name)
        lower = self.images.ensure(image)
        if (self.machines_dir / name).exists():
            raise TestbedError(f"machine {name!r} already exists")
        net = create_network(self.run_dir, name, nat=True, index=index)
        machine = Machine(name, image, lower, net, self.identity, self.machines_dir / name)
        machine.binds = list(binds)
        with self._lock:
            self._machines.append(machine)
        try:
            machine.create_disk(disk_from)
        except BaseException:
            machine.destroy()
            raise
        return machine

    def client_namespace(self, name: str, index: int | None = None) -> ClientNamespace:
        """A namespace with its own 198.18.X.2 address that reaches the machines through the host.

        `index`: an address this process holds, as in `create_machine`.
        """
        client = ClientNamespace(create_network(self.run_dir, name, nat=False, index=index))
        with self._lock:
            self._clients.append(client)
        return client

    def close(self) -> None:
        """Destroy every machine and namespace this testbed made. Safe to call twice."""
        with self._lock:
            machines, self._machines = self._machines, []
            clients, self._clients = self._clients, []
        threads = [threading.Thread(target=machine.destroy) for machine in machines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for client in clients:
            client.remove()
        atexit.unregister(self.close)

    def clean(self, images: bool = False) -> list[str]:
        """Remove every testbed resource on this host (even other processes'), optionally the cache too."""
        self.close()
        removed = self.sweep(everything=True)
        if images:
            shutil.rmtree(self.cache / "images", ignore_errors=True)
            shutil.rmtree(self.cache / "ssh", ignore_errors=True)
        return removed

    def __enter__(self) -> Testbed:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
