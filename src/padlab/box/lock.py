"""One padlab action at a time per workstation on the box.

When an ssh connection dies mid-``up``, the box program goes on until its next
write to the vanished client fails. A new ``up`` must not install into the same
environment meanwhile, so every changing action holds this lock; the newcomer
waits for the orphan to finish or die.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from typing import Callable, Iterator

WAIT = 900.0


def directory(req: dict) -> str:
    """A box in the user's own files (the local one, under PADLAB_HOME) keeps its lock there;
    a system box in the login user's ~/.cache/padlab, the one place it may write without sudo.
    Not XDG_RUNTIME_DIR: logind removes it when the dead connection was the user's last session."""
    if req.get("prefix") and not req.get("system"):
        return os.path.join(req["prefix"], "run")
    return os.path.join(os.path.expanduser("~"), ".cache", "padlab")


def _path(base: str, name: str) -> str:
    os.makedirs(base, mode=0o700, exist_ok=True)
    return os.path.join(base, "%s.lock" % name)


@contextlib.contextmanager
def held(name: str, on_wait: Callable[[str], None], base: str) -> Iterator[None]:
    fd = os.open(_path(base, name), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait("waiting for another padlab run on this box to finish")
            deadline = time.monotonic() + WAIT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        yield
    finally:
        os.close(fd)
