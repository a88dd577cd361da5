"""Profiles: one TOML file per workstation, validated on load and on save."""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from padlab import autostop, paths, registry
from padlab.errors import PadlabError
from padlab.fileio import write_atomic

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
KERNEL_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")  # padlab.box.kernels checks the same on the box
KERNEL_KEYS = {"packages", "requirements", "python", "torch_backend"}
CLONE_RE = re.compile(r"^(https?://|ssh://|git://|file://|[\w.-]+@[\w.-]+:)\S+$")
PYTHON_RE = re.compile(r"^3\.\d{1,2}(\.\d{1,2})?$")
DEFAULT_PORT = 8888


@dataclass
class Profile:
    name: str
    provider: str
    port: int = DEFAULT_PORT
    root_dir: str = "~/notebooks"
    listen: str = "0.0.0.0"
    # How to reach a remote box (ssh and cloud providers).
    host: str | None = None
    user: str | None = None
    ssh_port: int = 22
    identity: str | None = None
    # Provider-specific settings (machine ids, regions, API URLs...).
    options: dict[str, Any] = field(default_factory=dict)
    # Autostop (docs/autostop.md): idle limit ("45m", "off"; unset: the provider's default),
    # hard cap on uptime, and what a stop does ("service" or "poweroff"; unset: the provider's way).
    autostop: str | None = None
    max_uptime: str | None = None
    autostop_action: str | None = None
    # Course repository cloned into root_dir at `up` when missing (`init --clone URL`).
    clone: str | None = None
    # Kernels built on demand (`padlab kernels NAME create`), rebuilt by `up` on a new machine:
    # {name: {"packages": [...], "requirements": TEXT, "python": "3.11", "torch_backend": "cu126"}}.
    kernels: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> Profile:
        if not NAME_RE.match(self.name):
            raise PadlabError(
                f"invalid profile name {self.name!r}",
                "use lowercase letters, digits and dashes (at most 31), e.g. 'gpu' or 'lab-1'",
            )
        if self.provider not in registry.NAMES:
            raise PadlabError(
                f"unknown provider {self.provider!r}", f"choose one of: {', '.join(registry.NAMES)}"
            )
        if not 1024 <= int(self.port) <= 65535:
            raise PadlabError(f"port {self.port} is out of range", "choose a port between 1024 and 65535")
        if not 1 <= int(self.ssh_port) <= 65535:
            raise PadlabError(
                f"ssh port {self.ssh_port} is out of range", "choose a port between 1 and 65535"
            )
        if registry.get(self.provider).needs_host and not self.host:
            raise PadlabError(
                f"the {self.provider} provider needs a host",
                f"padlab init {self.name} --provider {self.provider} --host USER@HOST",
            )
        for kname, want in self.kernels.items():
            check_kernel(kname, want)
        if self.clone is not None and not CLONE_RE.match(self.clone):
            raise PadlabError(
                f"--clone {self.clone!r} is not a git URL",
                "pass one like https://github.com/fastai/course22 (or git@..., ssh://..., file://...)",
            )
        autostop.validate(self)
        return self

    def to_toml(self) -> dict[str, Any]:
        data = {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, {}) and k != "name"}
        return data


def check_kernel(name: str, want: dict[str, Any]) -> None:
    """A declared kernel: a name Jupyter accepts and only the settings padlab knows."""
    if not KERNEL_RE.match(name):
        raise PadlabError(
            f"invalid kernel name {name!r}",
            "use lowercase letters, digits, - and _ (at most 40), e.g. fastai",
        )
    unknown = set(want) - KERNEL_KEYS
    if unknown:
        raise PadlabError(
            f"unknown kernel setting(s) {', '.join(sorted(unknown))} for {name!r}", "remove them"
        )
    if not isinstance(want.get("packages", []), list):
        raise PadlabError(f"kernel {name!r}: packages must be a list", 'e.g. packages = ["fastai"]')
    if want.get("python") is not None and not PYTHON_RE.match(str(want["python"])):
        raise PadlabError(
            f"kernel {name!r}: --python {want['python']!r} is not a version", "e.g. --python 3.11"
        )


def _profile_path(name: str) -> Path:
    return paths.config_dir() / f"{name}.toml"


def _default_path() -> Path:
    return paths.config_dir() / "default"


def names() -> list[str]:
    directory = paths.config_dir()
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.toml"))


def exists(name: str) -> bool:
    return _profile_path(name).is_file()


def load(name: str | None) -> Profile:
    """The named profile, or the default one; unknown names list the ones that exist."""
    name = name or default_name()
    path = _profile_path(name)
    if not path.is_file():
        known = names()
        hint = (
            f"known profiles: {', '.join(known)}"
            if known
            else "create one with: padlab init NAME --provider local"
        )
        raise PadlabError(f"no profile named {name!r}", hint)
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PadlabError(
            f"cannot read profile {path}: {exc}", "fix the file or run padlab init again"
        ) from exc
    known_fields = {f.name for f in dataclasses.fields(Profile)} - {"name"}
    unknown = set(data) - known_fields
    if unknown:
        raise PadlabError(
            f"unknown setting(s) {', '.join(sorted(unknown))} in {path}", "remove them from the file"
        )
    try:
        return Profile(name=name, **data).validate()
    except TypeError as exc:
        raise PadlabError(
            f"profile {path} is malformed: {exc}", "fix the file or run padlab init again"
        ) from exc


def save(profile: Profile) -> Path:
    import tomli_w

    profile.validate()
    path = _profile_path(profile.name)
    paths.ensure_private_dir(path.parent)
    write_atomic(path, tomli_w.dumps(profile.to_toml()), mode=0o600)
    if not _default_path().exists():
        set_default(profile.name)
    return path


def default_name() -> str:
    try:
        name = _default_path().read_text().strip()
    except FileNotFoundError:
        name = ""
    if name and exists(name):
        return name
    known = names()
    if len(known) == 1:
        return known[0]
    if not known:
        raise PadlabError("no profile yet", "create one with: padlab init NAME --provider local")
    raise PadlabError("several profiles and no default", f"name one of: {', '.join(known)}")


def set_default(name: str) -> None:
    write_atomic(_default_path(), name + "\n", mode=0o600)


def remove(name: str) -> None:
    _profile_path(name).unlink(missing_ok=True)
    if _default_path().exists() and _default_path().read_text().strip() == name:
        _default_path().unlink()
