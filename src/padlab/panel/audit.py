"""The audit log: one JSON line per action (what, when, from where, result); never a secret."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from padlab import paths

_lock = threading.Lock()


def path() -> Path:
    return paths.log_dir() / "panel-audit.log"


def record(what: str, client: str, ok: bool = True, **fields: Any) -> None:
    entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "what": what, "from": client, "ok": ok, **fields}
    line = json.dumps(entry, sort_keys=True) + "\n"
    target = path()
    with _lock:
        paths.ensure_private_dir(target.parent)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as fh:
            fh.write(line)


def tail(lines: int = 50) -> list[dict[str, Any]]:
    try:
        raw = path().read_text().splitlines()[-lines:]
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in raw if line.strip()]
