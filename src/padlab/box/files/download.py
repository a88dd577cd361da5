"""One download job on the box (`padlab get`): runs on its own, resumes, and renames only a verified file.

The job runs apart from the client (a transient systemd unit or a detached
session, started by box/files/files.py), as the user Jupyter runs as. Its directory
holds what it needs to start again after a crash or a reboot:

    job.json    what to fetch: url, dest, sha256, unpack, and the launch nonce
    state.json  where it is: state, bytes, total, rate, validators, error; rewritten
                (atomically) every half second while bytes flow, every second while it waits
    lock        held (flock) by the one live runner
    log         one line per attempt, retry and outcome

Bytes go to DEST.part. After a dropped connection the job asks for the rest
with ``Range`` and ``If-Range`` (the ETag when strong, else Last-Modified), so a
file that changed on the server is fetched whole rather than spliced. Without
either validator it starts over instead, and a 206 whose total differs from the
size first given is refused (start over): a server that ignores If-Range cannot
splice two versions either. DEST appears only once the size and, when given,
the SHA-256 match.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import http.client
import os
import random
import re
import sys
import time
import urllib.error
import urllib.request

from .jobs import read_json, write_json

CHUNK = 1 << 20
# Start writing to disk every so often rather than leave gigabytes for the final fsync: that
# fsync would otherwise take seconds after the last byte arrived (curl does not fsync at all).
WRITEBACK = 32 << 20
TIMEOUT = 30.0  # seconds without a byte before a connection counts as dropped
MAX_FAILURES = 8  # in a row without progress; the backoff between them doubles up to BACKOFF_MAX
BACKOFF_MAX = 60.0
RETRY_CODES = (408, 425, 429, 500, 502, 503, 504)
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class Failed(Exception):
    """The job cannot finish: a one-line reason, a fix, a machine-readable code."""

    def __init__(self, message: str, fix: str, code: str) -> None:
        super().__init__(message)
        self.message, self.fix, self.code = message, fix, code


class Dropped(Exception):
    """The connection ended before the promised bytes: retry and resume."""


class StartOver(Exception):
    """The bytes on the server are not the ones in DEST.part: fetch the whole file again."""


class Job:
    """The runner: fetch with resume and retries, verify, rename, unpack."""

    def __init__(self, jobdir: str) -> None:
        self.dir = jobdir
        self.job = read_json(os.path.join(jobdir, "job.json"))
        self.dest = self.job["dest"]
        self.part = self.dest + ".part"
        old = read_json(os.path.join(jobdir, "state.json"))
        keep = ("total", "etag", "last_modified", "downloaded", "started", "requests")
        self.st = {k: old[k] for k in keep if k in old}
        self.st.update(state="running", pid=os.getpid(), nonce=self.job.get("nonce"), error=None)
        self.st.setdefault("started", time.time())
        self.st["bytes"] = _size(self.part) if not self.st.get("downloaded") else self.st.get("total", 0)
        self.st["resumed_from"] = self.st["bytes"] or None
        self._saved = 0.0
        self._rate_mark = (time.monotonic(), self.st["bytes"])
        self.save(force=True)

    # -- bookkeeping -------------------------------------------------------------------------

    def save(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._saved < 0.5:
            return
        t0, b0 = self._rate_mark
        if now - t0 >= 1.0:
            self.st["rate"] = round((self.st["bytes"] - b0) / (now - t0))
            self._rate_mark = (now, self.st["bytes"])
        self.st["updated"] = time.time()
        write_json(os.path.join(self.dir, "state.json"), self.st)
        self._saved = now

    def log(self, line: str) -> None:
        with open(os.path.join(self.dir, "log"), "a") as fh:
            fh.write("%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), line))

    def note(self, text: str) -> None:
        self.st["note"] = text
        self.log(text)
        self.save(force=True)

    # -- the job -----------------------------------------------------------------------------

    def run(self) -> None:
        if not self.st.get("downloaded"):
            self.fetch()
            self.verify_and_rename()
        if self.job.get("unpack"):
            from . import unpack

            self.note("unpacking")
            try:
                self.st["unpacked"] = unpack.extract(self.dest, os.path.dirname(self.dest))
            except unpack.Unsafe as exc:
                raise Failed(
                    "refused to unpack %s: %s" % (os.path.basename(self.dest), exc),
                    "nothing was unpacked; the archive is kept at %s, look inside with `tar tvf` or `unzip -l`"
                    % self.dest,
                    "unsafe_archive",
                ) from exc
            except unpack.Clash as exc:
                raise Failed(
                    "unpacking %s would overwrite %s in %s"
                    % (os.path.basename(self.dest), exc, os.path.dirname(self.dest)),
                    "move those away and run the command again (padlab never overwrites your files)",
                    "exists",
                ) from exc
        self.st["note"] = None

    def fetch(self) -> None:
        failures = 0
        while True:
            before = self.st["bytes"]
            try:
                self.attempt()
                return
            except Failed:
                raise
            except StartOver as exc:
                _unlink(self.part)
                self.st["bytes"] = 0
                reason = str(exc)
                self.note("%s: starting over" % reason)
                failures += 1  # no progress; a server that keeps changing ends in Failed below
                if failures >= MAX_FAILURES:
                    raise Failed(
                        "the download failed %d times in a row: %s" % (failures, reason),
                        "the file keeps changing on the server: run the command again later",
                        "network",
                    ) from exc
                continue
            except urllib.error.HTTPError as exc:
                if exc.code == 416 and self.st["bytes"]:
                    if self.st["bytes"] == self.st.get("total"):
                        return  # every byte was already here (stopped before the rename)
                    _unlink(self.part)  # the file shrank on the server: start again
                    self.note("the server has no bytes past %d: starting over" % self.st["bytes"])
                    self.st["bytes"] = 0
                    continue
                if exc.code not in RETRY_CODES:
                    raise Failed(
                        "the server answered HTTP %d %s for %s" % (exc.code, exc.reason, self.job["url"]),
                        "check the URL (and any token in it) and run the command again",
                        "http",
                    ) from exc
                reason = "HTTP %d" % exc.code
            except (Dropped, OSError, http.client.HTTPException) as exc:
                reason = _reason(exc)
            failures = 0 if self.st["bytes"] > before else failures + 1
            if failures >= MAX_FAILURES:
                raise Failed(
                    "the download failed %d times in a row: %s" % (failures, reason),
                    "check the box's network and the URL, then run the same command again: it resumes",
                    "network",
                )
            wait = min(BACKOFF_MAX, 2.0 ** max(failures - 1, 0)) * random.uniform(0.8, 1.2)
            self.note("retrying in %.0f s (%s) from byte %d" % (wait, reason, self.st["bytes"]))
            self.sleep(wait)

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(min(1.0, end - time.monotonic()))
            self.save()

    def attempt(self) -> None:
        offset = _size(self.part)
        headers = {"User-Agent": "padlab-get/1", "Accept-Encoding": "identity"}
        validator = self.st.get("etag") or self.st.get("last_modified")
        if offset and not validator:
            # Nothing would tell the server's file from the one the bytes came from: no splice.
            self.note("the server gives no strong ETag or Last-Modified to resume against: starting over")
            offset = 0
        if offset:
            headers["Range"] = "bytes=%d-" % offset
            headers["If-Range"] = validator
        self.st["requests"] = int(self.st.get("requests") or 0) + 1
        self.log("GET %s%s" % (self.job["url"], " from byte %d" % offset if offset else ""))
        with urllib.request.urlopen(
            urllib.request.Request(self.job["url"], headers=headers), timeout=TIMEOUT
        ) as resp:
            if resp.status == 206:
                match = CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
                if not match or int(match.group(1)) != offset:
                    raise Failed(
                        "the server sent a range the download did not ask for",
                        "run the command again; if it repeats, the server's range support is broken",
                        "http",
                    )
                if match.group(3) != "*":
                    total = int(match.group(3))
                    if self.st.get("total") is not None and total != self.st["total"]:
                        raise StartOver(
                            "the file's size changed on the server (%d bytes, was %d)" % (total, self.st["total"])
                        )
                    self.st["total"] = total
                mode = "ab"
            else:
                if offset:
                    self.note(
                        "the server sent the whole file (no ranges, or the file changed): starting over"
                    )
                offset = 0
                length = resp.headers.get("Content-Length")
                self.st["total"] = int(length) if length and length.isdigit() else None
                etag = resp.headers.get("ETag")
                self.st["etag"] = etag if etag and not etag.startswith("W/") else None
                self.st["last_modified"] = resp.headers.get("Last-Modified")
                self.st["ranges"] = resp.headers.get("Accept-Ranges", "").lower() == "bytes"
                mode = "wb"
            self.st["bytes"] = offset
            self.check_space(self.st.get("total"), offset)
            self.st["note"] = None
            self.save(force=True)
            self.copy(resp, mode)
        total = self.st.get("total")
        if total is not None and self.st["bytes"] != total:
            raise Dropped("connection closed at byte %d of %d" % (self.st["bytes"], total))

    def check_space(self, total: int | None, offset: int) -> None:
        if total is None:
            return
        need = total - offset
        vfs = os.statvfs(os.path.dirname(self.dest))
        free = vfs.f_bavail * vfs.f_frsize
        if need > free:
            _unlink(self.part)
            raise Failed(
                "not enough space on the box for %s: %s needed, %s free in %s"
                % (os.path.basename(self.dest), _human(need), _human(free), os.path.dirname(self.dest)),
                "free some space on the box, or download elsewhere with --to",
                "no_space",
            )

    def copy(self, resp, mode: str) -> None:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        with open(self.part, mode) as out:
            mark = out.tell()
            while True:
                try:
                    n = resp.readinto(buf)
                except http.client.IncompleteRead as exc:
                    raise Dropped("connection closed early") from exc
                if not n:
                    break
                try:
                    out.write(view[:n])
                except OSError as exc:
                    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                        out.close()
                        _unlink(self.part)
                        raise Failed(
                            "the box's disk filled up while downloading %s; the partial file was removed"
                            % os.path.basename(self.dest),
                            "free some space on the box, or download elsewhere with --to",
                            "no_space",
                        ) from exc
                    raise
                self.st["bytes"] += n
                self.save()
                if out.tell() - mark >= WRITEBACK:
                    mark = _writeback(out, mark)
            out.flush()
            os.fsync(out.fileno())

    def verify_and_rename(self) -> None:
        want = self.job.get("sha256")
        if want:
            self.note("checking the SHA-256")
            got = _sha256(self.part)
            if got != want:
                _unlink(self.part)
                raise Failed(
                    "SHA-256 mismatch for %s: expected %s, got %s; nothing was saved"
                    % (os.path.basename(self.dest), want, got),
                    "check the --sha256 value and the URL",
                    "checksum",
                )
        if _place(self.part, self.dest):
            raise Failed(
                "%s appeared on the box while downloading; padlab never overwrites a file" % self.dest,
                "move that file away and run the command again (the download is kept as %s)" % self.part,
                "exists",
            )
        self.st["downloaded"] = True
        self.save(force=True)


def _writeback(out, mark: int) -> int:
    """Ask the kernel to write [mark, now) to disk in the background (POSIX_FADV_DONTNEED starts
    asynchronous writeback on Linux and drops the pages once clean); returns the new mark."""
    out.flush()
    end = out.tell()
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(out.fileno(), mark, end - mark, os.POSIX_FADV_DONTNEED)
    return end


def _place(part: str, dest: str) -> bool:
    """Move the verified file into place without ever replacing one; True when dest already exists."""
    try:
        os.link(part, dest)
    except FileExistsError:
        return True
    except OSError:  # no hard links on this filesystem
        if os.path.lexists(dest):
            return True
        os.rename(part, dest)
    else:
        os.unlink(part)
    fd = os.open(os.path.dirname(dest), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return False


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return "%.0f %s" % (n, unit) if unit == "B" else "%.1f %s" % (n, unit)
        n /= 1000.0
    return "%.1f TB" % n


def main(jobdir: str) -> int:
    """Entry point of the runner process: one live runner per job (its lock), the outcome in state.json."""
    fd = os.open(os.path.join(jobdir, "lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    deadline = time.monotonic() + 10
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            if time.monotonic() > deadline:
                return 0  # another runner has this job
            time.sleep(0.1)
    job = Job(jobdir)
    try:
        job.run()
    except Failed as exc:
        job.st.update(state="failed", error=exc.message, fix=exc.fix, code=exc.code, note=None)
        job.log("failed: %s" % exc.message)
    except BaseException as exc:  # a bug must still leave a readable outcome
        job.st.update(
            state="failed",
            error="the download stopped: %s: %s" % (type(exc).__name__, exc),
            fix="run the same command again: it resumes",
            code="error",
        )
        job.log("crashed: %r" % exc)
    else:
        job.st.update(state="done", bytes=_size(job.dest), note=None)
        job.log("done: %d bytes" % job.st["bytes"])
    job.st["finished"] = time.time()
    job.save(force=True)
    os.close(fd)
    sys.stdout.flush()
    return 0 if job.st["state"] == "done" else 1
