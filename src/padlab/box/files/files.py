"""Datasets and files on the box: the `get` action (start, re-attach, list downloads) and `paths` (push/pull).

A download runs as a job of its own (box/files/download.py), so the client may go
away at any time: a transient systemd unit where systemd is PID 1 and padlab
may add system units, else a detached process in a session of its own. Either
way it runs as the user Jupyter runs as, never as root on a remote box. This
program only starts the job when no runner holds it, then follows its
state.json and streams progress events until it ends. A second `get` for the
same URL and folder finds the same job and follows it the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
import uuid
from typing import Iterator

from .. import account, packages
from ..context import Context
from ..report import BoxError, Report
from ..system import Host, expand_user, has_systemd
from . import jobs

RUNNER = (
    "import sys;sys.path.insert(0,sys.argv[1]+'/runner.pyz');"
    "from padlab_box.files import download;sys.exit(download.main(sys.argv[1]))"
)
START_WAIT = 30.0
POLL = 0.5
PROXY_VARS = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


class Owner:
    """The user the files and the job belong to (Jupyter's user), and how to make things as them."""

    def __init__(self, req: dict) -> None:
        self.system = bool(req.get("system"))
        # Who Jupyter runs as, the way every other action reckons it (padlab-jupyter where root logs in).
        self.name = account.resolve(req.get("user"), self.system)
        try:
            pw = pwd.getpwnam(self.name)
        except KeyError as exc:
            raise BoxError(
                "the user %r that Jupyter runs as does not exist on the box" % self.name,
                "run `padlab up` to set up the box",
            ) from exc
        self.uid, self.gid, self.home = pw.pw_uid, pw.pw_gid, pw.pw_dir
        me = os.geteuid()
        if self.system and self.uid == 0:
            raise BoxError(
                "Jupyter runs as root on this box, and padlab never runs downloads as root",
                "log in as an ordinary user: padlab init NAME --user USER --force, then padlab up",
                code="root",
            )
        if me not in (0, self.uid):
            raise BoxError(
                "files belong to %s, who runs Jupyter, but padlab logs in as %s"
                % (self.name, pwd.getpwuid(me).pw_name),
                "log in as %s or as root (padlab init NAME --user USER --force)" % self.name,
                code="wrong_user",
            )
        self.chown = me == 0 and self.uid != 0
        self._root_ids = (os.getegid(), os.getgroups()) if self.chown else None
        self._dropped = False

    @contextlib.contextmanager
    def acting(self) -> Iterator[None]:
        """File work in the user's trees with the user's own rights (effective ids only).

        Root here would follow any link the user planted in the home (a job folder made a
        link to a root-only folder, say). As the user, the kernel checks each path as theirs,
        so nothing lands outside what they could write. The real and saved ids stay root's:
        the user cannot signal or trace this program meanwhile, and `root()` takes them back.
        """
        if not self.chown or self._dropped:
            yield
            return
        self._drop()
        try:
            yield
        finally:
            self._regain()

    @contextlib.contextmanager
    def root(self) -> Iterator[None]:
        """Root's rights back for one step inside `acting` (starting the job's unit)."""
        if not self._dropped:
            yield
            return
        self._regain()
        try:
            yield
        finally:
            self._drop()

    def _drop(self) -> None:
        os.setgroups(os.getgrouplist(self.name, self.gid))
        os.setegid(self.gid)
        os.seteuid(self.uid)
        self._dropped = True

    def _regain(self) -> None:
        assert self._root_ids is not None
        os.seteuid(0)
        os.setegid(self._root_ids[0])
        os.setgroups(self._root_ids[1])
        self._dropped = False

    def own(self, path: str) -> None:
        if self.chown and os.geteuid() == 0:
            os.lchown(path, self.uid, self.gid)

    def makedirs(self, path: str, mode: int = 0o755) -> None:
        """Create path and any missing parents, each owned by this user."""
        missing = []
        while path and not os.path.isdir(path):
            missing.append(path)
            path = os.path.dirname(path)
        for d in reversed(missing):
            os.mkdir(d, mode)
            self.own(d)

    def write(self, path: str, data: bytes, mode: int = 0o600) -> None:
        tmp = "%s.%d.tmp" % (path, os.getpid())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        self.own(tmp)
        os.replace(tmp, path)


def notebook_path(req: dict, owner: Owner, relative: str) -> str:
    """A path inside the notebook folder; a relative path that leaves it is refused."""
    parts = relative.replace("\\", "/").split("/")
    if os.path.isabs(relative) or ".." in parts:
        raise BoxError(
            "%r is not inside the notebook folder" % relative,
            "give a path relative to the notebook folder, without '..'",
            code="bad_path",
        )
    root = expand_user(req["root_dir"], owner.name)
    return os.path.normpath(os.path.join(root, relative))


# -- get -----------------------------------------------------------------------------------------


def get(ctx: Context) -> None:
    """Everything in the user's trees as the user (Owner.acting); only starting the job as root."""
    owner = Owner(ctx.req)
    try:
        with owner.acting():
            _get(ctx, owner)
    except PermissionError as exc:
        raise BoxError(
            "%s may not write %s, so the download cannot go there" % (owner.name, exc.filename or "a folder"),
            "on the box, remove that path or whatever link leads to it (as %s), then run it again"
            % owner.name,
            code="bad_path",
        ) from None


def _get(ctx: Context, owner: Owner) -> None:
    req, report, program = ctx.req, ctx.report, ctx.program
    spec = req["get"]
    base = jobs.jobs_dir(req["prefix"], owner.name, owner.system)
    root = expand_user(req["root_dir"], owner.name)
    report.data["root"] = root
    if spec.get("list"):
        report.data["downloads"] = jobs.all_jobs(base, probe=True)
        return
    folder = notebook_path(req, owner, spec.get("to") or "datasets")
    dest = os.path.join(folder, spec["name"])
    owner.makedirs(folder)
    owner.makedirs(base, mode=0o700)
    jobdir = os.path.join(base, jobs.job_id(spec["url"], dest))
    owner.makedirs(jobdir, mode=0o700)
    with _start_lock(jobdir, owner):
        if jobs.runner_alive(jobdir):
            nonce = jobs.read_json(os.path.join(jobdir, "job.json")).get("nonce")
            started = False
        else:
            done = _finished(jobdir, dest, spec)
            if done is not None:
                report.step("download", False, "%s is already there" % dest)
                report.data.update(download=done, attached=False)
                return
            nonce = _start(req, jobdir, dest, spec, owner, program, report)
            started = True
    final = follow(jobdir, nonce)
    if final.get("state") != "done":
        raise BoxError(
            final.get("error") or "the download failed",
            final.get("fix") or "run the same command again",
            code=final.get("code") or "failed",
        )
    report.step("download", started, dest)
    report.data.update(download=final, attached=not started)


@contextlib.contextmanager
def _start_lock(jobdir: str, owner: Owner) -> Iterator[None]:
    """Two `get`s for one job at once start one runner."""
    path = os.path.join(jobdir, "start.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        owner.own(path)
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _finished(jobdir: str, dest: str, spec: dict) -> dict | None:
    """The job's state when it already did all that is asked now, else None (start or resume it)."""
    st = jobs.status(jobdir)
    job = jobs.read_json(os.path.join(jobdir, "job.json"))
    if not (st.get("state") == "done" and os.path.isfile(dest)):
        if os.path.lexists(dest) and not st.get("downloaded"):
            raise BoxError(
                "%s already exists on the box; padlab never overwrites a file" % dest,
                "move it away, or download elsewhere with --to DIR",
                code="exists",
            )
        return None
    if spec.get("unpack") and not st.get("unpacked"):
        return None
    want = spec.get("sha256")
    if want and want != job.get("sha256") and _sha256(dest) != want:
        raise BoxError(
            "%s is already on the box, and its SHA-256 is not %s" % (dest, want),
            "check the --sha256 value; to fetch it again, move the file away first",
            code="checksum",
        )
    return st


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _start(
    req: dict, jobdir: str, dest: str, spec: dict, owner: Owner, program: bytes, report: Report
) -> str:
    """Write the job and start its runner; returns the launch's nonce once the runner has taken over."""
    state_file = os.path.join(jobdir, "state.json")
    old = jobs.read_json(state_file)
    if old.get("downloaded") and not os.path.isfile(dest):
        os.unlink(state_file)  # the file was moved away since: fetch it again
    nonce = uuid.uuid4().hex
    job = {
        "url": spec["url"],
        "dest": dest,
        "sha256": spec.get("sha256"),
        "unpack": bool(spec.get("unpack")),
        "nonce": nonce,
    }
    owner.write(os.path.join(jobdir, "job.json"), json.dumps(job).encode())
    owner.write(os.path.join(jobdir, "runner.pyz"), program)
    report.stage("starting the download on the box")
    with owner.root():
        how = _launch(req, jobdir, owner)
    deadline = time.monotonic() + START_WAIT
    while jobs.read_json(state_file).get("nonce") != nonce:
        if time.monotonic() > deadline:
            raise BoxError(
                "the download job did not start within %d s (%s)" % (START_WAIT, how),
                "see %s on the box" % os.path.join(jobdir, "log"),
            )
        time.sleep(0.05)
    return nonce


def _launch(req: dict, jobdir: str, owner: Owner) -> str:
    argv = [sys.executable, "-I", "-c", RUNNER, jobdir]
    if has_systemd() and (owner.system or os.geteuid() == 0):
        host = Host(sudo=owner.system)
        host.check_sudo()
        unit = "padlab-get-%s" % os.path.basename(jobdir)
        run = ["systemd-run", "--unit", unit, "--uid", owner.name, "--collect", "--quiet"]
        run += ["--description", "padlab get %s" % os.path.basename(jobdir)]
        run += ["--setenv=%s=%s" % (k, os.environ[k]) for k in PROXY_VARS if k in os.environ]
        proc = host.run(run + ["--"] + argv, root=True, check=False)
        if proc.returncode != 0:  # a unit of that name left over, failed: clear it once
            host.run(["systemctl", "reset-failed", unit + ".service"], root=True, check=False)
            host.run(run + ["--"] + argv, root=True)
        return "systemd unit %s.service" % unit
    log = os.path.join(jobdir, "log")
    with owner.acting():
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    try:
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            cwd="/",
            start_new_session=True,
            close_fds=True,
            preexec_fn=_become(owner) if owner.chown else None,
        )
    finally:
        os.close(fd)
    return "detached process"


def _become(owner: Owner):
    def drop() -> None:
        os.initgroups(owner.name, owner.gid)
        os.setgid(owner.gid)
        os.setuid(owner.uid)
        os.environ["HOME"] = owner.home

    return drop


def follow(jobdir: str, nonce: str | None) -> dict:
    """Stream the job's progress as events until it ends; the client may leave at any time."""
    last = None
    while True:
        st = jobs.status(jobdir)
        event = {
            "event": "progress",
            "state": st.get("state"),
            "bytes": st.get("bytes") or 0,
            "total": st.get("total"),
            "rate": st.get("rate"),
            "note": st.get("note"),
            "dest": st.get("dest"),
        }
        if event != last:
            sys.stderr.write(json.dumps(event) + "\n")
            sys.stderr.flush()
            last = event
        if st.get("state") in jobs.FINAL and (nonce is None or st.get("nonce") == nonce):
            return st
        if not jobs.runner_alive(jobdir):
            st = jobs.status(jobdir)
            if st.get("state") in jobs.FINAL:
                return st
            raise BoxError(
                "the download stopped before it finished (see %s)" % os.path.join(jobdir, "log"),
                "run the same command again: it resumes",
                code="interrupted",
            )
        time.sleep(POLL)


# -- push and pull -------------------------------------------------------------------------------


def paths(ctx: Context) -> None:
    """Where REMOTE is for push/pull, checked against the notebook folder; rsync must be there."""
    req, report = ctx.req, ctx.report
    owner = Owner(req)
    spec = req["paths"]
    path = notebook_path(req, owner, spec.get("path") or ".")
    if spec["rsync"] and not shutil.which("rsync"):
        raise BoxError(
            "rsync is not installed on the box",
            "run `padlab up %s` (it installs rsync), or on the box: sudo apt-get install rsync" % req["name"],
            code="no_rsync",
        )
    if spec.get("push"):
        root = expand_user(req["root_dir"], owner.name)
        with owner.acting():
            owner.makedirs(path if (spec.get("path") or "/").endswith("/") else os.path.dirname(path) or root)
    report.data.update(
        root=expand_user(req["root_dir"], owner.name),
        path=path,
        # rsync on the box must write as Jupyter's user when padlab logs in as root.
        rsync_path=("runuser -u %s -- rsync" % owner.name) if owner.chown else None,
    )


def ensure_rsync(host: Host, report: Report) -> None:
    """The `up` step for remote boxes: push and pull need rsync on the box too."""
    installed = False
    if not shutil.which("rsync"):
        packages.install(host, ["rsync"], report, "padlab push and pull")
        installed = True
    report.step("rsync", installed, "for padlab push and pull")
