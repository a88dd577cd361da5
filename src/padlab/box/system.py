"""Small OS helpers: commands with optional sudo, idempotent file writes, probes."""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import socket
import stat
import subprocess
from typing import Sequence

from .report import BoxError

# Root's own files on a system box: what root-run units load lives here, never under the
# workstation's prefix or etc, which the Jupyter user owns.
ROOT_DIR = "/var/lib/padlab"
# The box program compiled by this box's python3, root's (transport.LOADER runs it instead of compiling the zip).
PROGRAM_DIR = os.path.join(ROOT_DIR, "program")


def read_plain(path: str, limit: int = -1, follow: bool = False) -> bytes:
    """Up to `limit` bytes (all: -1) of a regular file the Jupyter user may have replaced.

    Never from a FIFO or a device, where an open or a read could wait forever, and, unless
    `follow`, never through a final link. Raises OSError: ENOENT when missing, ELOOP for a
    link, EINVAL ("not a regular file") for anything else that is not a plain file.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        if limit >= 0:
            return os.read(fd, limit)
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read()
    finally:
        os.close(fd)


# Run as the Jupyter user (sys.executable -I -c): file operations inside that user's trees, so that
# a link the user planted there leads only where the user could write anyway. JSON ops on stdin.
USER_OPS = r"""
import base64, json, os, shutil, sys
changed = False
def gone(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)
for op in json.load(sys.stdin):
    kind, path = op["op"], op["path"]
    if kind == "mkdir":
        if not os.path.isdir(path):
            os.makedirs(path, exist_ok=True)
            os.chmod(path, op["mode"])
            changed = True
    elif kind == "write":
        data = base64.b64decode(op["data"])
        try:
            with open(path, "rb") as fh:
                same = fh.read() == data and os.stat(path).st_mode & 0o777 == op["mode"]
        except OSError:
            same = False
        if not same:
            tmp = "%s.%d.padlab-new" % (path, os.getpid())
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, op["mode"])
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, op["mode"])
            os.replace(tmp, path)
            changed = True
    elif kind == "rm":
        if os.path.lexists(path):
            gone(path)
            changed = True
    elif kind == "prune":
        names = sorted(os.listdir(path)) if os.path.isdir(path) else []
        for name in names:
            if name.startswith(op["prefix"]) and name not in op["keep"]:
                gone(os.path.join(path, name))
                changed = True
