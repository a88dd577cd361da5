"""A booted Debian machine: overlay disk, own netns, systemd-nspawn, supervisor thread.

Why overlayfs: mounting an overlay over the cached image takes ~3 ms, copying the
230 MB root ~1-4 s (no reflinks on this ext4). The overlay's upper directory is the
machine's disk; it stays mounted for the machine's lifetime, so a poweroff followed
by boot() starts the same disk again.

A supervisor thread owns the nspawn process: exit code 133 means the guest
rebooted, so it boots the same disk again (state "rebooting" until sshd answers);
any other exit means the guest is off, and the on_off callbacks fire.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from .host import TestbedError, current_owner, owner_alive, read_json, run, write_json
from .image import USER
from .network import Network, check_name

log = logging.getLogger(__name__)

REBOOT_EXIT = 133  # systemd-nspawn's exit status when the container asked for a reboot
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
OffCallback = Callable[["Machine"], None]


def _ssh_banner(ip: str) -> bool:
    """sshd answers with its banner: cheaper and less noisy than a full login."""
    try:
        with socket.create_connection((ip, 22), timeout=1) as sock:
            sock.settimeout(2)
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def ssh_options(identity: Path | str) -> list[str]:
    """Options for a testbed login: harness key only, no prompts, no known_hosts noise."""
    return [
        "-i", str(identity),
        "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR",
        "-o", "ConnectTimeout=10",
    ]  # fmt: skip


def _find_leader(nspawn_pid: int) -> int | None:
    """The container's PID 1: the nspawn child living in a PID namespace of its own."""
    own = os.readlink("/proc/self/ns/pid")
    try:
        children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split()
        for child in children:
            if os.readlink(f"/proc/{child}/ns/pid") != own:
                return int(child)
    except OSError:
        pass
    return None


