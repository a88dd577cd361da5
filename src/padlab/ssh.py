"""padlab's use of the system OpenSSH client.

The user's own ``ssh`` is used so that ``~/.ssh/config``, the agent, ProxyJump
and hardware keys keep working. padlab only adds options on the command line:

- one multiplexed connection per machine (ControlMaster under PADLAB_HOME/ssh,
  ControlPersist 10 minutes), so repeated commands skip the handshake; whether it
  runs is asked of its socket (OpenSSH's mux protocol), not by starting `ssh -O check`;
- trust on first use, recorded in padlab's own known_hosts file
  (StrictHostKeyChecking=accept-new), so a changed host key is refused;
- one key per profile, under ``HostKeyAlias=padlab-NAME``, not per address: a cloud
  machine that comes back at a new address is checked against the key it had,
  not trusted afresh.

A provider that knows it re-created a machine calls :func:`forget_host` before
connecting again; nothing else ever removes a recorded key.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from padlab import paths
from padlab.errors import PadlabError

# A unix socket path must fit in sun_path (108 bytes on Linux, 104 on macOS);
# ssh adds ".XXXXXXXXXXXXXXXX" to %C (40 hex chars) while it creates the socket.
_SOCKET_ROOM = 100 - 40 - 1 - 17


@dataclass(frozen=True)
class Target:
    """How to reach one machine: host (name, address or ~/.ssh/config alias) and optional overrides."""

    host: str
    user: str | None = None
    port: int | None = None
    identity: str | None = None
    # The name the host key is recorded under (HostKeyAlias): the profile's, so it outlives the address.
    key_alias: str | None = None

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def display(self) -> str:
        port = f":{self.port}" if self.port and self.port != 22 else ""
        return f"{self.destination}{port}"


def split_user_host(spec: str) -> tuple[str | None, str]:
    """'USER@HOST' -> (USER, HOST); 'HOST' -> (None, HOST)."""
    user, sep, host = spec.rpartition("@")
    return (user or None, host) if sep else (None, spec)


def ssh_dir() -> Path:
    return paths.ensure_private_dir(paths.data_dir() / "ssh")


def known_hosts() -> Path:
    return ssh_dir() / "known_hosts"


def control_dir() -> Path:
    """Where master sockets live: PADLAB_HOME/ssh/cm, or a short private /tmp folder when that is too long."""
    preferred = ssh_dir() / "cm"
    if len(str(preferred)) <= _SOCKET_ROOM:
        return paths.ensure_private_dir(preferred)
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:10]
    short = Path(tempfile.gettempdir()) / f"padlab-{os.getuid()}-{digest}"
    with contextlib.suppress(FileExistsError):
        short.mkdir(mode=0o700)
    # /tmp is shared: anyone may have made this name first. lstat, so a link is not followed,
    # and change nothing that is not this user's own directory.
    info = short.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise PadlabError(
            f"{short} (padlab's ssh socket folder) is not a directory of yours; another user may have made it",
            "remove it if you can, or set PADLAB_HOME to a shorter path",
        )
    os.chmod(short, 0o700)
    return short


def _quoted(value: Path | str) -> str:
    return f'"{value}"'


def options(target: Target, master: str = "auto", batch: bool | None = None) -> list[str]:
    """Command-line options padlab adds to every ssh call (they win over ~/.ssh/config)."""
    if batch is None:
        batch = not sys.stdin.isatty()
    opts = [
        "-o", f"ControlMaster={master}",
        "-o", f"ControlPath={_quoted(control_dir() / '%C')}",
        "-o", "ControlPersist=10m",
        "-o", f"UserKnownHostsFile={_quoted(known_hosts())}",
        "-o", "StrictHostKeyChecking=accept-new",
        "-o", "ConnectTimeout=10",
        "-o", "ServerAliveInterval=15",
        "-o", "ServerAliveCountMax=4",
        "-o", "LogLevel=ERROR",
    ]  # fmt: skip
    if batch:
        opts += ["-o", "BatchMode=yes"]
    if target.port and target.port != 22:
        opts += ["-p", str(target.port)]
    if target.identity:
        opts += ["-i", str(Path(target.identity).expanduser()), "-o", "IdentitiesOnly=yes"]
    if target.user:
        opts += ["-l", target.user]
    if target.key_alias:
        opts += ["-o", f"HostKeyAlias={target.key_alias}"]
    return opts


def key_alias(profile_name: str) -> str:
    return f"padlab-{profile_name}"


def adopt_known_key(target: Target) -> bool:
    """Before the first connection under the profile's alias, carry over the key padlab recorded
    for the address (the way padlab kept keys before aliases), so that key is checked, not a new one trusted.

    Returns whether a key was carried over.
    """
    path = known_hosts()
    if not target.key_alias or not path.exists() or _recorded(target.key_alias, path):
        return False
    seen = resolved(Target(target.host, target.user, target.port, target.identity))
    name = known_hosts_name(seen.get("hostname") or target.host, int(seen.get("port") or 22))
    lines = [x for x in _recorded(name, path) if not x.startswith("@")]
    if not lines:
        return False
    adopted = [" ".join([target.key_alias, *line.split()[1:]]) for line in lines]
    with path.open("a") as fh:
        fh.write("".join(line + "\n" for line in adopted))
    return True


def _recorded(name: str, path: Path) -> list[str]:
    """known_hosts lines for name (hashed or not), as ssh-keygen -F finds them."""
    proc = subprocess.run(["ssh-keygen", "-F", name, "-f", str(path)], capture_output=True, text=True)
    return [x for x in proc.stdout.splitlines() if x and not x.startswith("#")]


def command(target: Target, remote: str | None = None, master: str = "auto", tty: bool = False) -> list[str]:
    """argv for `ssh` to target, running `remote` (a shell command line) when given."""
    argv = ["ssh", *options(target, master)]
    if tty:
        argv.append("-t")
    argv += ["--", target.host] if remote is None else ["--", target.host, remote]
    return argv


_RESOLVED: dict[tuple[str, ...], dict[str, str]] = {}  # one `ssh -G` per target and command: `up` asks twice


def resolved(target: Target) -> dict[str, str]:
    """What ssh will really use for target after ~/.ssh/config (`ssh -G`): hostname, user, port..."""
    argv = ["ssh", "-G", *options(target, batch=True), "--", target.host]
    if tuple(argv) not in _RESOLVED:
        _RESOLVED[tuple(argv)] = _resolve(argv, target)
    return dict(_RESOLVED[tuple(argv)])


def _resolve(argv: list[str], target: Target) -> dict[str, str]:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PadlabError(
            f"ssh cannot parse its configuration for {target.host}: {proc.stderr.strip()}",
            "fix ~/.ssh/config, or give the address: padlab init NAME --provider ssh --host USER@ADDRESS --force",
        )
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        out.setdefault(key.lower(), value)
    return out


def master_alive(target: Target) -> bool:
    """Whether the shared connection answers: asked of its socket (the path `ssh -G` names, which
    `up` reads anyway), else with `ssh -O check` where that answer is not a plain yes or no."""
    try:
        path = resolved(target).get("controlpath", "none")
    except PadlabError:  # ssh cannot read its configuration: -O check says no, as before
        path = "none"
    alive = mux_alive(path) if path != "none" else None
    if alive is not None:
        return alive
    proc = subprocess.run(
        ["ssh", *options(target, batch=True), "-O", "check", "--", target.host],
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode == 0


# OpenSSH's multiplexing protocol (PROTOCOL.mux in openssh-portable, sections 1, 4 and 11).
MUX_MSG_HELLO, MUX_VERSION = 0x00000001, 4
MUX_C_ALIVE_CHECK, MUX_S_ALIVE = 0x10000004, 0x80000005


def mux_alive(path: str, timeout: float = 5.0) -> bool | None:
    """The master's own answer to `ssh -O check`'s question, without starting ssh (~5 ms of a no-op
    `up`): a hello each way, then MUX_C_ALIVE_CHECK, answered by MUX_S_ALIVE. False: no master
    listens there (no socket, or a stale one); None: something this does not know (ssh then asks)."""
    import struct

    def message(*words: int) -> bytes:
        body = struct.pack(f">{len(words)}I", *words)
        return struct.pack(">I", len(body)) + body

    def receive(sock: socket.socket) -> tuple[int, ...]:
        head = _exactly(sock, 4)
        body = _exactly(sock, struct.unpack(">I", head)[0])
        return struct.unpack(f">{len(body) // 4}I", body[: len(body) // 4 * 4])

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            hello = receive(sock)
            sock.sendall(message(MUX_MSG_HELLO, MUX_VERSION) + message(MUX_C_ALIVE_CHECK, 1))
            reply = receive(sock)
    except (FileNotFoundError, ConnectionRefusedError):
        return False
    except (OSError, ValueError, struct.error):
        return None
    if hello[:2] != (MUX_MSG_HELLO, MUX_VERSION) or reply[:2] != (MUX_S_ALIVE, 1):
        return None
    return True


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ValueError("the master closed the connection")
        data += chunk
    return data


RECHECK_S = 3.0
_MASTER_OK: dict[tuple[str, ...], float] = {}  # options + host -> when this process last saw the master up


def ensure_master(target: Target, timeout: float = 60.0) -> None:
    """Open the shared connection, or explain in one line why ssh could not.

    Its stderr goes to a file, never a pipe, so a master that outlives this call
    cannot hold a reader open. A connection this process checked or opened in the
    last few seconds is not checked again (`up` reaches the box right after starting it).
    """
    key = tuple(options(target, batch=True)) + (target.host,)
    if time.monotonic() - _MASTER_OK.get(key, -RECHECK_S) < RECHECK_S:
        return
    if master_alive(target):
        _MASTER_OK[key] = time.monotonic()
        return
    adopt_known_key(target)
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.run(
                ["ssh", *options(target, master="yes"), "-f", "-N", "--", target.host],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise PadlabError(
                f"ssh to {target.display} did not connect within {timeout:.0f} s",
                f"check the machine is on and reachable: ssh {target.destination}",
            ) from exc
        err.seek(0)
        lines = err.read().decode(errors="replace").splitlines()
    if proc.returncode != 0:
        raise explain_failure(target, proc.returncode, lines) or PadlabError(
            f"ssh to {target.display} failed: {_last(lines) or f'exit code {proc.returncode}'}",
            f"run `ssh -v {target.destination}` to see why",
        )
    _MASTER_OK[key] = time.monotonic()


def _last(lines: list[str]) -> str:
    real = [x.strip() for x in lines if x.strip() and not x.startswith("@")]
    return real[-1] if real else ""


def explain_failure(target: Target, code: int, lines: list[str]) -> PadlabError | None:
    """A one-line PadlabError for ssh's own failures (exit 255) and a missing python3 (127)."""
    text = "\n".join(lines)
    if code == 127 and "python3" in text:
        return PadlabError(
            f"python3 is not installed on {target.display}; padlab needs it to set up the box",
            "install it there: sudo apt-get install -y python3 python3-venv (Debian, Ubuntu) "
            "or sudo dnf install -y python3 (Fedora, RHEL), then run `padlab up` again",
            exit_code=3,
        )
    if code != 255:
        return None
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key verification failed" in text:
        return HostKeyChanged(target)
    if "Permission denied" in text:
        return PadlabError(
            f"ssh refused the login to {target.display}: {_last(lines)}",
            "check the user and key (padlab init NAME --provider ssh --host USER@HOST --identity KEY --force) "
            "or load the key into ssh-agent",
            exit_code=4,
        )
    reachability = (
        "Connection refused",
        "timed out",
        "No route to host",
        "Could not resolve hostname",
        "Network is unreachable",
        "Connection closed",
        "Connection reset",
    )
    if any(word in text for word in reachability):
        return PadlabError(
            f"cannot reach {target.display} over ssh: {_last(lines)}",
            "check that the machine is on and the address and ssh port are right",
            exit_code=5,
        )
    return None