print(json.dumps({"changed": changed}))
"""


class Host:
    """Runs commands and writes files as the login user, or as root through sudo."""

    def __init__(self, sudo: bool) -> None:
        self.sudo = sudo and os.geteuid() != 0
        self.touched: list = []  # every path written or made: what `up`'s fingerprint stats (fingerprint.py)

    def run(
        self,
        cmd: Sequence[str],
        root: bool = False,
        check: bool = True,
        input: str | None = None,
        env: dict | None = None,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess:
        argv = list(cmd)
        if root and self.sudo:
            argv = ["sudo", "-n", "--"] + argv
        try:
            proc = subprocess.run(argv, input=input, capture_output=True, text=True, env=env, timeout=timeout)
        except FileNotFoundError as exc:
            raise BoxError("command not found on the box: %s" % argv[0], "install it and run again") from exc
        if check and proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
            raise BoxError(
                "'%s' failed (exit %d): %s" % (" ".join(cmd[:3]), proc.returncode, tail[0]),
                "see the box's log with `padlab logs`, fix the cause and run `padlab up` again",
            )
        return proc

    def check_sudo(self) -> None:
        """Fail early and clearly when sudo would stop to ask for a password."""
        if not self.sudo:
            return
        if shutil.which("sudo") is None:
            raise BoxError(
                "sudo is not installed on the box and the login user is not root",
                "install sudo, or log in as root (ssh user)",
            )
        proc = subprocess.run(["sudo", "-n", "true"], capture_output=True, text=True)
        if proc.returncode != 0:
            user = pwd.getpwuid(os.getuid()).pw_name
            raise BoxError(
                "sudo on the box asks for a password, so padlab cannot install system files",
                "allow passwordless sudo for %s, e.g. echo '%s ALL=(ALL) NOPASSWD:ALL' | sudo tee /etc/sudoers.d/padlab"
                % (user, user),
            )

    def as_user(self, user: str | None) -> list:
        """The prefix that runs a command as `user` (Jupyter's): nothing, sudo, or runuser when root.

        It starts in that user's home: tools such as uv read config files in the
        working directory, and the login user's may be closed to `user`.
        """
        if not user or user == login_user():
            return []
        pw_dir = pwd.getpwnam(user).pw_dir
        home = ["env", "-C", pw_dir] if os.path.isdir(pw_dir) else []
        if self.sudo:
            return ["sudo", "-n", "-u", user, "-H", "--"] + home
        if os.geteuid() == 0:
            return ["runuser", "-u", user, "--"] + home
        raise BoxError(
            "padlab runs as %s here and cannot act as %s" % (login_user(), user),
            "log in as %s, or as a user with passwordless sudo" % user,
        )

    def user_ops(self, user: str, ops: list) -> bool:
        """File operations done as `user` (USER_OPS: mkdir, write, rm, prune); returns whether any changed.

        Root acting inside the Jupyter user's trees (the prefix, the venv, the home) follows
        no link that user planted this way: the kernel checks every path as that user.
        """
        import base64
        import json
        import sys

        for op in ops:
            if "data" in op:
                op["data"] = base64.b64encode(op["data"]).decode()
        if user == login_user():
            prefix = []  # type: list
        elif self.sudo:
            prefix = ["sudo", "-n", "-u", user, "--"]
        elif os.geteuid() == 0:
            prefix = ["runuser", "-u", user, "--"]
        else:
            prefix = self.as_user(user)  # raises: no way to act as that user
        # The interpreter itself, not a venv link to it that the other user may not reach (-I: no site).
        argv = prefix + [os.path.realpath(sys.executable), "-I", "-c", USER_OPS]
        proc = subprocess.run(argv, input=json.dumps(ops), capture_output=True, text=True, cwd="/")
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
            raise BoxError(
                "could not write %s as %s: %s" % (ops[0]["path"] if ops else "?", user, tail[0]),
                "check that %s owns its files under padlab's folders, then run `padlab up` again" % user,
            )
        try:
            return bool(json.loads(proc.stdout)["changed"])
        except (ValueError, KeyError, TypeError):
            return True

    def for_user(self, owner: str | None, path: str) -> bool:
        """Whether to act on path as `owner` rather than as root: owner is another, unprivileged user
        who owns some part of the path that exists (so could have planted a link there)."""
        if not owner or owner == login_user():
            return False
        if not (self.sudo or os.geteuid() == 0):
            return False
        uid = pwd.getpwnam(owner).pw_uid
        if uid == 0:
            return False
        part = os.path.abspath(path)
        while True:
            try:
                if os.lstat(part).st_uid == uid:
                    return True
            except OSError:
                pass
            if part == os.path.dirname(part):
                return False
            part = os.path.dirname(part)

    def read(self, path: str) -> bytes | None:
        """A regular file's bytes, None when missing or not a plain file (a FIFO planted in the
        Jupyter user's trees must not hang `up`)."""
        try:
            return read_plain(path, follow=True)
        except FileNotFoundError:
            return None
        except PermissionError:
            if not self.sudo:
                raise
            proc = subprocess.run(["sudo", "-n", "cat", path], capture_output=True)
            return proc.stdout if proc.returncode == 0 else None
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                return None
            raise

    def write(
        self, path: str, content: bytes | str, mode: int = 0o644, owner: str | None = None, root: bool = False
    ) -> bool:
        """Atomically write a file; returns whether anything changed (content, mode or owner)."""
        data = content.encode() if isinstance(content, str) else content
        self.touched.append(path)
        if owner and self.for_user(owner, path):
            return self.user_ops(owner, [{"op": "write", "path": path, "data": data, "mode": mode}])
        old = self.read(path)
        want_uid = pwd.getpwnam(owner).pw_uid if owner else None
        try:
            st = os.stat(path)
            same_meta = (st.st_mode & 0o777) == mode and (want_uid is None or st.st_uid == want_uid)
        except (FileNotFoundError, PermissionError):
            same_meta = False
        if old == data and same_meta:
            return False
        import tempfile

        directory = os.path.dirname(path)
        if root and self.sudo:
            with tempfile.NamedTemporaryFile(delete=False) as tmp:
                tmp.write(data)
            try:
                self.run(["mkdir", "-p", directory], root=True)
                argv = ["install", "-m", "%o" % mode]
                if owner:
                    argv += ["-o", owner]
                self.run(argv + [tmp.name, path + ".padlab-new"], root=True)
                self.run(["mv", "-f", path + ".padlab-new", path], root=True)
            finally:
                os.unlink(tmp.name)
            return True
        os.makedirs(directory, exist_ok=True)
        fd, tmpname = tempfile.mkstemp(dir=directory, prefix=".padlab-")
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if want_uid is not None and os.geteuid() == 0:
                os.chown(tmpname, want_uid, pwd.getpwnam(owner).pw_gid)
            os.replace(tmpname, path)
        except BaseException:
            if os.path.exists(tmpname):
                os.unlink(tmpname)
            raise
        return True

    def makedirs(self, path: str, mode: int = 0o755, owner: str | None = None, root: bool = False) -> bool:
        self.touched.append(path)
        if os.path.isdir(path):
            return False
        if owner and self.for_user(owner, path):
            return self.user_ops(owner, [{"op": "mkdir", "path": path, "mode": mode}])
        if root and self.sudo:
            argv = ["install", "-d", "-m", "%o" % mode]
            if owner:
                argv += ["-o", owner]
            self.run(argv + [path], root=True)
        else:
            os.makedirs(path, mode=mode, exist_ok=True)
            os.chmod(path, mode)
            if owner and os.geteuid() == 0:
                pw = pwd.getpwnam(owner)
                os.chown(path, pw.pw_uid, pw.pw_gid)
        return True


def sha256(data: bytes | str) -> str:
    import hashlib

    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def has_systemd() -> bool:
    """systemd as PID 1 creates this directory; the documented sd_booted() test."""
    return os.path.isdir("/run/systemd/system")


def cron_running() -> bool:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % pid) as fh:
                if fh.read().strip() in ("cron", "crond", "cronie"):
                    return True
        except OSError:
            continue
    return False