class Machine:
    """One testbed machine. Create it through Testbed.machine(); all methods are thread-safe."""

    def __init__(
        self, name: str, image: str, lower: Path, net: Network, identity: Path, directory: Path
    ) -> None:
        self.name = check_name(name)
        self.image = image
        self.net = net
        self.identity = identity
        self.user = USER
        self.dir = directory
        self._lower = lower
        self._cond = threading.Condition()
        self._state = "off"
        self._boot_count = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._leader: int | None = None
        self._callbacks: list[OffCallback] = []
        self._thread: threading.Thread | None = None
        self._destroying = False
        self._settled = True
        self.last_exit: int | None = None
        # Host directories bind-mounted into the guest at each boot: (host path, guest path).
        # A cloud's network filesystem or volume, which outlives the machine (Lambda's filesystems).
        self.binds: list[tuple[Path, str]] = []
        # A container, not a VM (RunPod's pods): this command runs as PID 1 (no --boot, no
        # systemd) with this environment; `poweroff` kills it and `reset_disk` wipes the disk.
        self.container_cmd: list[str] | None = None
        self.container_env: dict[str, str] = {}

    # -- identity -----------------------------------------------------------------------------

    @property
    def ip(self) -> str:
        return self.net.ip

    @property
    def root(self) -> Path:
        """The machine's disk as seen from the host (overlay mount)."""
        return self.dir / "root"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    @property
    def boot_count(self) -> int:
        """How many times nspawn has been started; tests use it to prove a reboot happened."""
        with self._cond:
            return self._boot_count

    def __repr__(self) -> str:
        return f"<Machine {self.name} {self.image} {self.ip} {self.state()}>"

    # -- disk ---------------------------------------------------------------------------------

    def create_disk(self, disk_from: Path | None = None) -> None:
        """Mount an overlay over the image and give the machine its own hostname and machine-id.

        `disk_from` is a copy of another disk of the same image (`copy_disk`); it becomes this
        disk's starting content, as a cloud builds a new VM from a snapshot.
        """
        self.dir.mkdir(parents=True)
        self._save()  # record first, so a crash from here on leaves something sweep_machines finds
        if disk_from is not None:
            run(["cp", "-a", "--reflink=auto", str(disk_from), str(self.dir / "upper")])
        for sub in ("upper", "work", "root"):
            (self.dir / sub).mkdir(exist_ok=True)
        opts = f"lowerdir={self._lower},upperdir={self.dir / 'upper'},workdir={self.dir / 'work'}"
        run(["mount", "-t", "overlay", "overlay", "-o", opts, str(self.root)])
        self._write_identity()
        self._save()

    def _write_identity(self) -> None:
        """Hostname, hosts, machine-id and the testbed's systemd drop-ins, on a fresh disk."""
        etc = self.root / "etc"
        (etc / "hostname").write_text(f"{self.name}\n")
        (etc / "hosts").write_text(
            f"127.0.0.1 localhost\n127.0.1.1 {self.name}\n::1 localhost ip6-localhost\n"
        )
        (etc / "machine-id").write_text(uuid.uuid4().hex + "\n")
        # In a container, systemd can lose track of the user manager's exit and then wait out
        # user@.service's 120 s stop timeout at every poweroff with nothing left to stop (seen here
        # about once in ten autostop power-offs; systemd issue 16694). A VM has no such wait.
        dropin = etc / "systemd" / "system" / "user@.service.d"
        dropin.mkdir(parents=True, exist_ok=True)
        (dropin / "testbed-stop.conf").write_text("[Service]\nTimeoutStopSec=10s\n")
        # Under heavy load the one-shot that removes /run/nologin was seen to fail once at boot,
        # which leaves sshd refusing logins for good; a real box would be rebooted. Retry it.
        dropin = etc / "systemd" / "system" / "systemd-user-sessions.service.d"
        dropin.mkdir(parents=True, exist_ok=True)
        (dropin / "testbed-retry.conf").write_text(
            "[Unit]\nStartLimitIntervalSec=0\n[Service]\nRestart=on-failure\nRestartSec=1s\n"
        )

    def reset_disk(self) -> None:
        """Wipe the disk back to the image, as a container's disk is at each stop; only when off."""
        with self._cond:
            if self._state != "off" or not self._settled:
                raise TestbedError(f"{self.name} is {self._state}; power it off before wiping its disk")
        run(["umount", str(self.root)])
        run(["rm", "-rf", "--one-file-system", str(self.dir / "upper"), str(self.dir / "work")])
        for sub in ("upper", "work"):
            (self.dir / sub).mkdir()
        opts = f"lowerdir={self._lower},upperdir={self.dir / 'upper'},workdir={self.dir / 'work'}"
        run(["mount", "-t", "overlay", "overlay", "-o", opts, str(self.root)])
        self._write_identity()

    def copy_disk(self, dest: Path) -> None:
        """Copy the disk (the overlay's upper dir: whiteouts, xattrs and all) to the new path `dest`.

        Only a machine that is off has a consistent disk, so a running one is refused.
        `Testbed.create_machine(..., disk_from=dest)` boots a new machine from the copy.
        """
        with self._cond:
            if self._state != "off" or not self._settled:
                raise TestbedError(f"{self.name} is {self._state}; power it off before copying its disk")
            run(["cp", "-a", "--reflink=auto", str(self.dir / "upper"), str(dest)])

    # -- state --------------------------------------------------------------------------------

    def state(self) -> str:
        """'running' (sshd answers), 'booting', 'rebooting' or 'off'."""
        with self._cond:
            return self._state

    def _set_state(self, state: str) -> None:
        with self._cond:
            self._state = state
            self._cond.notify_all()
            self._save()

    def _save(self) -> None:
        """Publish the state for the CLI's `list` and for sweeping after a crash."""
        with self._cond:
            write_json(
                self.dir / "record.json",
                {
                    "name": self.name,
                    "image": self.image,
                    "ip": self.ip,
                    "user": self.user,
                    "identity": str(self.identity),
                    "state": self._state,
                    "nspawn_pid": self._proc.pid if self._proc is not None else None,
                    "owner": current_owner(),
                },
            )

    def on_off(self, callback: OffCallback) -> None:
        """Call `callback(machine)` whenever the guest powers itself off (not on destroy)."""
        with self._cond:
            self._callbacks.append(callback)

    def _wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise TestbedError(
                    f"{self.name}: timed out after {timeout:.0f}s waiting for {what} "
                    f"(state {self._state})\n{self.console_tail()}"
                )

    def console_tail(self, lines: int = 25) -> str:
        """Last console lines, attached to errors so boot failures explain themselves."""
        try:
            text = _ANSI.sub("", self.console_log.read_text(errors="replace"))
        except OSError:
            return "(no console output)"
        return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])

    # -- lifecycle ----------------------------------------------------------------------------

    def boot(self, timeout: float = 120, wait: bool = True) -> None:
        """Start the machine from its disk; with `wait`, return once sshd answers."""
        with self._cond:
            if self._destroying:
                raise TestbedError(f"{self.name} was destroyed")
            if self._state != "off":
                raise TestbedError(f"{self.name} is {self._state}, not off")
            self._state = "booting"
            self._settled = False
            self._thread = threading.Thread(target=self._supervise, name=f"testbed-{self.name}", daemon=True)
            self._thread.start()
        if wait:
            self.wait_ssh(timeout)

    def wait_ssh(self, timeout: float = 120) -> None:
        """Block until sshd answers; fails early, with the console tail, if the machine stops."""
        self._wait_for(lambda: self._state in ("running", "off"), timeout, "sshd")
        if self.state() == "off":
            raise TestbedError(
                f"{self.name} stopped while booting (exit {self.last_exit})\n{self.console_tail()}"
            )

    def wait_off(self, timeout: float = 60) -> None:
        """Block until the nspawn process has exited for good."""
        self._wait_for(lambda: self._state == "off" and self._settled, timeout, "power off")

    def poweroff(self, timeout: float = 60, wait: bool = True) -> None:
        """Shut the guest down cleanly from inside, as `sudo poweroff` would; a container is killed
        (systemd-nspawn, sent SIGTERM without --boot, kills its PID 1), as a container runtime stops one."""
        if self.container_cmd is not None:
            with self._cond:
                proc = self._proc
            if proc is None:
                raise TestbedError(f"{self.name} is {self.state()}; nothing to power off")
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        else:
            self.exec(["systemctl", "--no-block", "poweroff"])
        if wait:
            self.wait_off(timeout)

    def reboot(self, timeout: float = 120, wait: bool = True) -> None:
        """Reboot from inside; with `wait`, return once the supervisor booted it and sshd answers."""
        before = self.boot_count
        self.exec(["systemctl", "--no-block", "reboot"])
        if wait:
            self._wait_for(
                lambda: self._boot_count > before and self._state in ("running", "off"), timeout, "reboot"
            )
            self.wait_ssh(0)

    def _nspawn_argv(self) -> list[str]:
        return [
            "systemd-nspawn",
            "--quiet",
            f"--directory={self.root}",
            *(["--boot"] if self.container_cmd is None else []),
            "--register=no",
            "--keep-unit",
            f"--machine=pltb-{self.name}",
            f"--network-namespace-path=/run/netns/{self.net.netns}",
            "--capability=CAP_NET_ADMIN,CAP_NET_RAW",
            "--resolv-conf=copy-host",
            "--console=read-only",
            *(f"--bind={host}:{guest}" for host, guest in self.binds),
            *(f"--setenv={key}={value}" for key, value in self.container_env.items()),
            *(["--", *self.container_cmd] if self.container_cmd is not None else []),
        ]

    def _supervise(self) -> None:
        rc: int | None = None
        while True:
            with self._cond:
                if self._destroying:
                    break
                self._boot_count += 1
                with open(self.console_log, "ab") as console:
                    console.write(f"\n=== testbed: boot #{self._boot_count} at {time.ctime()} ===\n".encode())
                    console.flush()
                    try:
                        self._proc = subprocess.Popen(
                            self._nspawn_argv(),
                            stdin=subprocess.DEVNULL,
                            stdout=console,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,  # Ctrl-C in pytest must not hit the guest directly
                        )
                    except OSError as exc:
                        console.write(f"testbed: cannot start systemd-nspawn: {exc}\n".encode())
                        rc = -1
                        break
                self._leader = None
            self._save()
            rc = self._watch(self._proc)
            if rc != REBOOT_EXIT or self._destroying:
                break
            self._set_state("rebooting")
        with self._cond:
            self.last_exit = rc
            self._proc = None
            self._leader = None
            callbacks = [] if self._destroying else list(self._callbacks)
        self._set_state("off")
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("on_off callback of %s failed", self.name)
        with self._cond:
            self._settled = True  # wait_off() returns only now, so callbacks have been seen
            self._cond.notify_all()

    def _watch(self, proc: subprocess.Popen[bytes]) -> int:
        """Wait for nspawn to exit, marking the machine running once sshd takes logins."""
        while True:
            try:
                return proc.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                pass
            if self._state == "running" or self._destroying:
                continue
            leader = self._leader_pid()
            # /run/nologin exists until systemd-user-sessions ran; before that, padlab's login is refused.
            if leader and not Path(f"/proc/{leader}/root/run/nologin").exists() and _ssh_banner(self.ip):
                self._set_state("running")

    def _leader_pid(self) -> int | None:
        with self._cond:
            if self._leader is None and self._proc is not None:
                self._leader = _find_leader(self._proc.pid)
            return self._leader

    # -- commands -----------------------------------------------------------------------------

    def exec(
        self,
        cmd: str | Sequence[str],
        check: bool = True,
        input: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command as root inside the running guest without ssh (nsenter into its PID 1).

        A string runs through /bin/sh; the environment is a clean root login's, not the host's.
        """
        leader = self._leader_pid()
        if self.state() == "off" or leader is None:
            raise TestbedError(f"{self.name} is {self.state()}; cannot exec {cmd!r}")
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        env = ["env", "-i", f"PATH={GUEST_PATH}", "HOME=/root", "LANG=C.UTF-8", "USER=root"]
        full = ["nsenter", "-t", str(leader), "-a", "-r", "-w", "--", *env, *argv]
        proc = subprocess.run(full, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise TestbedError(
                f"{self.name}: {cmd!r} exited {proc.returncode}\n{proc.stderr.strip() or proc.stdout.strip()}"
            )
        return proc

    def ssh_options(self) -> list[str]:
        """ssh options that log in with the harness key and ignore host-key bookkeeping."""
        return ssh_options(self.identity)

    def ssh_args(self, user: str | None = None) -> list[str]:
        """Arguments after `ssh`, ending with the destination: `["ssh", *m.ssh_args(), "cmd"]`."""
        return [*self.ssh_options(), f"{user or self.user}@{self.ip}"]

    def ssh(
        self, command: str, check: bool = True, user: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run `command` over real ssh as `padlab` (or `user`), the way padlab itself gets in."""
        proc = subprocess.run(
            ["ssh", *self.ssh_args(user), command],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise TestbedError(
                f"{self.name}: ssh {command!r} exited {proc.returncode}\n{proc.stderr.strip()}"
            )
        return proc

    def host_public_key(self) -> str:
        """The guest's ed25519 host key ("ssh-ed25519 AAAA..."), for pinning in known_hosts."""
        fields = self.exec(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdout.split()
        return " ".join(fields[:2])

    def regenerate_host_keys(self) -> None:
        """Give the guest new host keys, as a reinstalled server would have; a pinned client must refuse it."""
        self.exec("rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh")

    def require_sudo_password(self, password: str = "padlab-testbed") -> None:
        """Make `sudo` for padlab ask for a password (so `sudo -n` fails), like many real servers."""
        self.exec(["chpasswd"], input=f"{self.user}:{password}\n")
        self.exec(
            f"echo '{self.user} ALL=(ALL:ALL) ALL' > /etc/sudoers.d/padlab-testbed && "
            "chmod 0440 /etc/sudoers.d/padlab-testbed && visudo -cq"
        )

    # -- teardown -----------------------------------------------------------------------------

    def destroy(self, hold_address: bool = False) -> None:
        """Stop the guest hard and delete its disk, namespace, rules and record. Idempotent.

        `hold_address`: keep its address for a later machine or client (`Network.remove(hold=True)`).
        """
        with self._cond:
            if self._destroying:
                return
            self._destroying = True
            proc, thread = self._proc, self._thread
        if proc is not None:
            leader = self._leader_pid()
            # Killing PID 1 of the container takes its whole PID namespace down at once.
            with contextlib.suppress(ProcessLookupError, FileNotFoundError):
                os.kill(leader or proc.pid, signal.SIGKILL)
        if thread is not None:
            thread.join(30)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        _remove_disk(self.dir)
        self.net.remove(hold=hold_address)


def _remove_disk(directory: Path) -> None:
    root = directory / "root"
    if os.path.ismount(root) and run(["umount", str(root)], check=False).returncode != 0:
        run(["umount", "--lazy", str(root)], check=False)
    run(["rm", "-rf", "--one-file-system", str(directory)], check=False)


def sweep_machines(machines_dir: Path, *, everything: bool = False) -> list[str]:
    """Kill and delete machines whose owner process died (or all); returns their names."""
    removed = []
    for directory in sorted(p for p in machines_dir.glob("*") if p.is_dir()):
        rec = read_json(directory / "record.json")
        if rec is not None and not everything and owner_alive(rec["owner"]):
            continue
        netns = f"pltb-{directory.name}"
        pids = run(["ip", "netns", "pids", netns], check=False).stdout.split()
        if pids:
            run(["kill", "-KILL", *pids], check=False)
        nspawn_pid = rec.get("nspawn_pid") if rec else None
        if nspawn_pid:
            with contextlib.suppress(ProcessLookupError, FileNotFoundError):
                cmdline = Path(f"/proc/{nspawn_pid}/cmdline").read_bytes()
                if b"systemd-nspawn" in cmdline and f"pltb-{directory.name}".encode() in cmdline:
                    os.kill(nspawn_pid, signal.SIGKILL)
        _remove_disk(directory)
        removed.append(directory.name)
    return removed
