"""Which home this CLI uses: the panel's URL, its token and how to trust it, in one 0600 file.

No file: this machine is the home. `padlab remote login` writes it, `padlab remote logout`
removes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from padlab import paths
from padlab.errors import PadlabError
from padlab.fileio import write_atomic


def path() -> Path:
    return paths.data_dir() / "remote.json"


def load() -> dict[str, Any] | None:
    """{"url", "token", "label", "scope", "ca_pem" (None: a public CA)} or None (this machine)."""
    try:
        data = json.loads(path().read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise PadlabError(
            f"{path()} (which panel this CLI uses) is unreadable",
            "log in again: padlab remote login URL (or padlab remote logout)",
        ) from exc
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("url", "token")):
        raise PadlabError(
            f"{path()} (which panel this CLI uses) is incomplete",
            "log in again: padlab remote login URL (or padlab remote logout)",
        )
    return data


def save(data: dict[str, Any]) -> Path:
    """The token is a secret: 0600 in padlab's 0700 folder, written atomically."""
    paths.ensure_private_dir(path().parent)
    write_atomic(path(), json.dumps(data, indent=2, sort_keys=True), mode=0o600)
    return path()


def remove() -> bool:
    try:
        path().unlink()
    except FileNotFoundError:
        return False
    return True
