"""What counts as "in use" on the box: the PROBES table. Each probe is cheap enough to run every minute.

A probe takes a ``Seen`` (the agent's config and memory, the time, and reads
shared between probes such as the process list) and returns Signals: ``active``
means in use right now; otherwise ``at`` is when it was last in use (None:
information for the log only). ``seen.state`` carries what a probe must remember
between checks, such as which kernels were busy last time, because Jupyter
itself does not count the end of a long cell as activity.

A new idle signal is one function ``probe(seen) -> list of Signal`` and one
entry in PROBES (with the process names it wants in ``seen.procs``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import re
import shutil
import socket
import ssl
import stat
import struct
import subprocess
from typing import Callable

from ..request import GPU_THRESHOLD
from ..system import read_plain

ACTIVITY_PATH = "/padlab-agent/activity"
SSH_SESSION = re.compile(r"^sshd(?:-session)?: (\S+)@(pts/\d+)")
UTMP = "/run/utmp"
# struct utmp on Linux (glibc, 64-bit and 32-bit alike): type, pid, line, id, user, host, exit,
# session, tv_sec, tv_usec, addr_v6, reserved.
UTMP_RECORD = struct.Struct("<hxxi32s4s32s256shhiii16s20x")
USER_PROCESS = 7
MOSH_GRACE = 30  # mosh-server marks a client detached after 30 s of silence
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Signal:
    """One reason the box is (or was recently) in use."""

    __slots__ = ("kind", "detail", "active", "at")

    def __init__(self, kind: str, detail: str, active: bool = False, at: float | None = None) -> None:
        self.kind = kind
        self.detail = detail
        self.active = active
        self.at = at

    def text(self) -> str:
        return "%s: %s" % (self.kind, self.detail)


def processes(names: tuple) -> list:
    """(pid, comm, cmdline) of this machine's processes whose comm is one of names; one pass over /proc.

    Processes of containers on this machine (another PID namespace) are theirs, not ours.
    """
    found = []
    ours = _pid_namespace("self")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % entry) as fh:
                comm = fh.read().strip()
            if comm not in names:
                continue
            with open("/proc/%s/cmdline" % entry, "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        theirs = _pid_namespace(entry)
        if ours and theirs and theirs != ours:
            continue
        found.append((int(entry), comm, cmdline))
    return found


def _pid_namespace(pid: str) -> str:
    try:
        return os.readlink("/proc/%s/ns/pid" % pid)
    except OSError:
        return ""


def utmp_records(path: str = UTMP) -> list:
    """Live login records: dicts with pid, line, user, host, time."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return []
    out = []
    size = UTMP_RECORD.size
    for off in range(0, len(raw) - size + 1, size):
        kind, pid, line, _id, user, host, _t, _e, _s, sec, _us, _a = UTMP_RECORD.unpack_from(raw, off)
        if kind != USER_PROCESS:
            continue
        out.append(
            {
                "pid": pid,
                "line": _cstr(line),
                "user": _cstr(user),
                "host": _cstr(host),
                "time": float(sec),
            }
        )
    return out


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def ssh_sessions(procs: list) -> list:
    """Interactive ssh logins hold a pty; padlab's own multiplexed connection runs without one."""
    out = []
    for _pid, comm, cmdline in procs:
        if comm not in ("sshd", "sshd-session"):
            continue
        match = SSH_SESSION.match(cmdline)
        if match:
            out.append(Signal("ssh", "session %s@%s" % match.groups(), active=True))
    return out


