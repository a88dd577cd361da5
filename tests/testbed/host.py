"""Host-side helpers shared by the testbed modules: commands, locks, owners, preconditions.

The testbed mutates the host (namespaces, nftables, mounts), so every resource is
recorded with the process that owns it; a later run can then tell leftovers of a
crashed run from resources of a run that is still alive.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

DEFAULT_CACHE = Path("/var/cache/padlab-testbed")
REQUIRED_TOOLS = (
    "debootstrap",
    "systemd-nspawn",
    "ip",
    "nft",
    "nsenter",
    "ssh",
    "ssh-keygen",
    "mount",
    "umount",
)


class TestbedError(RuntimeError):
    """A testbed operation failed; the message says what the host or guest reported."""

    __test__ = False  # not a pytest test class despite the name


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The cache lives outside the repo so images survive fresh clones and CI runs."""
    if override is not None:
        return Path(override)
    return Path(os.environ.get("PADLAB_TESTBED_CACHE") or DEFAULT_CACHE)


def host_problems() -> list[str]:
    """Why the testbed cannot run here; empty when it can."""
    problems = []
    if os.geteuid() != 0:
        problems.append("must run as root (network namespaces, mounts and systemd-nspawn need it)")
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        problems.append(
            "missing host tools: " + ", ".join(missing) + " (apt-get install the packages listed in "
            "tests/testbed/requirements-apt.txt)"
        )
    return problems


def run(
    cmd: Sequence[str],
    *,
    check: bool = True,
    input: str | None = None,
    timeout: float | None = 120,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a host command, capturing output so failures carry the tool's own message."""
    proc = subprocess.run(
        list(cmd), input=input, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if check and proc.returncode != 0:
        raise TestbedError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialise work between concurrent testbed users (a CLI machine and a pytest run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces; fields after the closing paren are fixed.
    return stat.rsplit(")", 1)[1].split()[19]


def current_owner() -> dict[str, Any]:
    """Identity of this process, robust against pid reuse."""
    return {"pid": os.getpid(), "start": _start_time(os.getpid())}


def owner_alive(owner: dict[str, Any]) -> bool:
    """Whether the process that recorded a resource still runs."""
    return _start_time(int(owner["pid"])) == owner.get("start")


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically so readers (the CLI's `list`) never see half a record."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A record, or None when it vanished or is unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
