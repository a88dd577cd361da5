"""Cloud credentials: the provider's usual places first, then what `padlab login` stored.

A key is wrapped in ``Secret`` the moment it is read, so a repr, a log line or
a traceback shows where it came from and never the key itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from padlab import paths
from padlab.errors import PadlabError
from padlab.fileio import write_atomic


@dataclass(frozen=True)
class Secret:
    value: str
    source: str  # where it was found, safe to show

    def __repr__(self) -> str:
        return f"Secret(from {self.source})"

    __str__ = __repr__


def stored_path(provider: str) -> Path:
    return paths.data_dir() / "credentials" / provider


def store(provider: str, value: str) -> Path:
    """Write the key with mode 0600 in a 0700 directory, atomically."""
    path = stored_path(provider)
    paths.ensure_private_dir(path.parent)
    write_atomic(path, value.strip() + "\n", mode=0o600)
    return path


def read_stored(provider: str) -> Secret | None:
    path = stored_path(provider)
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    return Secret(value, str(path)) if value else None


def lookup(
    provider: str,
    label: str,
    env: tuple[str, ...],
    others: tuple[tuple[str, Callable[[], Secret | None]], ...] = (),
) -> Secret:
    """Environment first (explicit for this shell), then `padlab login`, then the provider's own config."""
    for name in env:
        if os.environ.get(name, "").strip():
            return Secret(os.environ[name].strip(), f"${name}")
    found = read_stored(provider)
    if found:
        return found
    for _, finder in others:
        found = finder()
        if found:
            return found
    places = [f"${name}" for name in env] + [str(stored_path(provider))] + [place for place, _ in others]
    raise PadlabError(
        f"no {label} found (looked in {', '.join(places)})",
        f"run `padlab login {provider}` or export {env[0]}",
    )


def rejected(secret: Secret, label: str, provider: str) -> PadlabError:
    """The provider said no: name the source so the user knows which key to replace."""
    return PadlabError(
        f"the {label} from {secret.source} was rejected",
        f"replace it there, or run `padlab login {provider}` with a valid one",
    )


def doctl_config_paths() -> list[Path]:
    """Where doctl keeps its config on Linux and macOS."""
    home = Path.home()
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [xdg / "doctl" / "config.yaml", home / "Library" / "Application Support" / "doctl" / "config.yaml"]


def from_doctl() -> Secret | None:
    """The token of doctl's current context (top-level ``access-token`` or ``auth-contexts``)."""
    for path in doctl_config_paths():
        try:
            text = path.read_text()
        except OSError:
            continue
        context = _yaml_value(text, "context") or "default"
        if context == "default":
            token = _yaml_value(text, "access-token")
        else:
            block = re.search(r"^auth-contexts:\s*\n((?:[ \t]+.*\n?)*)", text, re.M)
            token = _yaml_value(_dedent(block.group(1)), context) if block else None
        if token:
            return Secret(token, str(path))
    return None


def _yaml_value(text: str, key: str) -> str | None:
    match = re.search(rf"^{re.escape(key)}:[ \t]*['\"]?([^'\"\s#]+)", text, re.M)
    return match.group(1) if match else None


def _dedent(block: str) -> str:
    return "\n".join(line.strip() for line in block.splitlines())