class HostKeyChanged(PadlabError):
    """The machine answered with a different host key than the one padlab recorded first."""

    def __init__(self, target: Target) -> None:
        super().__init__(
            f"the ssh host key of {target.display} changed since padlab first connected; refusing to connect",
            "if you know the machine was reinstalled, run `padlab forget-host-key NAME` and try again",
            exit_code=6,
        )


def known_hosts_name(host: str, port: int | None) -> str:
    """How ssh names a host in known_hosts: 'host', or '[host]:port' off port 22."""
    return host if not port or port == 22 else f"[{host}]:{port}"


def forget_host(host: str, port: int | None = 22, alias: str | None = None) -> bool:
    """Drop padlab's recorded keys for a machine: under its profile's alias, and under the address
    (an address or hostname as ssh resolves it) where padlab kept keys before aliases.

    Cloud providers call this when they re-created the machine, so the new machine's key
    is trusted on first use again. Returns whether a key was removed.
    """
    path = known_hosts()
    if not path.exists():
        return False
    removed = False
    for name in (alias, known_hosts_name(host, port)):
        if not name:
            continue
        proc = subprocess.run(["ssh-keygen", "-R", name, "-f", str(path)], capture_output=True, text=True)
        removed |= proc.returncode == 0 and "updated" in proc.stdout + proc.stderr
    with contextlib.suppress(FileNotFoundError):
        Path(str(path) + ".old").unlink()
    return removed


def close_master(target: Target) -> None:
    """End the shared connection (after a re-creation or to drop a stale one)."""
    _MASTER_OK.clear()
    subprocess.run(
        ["ssh", *options(target, batch=True), "-O", "exit", "--", target.host],
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )


def port_open(host: str, port: int, timeout: float = 3.0) -> bool:
    """sshd answers with its banner: a cheaper reachability probe than a login."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def wait_reachable(host: str, port: int = 22, timeout: float = 300.0) -> None:
    """Block until sshd answers on host:port; cloud providers call it after starting a machine."""
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if time.monotonic() > deadline:
            raise PadlabError(
                f"ssh on {host}:{port} did not answer within {timeout:.0f} s",
                "check the machine's console in the provider's web UI, then run `padlab up` again",
            )
        time.sleep(2)


def remote_python(loader: str) -> str:
    """The remote command line that runs the box program with the box's python3: isolated (-I: no
    PYTHON* variable, user site-packages or current folder of the login user's reaches it) and without
    site (-S: the program is standard library only), which also starts it a few ms sooner."""
    return "exec python3 -I -S -c " + shlex.quote(loader)
