"""Where padlab keeps its files on the client: PADLAB_HOME, else the platform's user dirs."""

from __future__ import annotations

import os
from pathlib import Path


def _home() -> Path | None:
    value = os.environ.get("PADLAB_HOME")
    return Path(value).expanduser().resolve() if value else None


def config_dir() -> Path:
    """Profiles: what the user chose."""
    home = _home()
    if home:
        return home / "profiles"
    import platformdirs

    return platformdirs.user_config_path("padlab") / "profiles"


def data_dir() -> Path:
    """CA, state, boxes made on this machine, provider keys."""
    home = _home()
    if home:
        return home
    import platformdirs

    return platformdirs.user_data_path("padlab")


def log_dir() -> Path:
    home = _home()
    if home:
        return home / "logs"
    import platformdirs

    return platformdirs.user_log_path("padlab")


def _roots() -> list[Path]:
    """padlab's own top directories: PADLAB_HOME, else its folders in the platform's user dirs."""
    home = _home()
    return [home] if home else [data_dir(), config_dir().parent, log_dir()]


def ensure_private_dir(path: Path) -> Path:
    """Directories that hold secrets are 0700 from the start, and so is each of padlab's own
    directories above them (PADLAB_HOME, boxes/...), never a directory padlab does not own."""
    root = next((r for r in _roots() if r == path or r in path.parents), None)
    chain = [p for p in (*reversed(path.parents), path) if root and (p == root or root in p.parents)]
    for directory in chain or [path]:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
    return path
