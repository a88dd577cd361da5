"""Where `padlab get` keeps its download jobs on the box, and how to read them.

Light on purpose: the autostop agent reads jobs every minute (a running
download is use), so this imports nothing beyond os and json. The runner
itself is box/files/download.py; starting and attaching is box/files/files.py.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import pwd
import time

from ..system import read_plain

FINAL = ("done", "failed")
# The fields of state.json that are numbers (download.py writes them): one that is not is left out.
NUMBERS = ("updated", "started", "finished", "bytes", "total", "rate")
STALE = 120.0  # a "running" state not rewritten for this long belongs to a runner that died (kill, reboot)


def jobs_dir(prefix: str, user: str, system: bool) -> str:
    """Download jobs of the user Jupyter runs as: in their home on a remote box, in the workstation's
    own folder on this machine (the local provider keeps everything under PADLAB_HOME)."""
    if system:
        return os.path.join(pwd.getpwnam(user).pw_dir, ".cache", "padlab", "downloads")
    return os.path.join(prefix, "downloads")


def job_id(url: str, dest: str) -> str:
    """One job per URL and destination: running `get` again for them finds the same job."""
    return hashlib.sha256(("%s\0%s" % (url, dest)).encode()).hexdigest()[:16]


def read_json(path: str, limit: int = 1 << 20) -> dict:
    """A small JSON file of a job, never through a link nor from a FIFO (the agent reads these as root)."""
    try:
        raw = read_plain(path, limit)
    except OSError:
        return {}
    try:
        data = json.loads(raw.decode())
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: str, data: dict) -> None:
    """Atomic, so a reader never sees half a state."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def runner_alive(jobdir: str) -> bool:
    """Whether a runner holds the job's lock. The probe holds the lock for an instant; a runner
    that starts meanwhile waits for it, and starters serialise on start.lock."""
    try:
        fd = os.open(os.path.join(jobdir, "lock"), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def status(jobdir: str, now: float | None = None, probe: bool = False) -> dict:
    """A job as people see it; a running one whose heartbeat stopped is 'interrupted'. With probe,
    also one whose runner is gone (a reboot): only the box program probes, never the agent."""
    st = read_json(os.path.join(jobdir, "state.json"))
    job = read_json(os.path.join(jobdir, "job.json"))
    # Both files are the Jupyter user's (root reads them: the agent, `get --list`): typed, or left out.
    st = {k: v for k, v in st.items() if k not in NUMBERS or _number(v) is not None}
    if not isinstance(st.get("state"), str):
        st.pop("state", None)
    out = dict(st, url=_text(job.get("url")), dest=_text(job.get("dest")), id=os.path.basename(jobdir))
    now = time.time() if now is None else now
    stale = now - (_number(st.get("updated")) or 0.0) > STALE
    if st.get("state") not in FINAL and (stale or (probe and not runner_alive(jobdir))):
        out["state"] = "interrupted"
    return out


def all_jobs(base: str, now: float | None = None, probe: bool = False) -> list:
    """Every job under base, newest first."""
    try:
        names = os.listdir(base)
    except OSError:
        return []
    found = [status(os.path.join(base, n), now, probe) for n in names if len(n) == 16]
    return sorted((j for j in found if j.get("url")), key=lambda j: -(_number(j.get("started")) or 0.0))


def _number(value: object) -> float | None:
    """A finite number from a job file, else None (text, bool, nan and inf are not times or sizes)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