def mosh_sessions(procs: list, records: list, state: dict, now: float) -> list:
    """A mosh client counts from its last contact: utmp says 'IP via mosh [PID]' while it talks
    and 'mosh [PID]' from 30 s after it went quiet; without utmp, the server's I/O counters tell."""
    out = []
    io_seen = state.get("mosh_io") or {}
    io_next = {}
    for pid, comm, _cmd in procs:
        if comm != "mosh-server":
            continue
        tag = "[%d]" % pid
        record = next((r for r in records if r["host"].endswith(tag)), None)
        if record and " via mosh " in record["host"]:
            client = record["host"].split(" via mosh ", 1)[0]
            out.append(Signal("mosh", "client %s connected (%s)" % (client, record["line"]), active=True))
            continue
        if record:
            gone = record["time"] - MOSH_GRACE
            out.append(Signal("mosh", "client silent since %s (%s)" % (clock(gone), record["line"]), at=gone))
            continue
        counters = _io_counters(pid)
        last = io_seen.get(str(pid)) or {}
        at = now if counters != last.get("io") else last.get("at", process_start(pid))
        io_next[str(pid)] = {"io": counters, "at": at}
        out.append(Signal("mosh", "server %d last exchanged data at %s" % (pid, clock(at)), at=at))
    state["mosh_io"] = io_next
    return out


def _io_counters(pid: int) -> str:
    try:
        with open("/proc/%d/io" % pid) as fh:
            fields = dict(line.split(":", 1) for line in fh.read().splitlines() if ":" in line)
    except OSError:
        return ""
    return "%s/%s" % (fields.get("syscr", "").strip(), fields.get("syscw", "").strip())


