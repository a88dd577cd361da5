"""The audit log: one JSON line per action (what, when, from where, result); never a secret.

Anonymous refusals cost an attacker nothing, so they must not cost the disk without bound:
the same refusal from the same address is written at most once a minute (the next line
says how many were left out), and the log rotates at MAX_BYTES, keeping one older file.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from padlab import paths

MAX_BYTES = 1 << 20  # then panel-audit.log becomes panel-audit.log.1 (the one before is dropped)
EVERY_S = 60.0  # one line per (refusal, address) in this long
THROTTLED = frozenset({"api-refused", "csrf-refused", "rate-limited", "sign-in"})
MAX_KEYS = 1024  # (refusal, address) pairs remembered; the oldest is forgotten first

_lock = threading.Lock()
# (log file, refusal, address) -> [monotonic time of its last line, how many left out since]
_quiet: dict[tuple[str, str, str], list[float]] = {}


def path() -> Path:
    return paths.log_dir() / "panel-audit.log"


def _older(target: Path) -> Path:
    return target.with_name(target.name + ".1")


def _left_out(target: Path, what: str, client: str) -> int | None:
    """None: do not write this refusal now; else how many like it were left out before it."""
    now = time.monotonic()
    key = (str(target), what, client)
    seen = _quiet.get(key)
    if seen is not None and now - seen[0] < EVERY_S:
        seen[1] += 1
        return None
    _quiet.pop(key, None)
    _quiet[key] = [now, 0]
    while len(_quiet) > MAX_KEYS:
        _quiet.pop(next(iter(_quiet)))
    return int(seen[1]) if seen is not None else 0


def record(what: str, client: str, ok: bool = True, **fields: Any) -> None:
    entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "what": what, "from": client, "ok": ok, **fields}
    target = path()
    with _lock:
        if not ok and what in THROTTLED:
            left_out = _left_out(target, what, client)
            if left_out is None:
                return
            if left_out:
                entry["left_out"] = left_out  # refusals like this one since the last line about them
        line = json.dumps(entry, sort_keys=True) + "\n"
        paths.ensure_private_dir(target.parent)
        try:
            if target.stat().st_size + len(line) > MAX_BYTES:
                os.replace(target, _older(target))
        except FileNotFoundError:
            pass
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as fh:
            fh.write(line)


def tail(lines: int = 50) -> list[dict[str, Any]]:
    raw: list[str] = []
    for source in (path(), _older(path())):
        if len(raw) >= lines:
            break
        try:
            raw = source.read_text().splitlines() + raw
        except FileNotFoundError:
            continue
    return [json.loads(line) for line in raw[-lines:] if line.strip()]