IP_ADDR = ["ip", "-o", "addr", "show", "scope", "global"]


def addresses(ip_out: str | None = None) -> list[str]:
    """Non-loopback IP addresses of this box, IPv4 first, for certificate SANs and the card
    (``ip_out``: what IP_ADDR printed, where the caller ran it alongside other commands)."""
    found: list[str] = []
    if ip_out is None and shutil.which("ip"):
        ip_out = subprocess.run(IP_ADDR, capture_output=True, text=True).stdout
    if ip_out is not None:
        for line in ip_out.splitlines():
            parts = line.split()
            for i, word in enumerate(parts):
                if word in ("inet", "inet6") and i + 1 < len(parts):
                    found.append(parts[i + 1].split("/")[0])
    if not found:
        try:
            for info in socket.getaddrinfo(socket.gethostname(), None):
                addr = str(info[4][0])
                if not addr.startswith("127.") and addr != "::1" and not addr.startswith("fe80"):
                    found.append(addr)
        except OSError:
            pass
    unique = list(dict.fromkeys(found))
    return sorted(unique, key=lambda a: ":" in a)


def primary_address() -> str | None:
    """The address of the default route, found without sending a packet (UDP connect)."""
    for family, target in ((socket.AF_INET, "198.18.0.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((target, 9))
                addr = sock.getsockname()[0]
                if not addr.startswith("127."):
                    return addr
        except OSError:
            continue
    return None


def login_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def expand_user(path: str, user: str) -> str:
    """Expand ~ for the service user, who may not be the user running this program."""
    if path.startswith("~"):
        home = pwd.getpwnam(user).pw_dir
        return os.path.join(home, path[1:].lstrip("/"))
    return path
