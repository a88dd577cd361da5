"""Run the real padlab CLI as a subprocess, the way users and scripts do."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

PASSWORD = "violet-harbor-lantern-quartz"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def padlab_env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, PADLAB_HOME=str(home), **extra)
    # The box program finds uv next to the interpreter running the tests (fast installs).
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.pop("PADLAB_DEBUG", None)
    return env


def padlab(
    home: Path, *args: str, input: str | None = None, check: bool = True, **env: str
) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "padlab", *args],
            input=input,
            capture_output=True,
            text=True,
            env=padlab_env(home, **env),
            timeout=600,
        )
    except subprocess.TimeoutExpired as exc:  # what it was doing when it ran out: its stages
        tail = (exc.stderr or b"")[-4000:]
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
        raise AssertionError(f"padlab {' '.join(args)} ran past 600 s; its stderr ended:\n{tail}") from None
    if check and proc.returncode != 0:
        raise AssertionError(
            f"padlab {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def padlab_json(home: Path, *args: str, input: str | None = None) -> dict[str, Any]:
    return json.loads(padlab(home, *args, "--json", input=input).stdout)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The contract for bad input: non-zero exit, one line on stderr, no traceback."""
    assert proc.returncode != 0, proc
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("[")]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("padlab: error: "), lines[0]
    return lines[0]