def gpu(threshold: int) -> list:
    """Utilisation of the busiest GPU, when nvidia-smi exists; at or above threshold is use."""
    exe = shutil.which("nvidia-smi", path=os.environ.get("PATH", "") + ":" + SYSTEM_PATH)
    if not exe:
        return []
    try:
        proc = subprocess.run(
            [exe, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        values = [int(v.strip()) for v in proc.stdout.split() if v.strip().isdigit()]
    except (OSError, subprocess.SubprocessError) as exc:
        return [Signal("gpu", "nvidia-smi failed: %s" % exc)]
    if proc.returncode != 0 or not values:
        return [Signal("gpu", "nvidia-smi gave no reading (exit %d)" % proc.returncode)]
    busiest = max(values)
    if busiest >= threshold:
        return [Signal("gpu", "utilisation %d%% (threshold %d%%)" % (busiest, threshold), active=True)]
    return [Signal("gpu", "utilisation %d%%, below %d%%" % (busiest, threshold))]


def number(value: object) -> float | None:
    """A finite int or float read from a file someone else writes; anything else (text, bool, nan) is None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def text(value: object, limit: int = 200) -> str:
    """A string read from a file someone else writes, for a log line: never another type, never long."""
    return value[:limit] if isinstance(value, str) else ""


def downloads(base: str, now: float) -> list:
    """A `padlab get` download is use while it runs (its state is rewritten every few seconds);
    a finished one counts from when it ended, so the idle limit starts after it."""
    from ..files import jobs

    out = []
    for job in jobs.all_jobs(base, now):
        # Every value here is the Jupyter user's to write: checked, never trusted for its type.
        name = os.path.basename(text(job.get("dest")) or "download")
        if job.get("state") == "running":
            done = number(job.get("bytes")) or 0
            out.append(Signal("download", "%s running (%d bytes so far)" % (name, done), active=True))
            continue
        at = number(job.get("finished"))
        if at:
            # A finish in the future would hold the box up: it counts no later than now.
            at = min(at, now)
            out.append(Signal("download", "%s %s at %s" % (name, text(job.get("state")), clock(at)), at=at))
    return out


def keep_until(path: str, now: float, longest: float) -> tuple:
    """(end of the padlab-keep hold or 0, why the file was ignored or None).

    The file is the user's: read little, follow no link, and ignore (but say) anything that is
    not a time within `longest` from now, such as inf, nan or a date past the year 9999.
    """
    try:
        raw = read_plain(path, 64)
    except FileNotFoundError:
        return 0.0, None
    except OSError as exc:
        return 0.0, "ignored the hold in %s: %s" % (path, exc.strerror or exc)
    content = raw.decode(errors="replace").strip()
    try:
        until = float(content or 0)
    except ValueError:
        until = math.nan
    if math.isfinite(until) and until <= now + longest + 60:
        return until, None
    return 0.0, "ignored the hold in %s (%r): not a time within %d s from now" % (path, content[:20], longest)


def jupyter(conf: dict, state: dict, now: float, running: bool) -> list:
    """Activity, open connections and busy kernels, read from padlab's Jupyter extension."""
    busy_before = state.get("busy") or {}
    out = []
    if not running:
        state["busy"] = {}
        out += [Signal("kernel", "stopped while busy (%s)" % p, at=now) for p in busy_before.values()]
        return out
    try:
        data = fetch_activity(conf)
    except (OSError, ValueError, ssl.SSLError) as exc:
        seen = state.get("jupyter_ok_at") or 0.0
        # Unreadable is not idle: count Jupyter as used until it has been unreadable for a whole limit.
        return out + [Signal("jupyter", "activity unreadable (%s)" % exc, at=seen)]
    state["jupyter_ok_at"] = now
    busy_now = {}
    listed = data.get("kernels")
    if not isinstance(listed, list):
        listed = []
    listed = [k for k in listed if isinstance(k, dict) and isinstance(k.get("id"), str)]
    kernels = {kernel["id"][:64]: kernel for kernel in listed}
    for kid, kernel in kernels.items():
        label = text(kernel.get("path")) or text(kernel.get("name")) or "kernel"
        if kernel.get("execution_state") == "busy":
            busy_now[kid] = label
            out.append(Signal("kernel", "busy (%s)" % label, active=True))
    for kid, label in busy_before.items():
        if kid not in busy_now:
            # The end of a long cell is use. A kernel still there tells when it went idle (its
            # last message is that status); no earlier than the check that saw it busy, though.
            end = parse_time((kernels.get(kid) or {}).get("last_activity"))
            at = min(max(end, number(state.get("busy_at")) or 0.0), now) if end else now
            out.append(Signal("kernel", "finished running (%s) at %s" % (label, clock(at)), at=at))
    state["busy"] = busy_now
    if busy_now:
        state["busy_at"] = now
    connections = number(data.get("connections")) or 0
    if connections > 0:
        out.append(Signal("jupyter", "%d open connection(s)" % connections, active=True))
    # A time in the future would hold the box up past its limit: each counts no later than now.
    last = parse_time(data.get("last_activity"))
    if last:
        out.append(Signal("jupyter", "last activity %s" % clock(min(last, now)), at=min(last, now)))
    started = parse_time(data.get("started"))
    if started:
        out.append(Signal("jupyter", "started %s" % clock(min(started, now)), at=min(started, now)))
    return out


def fetch_activity(conf: dict, timeout: float = 10.0) -> dict:
    """One HTTPS GET to the extension (raw socket: lighter than urllib), the server verified first.

    Verified against ``pin`` where Jupyter serves a public certificate (its chain, root's file,
    read again at each check, so a renewal is seen at once), else against padlab's CA (the
    agent's own copy). The token goes out only once the server is the one expected.
    """
    host, port = conf["host"], int(conf["port"])
    with open(conf["token_file"]) as fh:
        token = fh.read().strip()
    pin = conf.get("pin")
    if pin:
        expected = pinned_sha256(pin)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False  # loopback: the certificate names the public address
        ctx.verify_mode = ssl.CERT_NONE  # the exact certificate is compared below instead
    else:
        ctx = ssl.create_default_context(cafile=conf["ca"])
    request = (
        "GET %s HTTP/1.0\r\nHost: %s:%d\r\nAuthorization: padlab-agent %s\r\nConnection: close\r\n\r\n"
        % (ACTIVITY_PATH, "[%s]" % host if ":" in host else host, port, token)
    )
    chunks = []
    raw = socket.create_connection((host, port), timeout=timeout)
    with ctx.wrap_socket(raw, server_hostname=host) as sock:
        if pin:
            der = sock.getpeercert(binary_form=True) or b""
            if hashlib.sha256(der).hexdigest() != expected:
                raise OSError("the certificate Jupyter serves is not the one in %s" % pin)
        sock.sendall(request.encode())
        while sum(len(c) for c in chunks) < 4 << 20:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = head.split(None, 2)[1:2]
    if status != [b"200"]:
        raise OSError("HTTP %s" % (status[0].decode() if status else "no answer"))
    data = json.loads(body.decode())
    # The extension's module is the Jupyter user's, so its answer is checked like any planted file.
    if not isinstance(data, dict):
        raise ValueError("the answer is not a JSON object")
    return data


def pinned_sha256(path: str) -> str:
    """SHA-256 of the DER of the first certificate in root's PEM file `path` (a chain: the leaf).

    Only a regular file, reached through no final link, in a real folder, whose owner (and the
    folder's) is root or this agent's own user, with neither writable by anyone else: a file the
    Jupyter user could write would let a notebook choose what the agent trusts.
    """
    folder = os.path.dirname(path) or "."
    trusted = (0, os.geteuid())
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid not in trusted or st.st_mode & 0o022:
        raise OSError("%s is not a folder only root can change" % folder)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid not in trusted or st.st_mode & 0o022:
            raise OSError("%s is not a file only root can change" % path)
        with os.fdopen(os.dup(fd), "rb") as fh:
            raw = fh.read(1 << 20)
    finally:
        os.close(fd)
    begin, end = b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----"
    start = raw.find(begin)
    stop = raw.find(end, start)
    if start < 0 or stop < 0:
        raise ValueError("no certificate in %s" % path)
    der = ssl.PEM_cert_to_DER_cert(raw[start : stop + len(end)].decode("ascii"))
    return hashlib.sha256(der).hexdigest()


def parse_time(text: str | None) -> float | None:
    """Jupyter's ISO 8601 UTC timestamps ('2024-05-01T10:00:00.123456Z') to epoch seconds."""
    if not text or not isinstance(text, str):
        return None
    try:
        value = datetime.datetime.fromisoformat(text[:64].replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def clock(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def boot_time() -> float:
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def machine_started() -> float:
    """When this machine (or container) started: its PID 1's start, not the host kernel's boot."""
    return process_start(1) or boot_time()


def process_start(pid: int) -> float:
    try:
        with open("/proc/%d/stat" % pid) as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return 0.0
    return boot_time() + ticks / os.sysconf("SC_CLK_TCK")


class Seen:
    """What every probe is given: config, memory between checks, the time, and reads done once for all."""

    def __init__(self, conf: dict, state: dict, now: float, jupyter_running: Callable[[], bool]) -> None:
        self.conf = conf
        self.state = state
        self.now = now
        self.jupyter_running = jupyter_running
        self._procs = None  # type: list | None
        self._utmp = None  # type: list | None

    @property
    def procs(self) -> list:
        """(pid, comm, cmdline) of the processes some probe asked for, from one pass over /proc."""
        if self._procs is None:
            self._procs = processes(tuple(name for probe in PROBES for name in probe.processes))
        return self._procs

    @property
    def utmp(self) -> list:
        if self._utmp is None:
            self._utmp = utmp_records()
        return self._utmp


class Probe:
    """One source of activity: a name, its function, and the process names it reads from seen.procs."""

    __slots__ = ("name", "run", "processes")

    def __init__(self, name: str, run: Callable[[Seen], list], processes: tuple = ()) -> None:
        self.name = name
        self.run = run
        self.processes = processes


def _jupyter(seen: Seen) -> list:
    return jupyter(seen.conf["jupyter"], seen.state, seen.now, seen.jupyter_running())


def _ssh(seen: Seen) -> list:
    return ssh_sessions(seen.procs)


def _mosh(seen: Seen) -> list:
    return mosh_sessions(seen.procs, seen.utmp, seen.state, seen.now)


def _gpu(seen: Seen) -> list:
    return gpu(int(seen.conf.get("gpu_threshold", GPU_THRESHOLD)))


def _download(seen: Seen) -> list:
    from ..files.jobs import jobs_dir

    box = seen.conf["layout"]
    return downloads(jobs_dir(box["prefix"], box["user"], bool(box["system"])), seen.now)


PROBES = (
    Probe("jupyter", _jupyter),
    Probe("ssh", _ssh, ("sshd", "sshd-session")),
    Probe("mosh", _mosh, ("mosh-server",)),
    Probe("gpu", _gpu),
    Probe("download", _download),
)
