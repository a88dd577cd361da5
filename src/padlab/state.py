"""Per-profile state on the client: what padlab last did and saw, written atomically under a lock."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from padlab import paths
from padlab.errors import PadlabError
from padlab.fileio import write_atomic

LOCK_TIMEOUT = 600.0
# The phase after `up --skip-setup`: the machine runs; Jupyter may or may not (it starts on boot once set up).
MACHINE_UP = "machine-up"


def _dir(create: bool = True) -> Path:
    path = paths.data_dir() / "state"
    return paths.ensure_private_dir(path) if create else path


def _path(name: str, create: bool = True) -> Path:
    return _dir(create) / f"{name}.json"


class Corrupt(PadlabError):
    """The state file could not be read; it was moved aside, so the next command starts afresh."""


def load(name: str) -> dict[str, Any]:
    """The recorded state ({} before the first command); an unreadable file raises Corrupt once.

    Never a silent reset: the damaged file is kept as NAME.json.corrupt and the user is told.
    """
    path = _path(name, create=False)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict):
        return data
    kept = path.with_name(path.name + ".corrupt")
    os.replace(path, kept)
    raise Corrupt(
        f"padlab's record of {name!r} was unreadable; it is kept as {kept} and a fresh one starts",
        f"run the command again; `padlab status {name}` reads the box as it is now",
    )


def recover(name: str) -> str | None:
    """For `down`, which must work from what is left: set an unreadable file aside, return why."""
    try:
        load(name)
    except Corrupt as exc:
        return str(exc)
    return None


def save(name: str, data: dict[str, Any]) -> None:
    data = dict(data, updated_at=time.time())
    write_atomic(_path(name), json.dumps(data, indent=2, sort_keys=True), mode=0o600)


def update(name: str, **changes: Any) -> dict[str, Any]:
    """Record before acting: callers update state first, then change the world."""
    data = load(name)
    data.update(changes)
    save(name, data)
    return data


def remove(name: str) -> None:
    _path(name).unlink(missing_ok=True)


class _Lock:
    """An exclusive flock on the profile's lock file, as filelock's UnixFileLock takes it (same file,
    same kind of lock, so the two exclude each other), without filelock's ~12 ms import on every command."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self, timeout: float) -> bool:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)
                continue
            self.fd = fd
            return True

    def release(self) -> None:
        import fcntl

        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _lock(name: str) -> _Lock:
    return _Lock(_dir() / f"{name}.lock")


def is_locked(name: str) -> bool:
    """Whether another padlab command holds this profile right now."""
    lock = _lock(name)
    if not lock.acquire(timeout=0):
        return True
    lock.release()
    return False


@contextmanager
def action(name: str, phase: str, what: str) -> Iterator[dict[str, Any]]:
    """Lock the profile and record what starts, then how it failed: a re-run sees it and finishes.

    Yields the state as it was before, for callers whose result depends on it.
    """
    with locked(name):
        before = load(name)
        update(name, phase=phase, last_error=None, action=what, action_at=time.time())
        try:
            yield before
        except PadlabError as exc:
            update(name, phase="error", last_error=str(exc))
            raise
        except KeyboardInterrupt:
            update(name, phase="interrupted", last_error=f"interrupted; run `padlab {what}` again")
            raise


@contextmanager
def locked(name: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """One padlab command at a time per profile, across processes."""
    lock = _lock(name)
    if not lock.acquire(timeout=timeout):
        raise PadlabError(
            f"another padlab command is working on {name!r}", "wait for it to finish, then run this again"
        )
    try:
        yield
    finally:
        lock.release()
