"""Profiles: one TOML file per workstation, validated on load and on save."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from padlab import acme, autostop, paths, registry
from padlab.errors import PadlabError
from padlab.fileio import write_atomic

NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")
KERNEL_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")  # padlab.box.kernels checks the same on the box
KERNEL_KEYS = {"packages", "requirements", "python", "torch_backend"}
CLONE_RE = re.compile(r"(https?://|ssh://|git://|file://|[\w.-]+@[\w.-]+:)\S+")
PYTHON_RE = re.compile(r"3\.\d{1,2}(\.\d{1,2})?")
DEFAULT_PORT = 8888
# A profile file's setting of the wrong type is the file's fault: one line that names it.
_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "dict": (dict,),
    "list": (list,),
}


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
    # Jupyter's certificate (padlab.acme): auto (a public one where the box has a public IP),
    # letsencrypt, or padlab-ca; another ACME server, and a PEM of its extra roots.
    tls: str | None = None
    acme_directory: str | None = None
    acme_ca: str | None = None

    def validate(self) -> Profile:
        check_name(self.name)
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
        check_root_dir(self.root_dir)
        if registry.get(self.provider).needs_host and not self.host:
            raise PadlabError(
                f"the {self.provider} provider needs a host",
                f"padlab init {self.name} --provider {self.provider} --host USER@HOST",
            )
        for kname, want in self.kernels.items():
            check_kernel(kname, want)
        if self.clone is not None and not CLONE_RE.fullmatch(self.clone):
            raise PadlabError(
                f"--clone {self.clone!r} is not a git URL",
                "pass one like https://github.com/fastai/course22 (or git@..., ssh://..., file://...)",
            )
        acme.check(self.tls, self.acme_directory, self.acme_ca)
        autostop.validate(self)
        return self

    def to_toml(self) -> dict[str, Any]:
        data = {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, {}) and k != "name"}
        return data


def check_name(name: str) -> str:
    """Profile names become file, unit and host names: a short, whole-string match, nothing else."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        shown = repr(name) if len(str(name)) <= 40 else f"{str(name)[:37]!r}... ({len(name)} characters)"
        raise PadlabError(
            f"invalid profile name {shown}",
            "use lowercase letters, digits and dashes (at most 31), e.g. 'gpu' or 'lab-1'",
        )
    return name


def _accepted(annotation: str) -> tuple[type, ...]:
    """The Python types a field's annotation ('int', 'str | None', 'dict[str, Any]') allows."""
    kinds = [part.strip().split("[")[0] for part in annotation.split("|")]
    allowed = tuple(t for kind in kinds if kind != "None" for t in _TYPES.get(kind, (object,)))
    return allowed + ((type(None),) if "None" in kinds else ())


def mistyped(data: dict[str, Any]) -> dict[str, str]:
    """{setting: what it should be} for values of the wrong type, e.g. port = "abc" (TOML has no None)."""
    out = {}
    for f in dataclasses.fields(Profile):
        if f.name not in data:
            continue
        value, allowed = data[f.name], _accepted(str(f.type))
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            out[f.name] = " or ".join(sorted({t.__name__ for t in allowed} - {"NoneType"}))
    return out


def check_root_dir(root_dir: str) -> None:
    """The notebook folder is a path on the box: absolute or under ~, never relative to where padlab runs."""
    rooted = root_dir == "~" or root_dir.startswith(("~/", "/"))
    if rooted and not any(ord(c) < 32 for c in root_dir):
        return
    raise PadlabError(
        f"notebook folder {root_dir!r} is not an absolute path or under ~",
        "give e.g. --root-dir ~/notebooks or --root-dir /srv/notebooks",
    )


def check_kernel(name: str, want: dict[str, Any]) -> None:
    """A declared kernel: a name Jupyter accepts and only the settings padlab knows."""
    if not KERNEL_RE.fullmatch(name):
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
    if want.get("python") is not None and not PYTHON_RE.fullmatch(str(want["python"])):
        raise PadlabError(
            f"kernel {name!r}: --python {want['python']!r} is not a version", "e.g. --python 3.11"
        )


def _profile_path(name: str) -> Path:
    return paths.config_dir() / f"{check_name(name)}.toml"


def _default_path() -> Path:
    return paths.config_dir() / "default"


def names() -> list[str]:
    directory = paths.config_dir()
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.toml") if NAME_RE.fullmatch(p.stem))


def exists(name: str) -> bool:
    return _profile_path(name).is_file()


def load(name: str | None) -> Profile:
    """The named profile, or the default one; unknown names list the ones that exist.

    A file that cannot be read or has a setting of the wrong type is a one-line error;
    a copy is kept as NAME.toml.corrupt, so `init --force` cannot lose it.
    """
    name = name or default_name()
    path = _profile_path(name)
    text = _read(name, path)
    try:
        data = _tomllib().loads(text)
    except ValueError as exc:
        raise _corrupt(name, path, f"is not valid TOML ({exc})") from exc
    known_fields = {f.name for f in dataclasses.fields(Profile)} - {"name"}
    unknown = set(data) - known_fields
    if unknown:
        raise PadlabError(
            f"unknown setting(s) {', '.join(sorted(unknown))} in {path}", "remove them from the file"
        )
    bad = mistyped(data)
    if bad:
        key = sorted(bad)[0]
        raise _corrupt(name, path, f"has {key} = {data[key]!r}, which is not {_a(bad[key])}")
    if "provider" not in data:
        raise _corrupt(name, path, "has no provider setting")
    return Profile(name=name, **data).validate()


def salvage(name: str | None) -> tuple[Profile, str | None]:
    """What `down` needs from a damaged profile: every setting still readable, and a warning.

    Stopping a running Jupyter must not depend on a typo in its profile: the settings
    that parse and have the right type are kept, the others fall back to their defaults.
    """
    try:
        return load(name), None
    except PadlabError as exc:
        name = name or default_name()
        path = _profile_path(name)
        data: dict[str, Any] = {}
        for line in _read(name, path).splitlines():
            if line.lstrip().startswith("["):
                break  # a table ([options]) and all that follows: only top-level settings are needed
            try:
                data.update(_tomllib().loads(line))
            except ValueError:
                continue
        fields = {f.name for f in dataclasses.fields(Profile)} - {"name"}
        data = {k: v for k, v in data.items() if k in fields and k not in mistyped(data)}
        if "provider" not in data:
            raise
        try:
            return Profile(name=name, **data).validate(), str(exc)
        except PadlabError:
            raise exc from None


def _tomllib() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    return tomllib


def _read(name: str, path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        known = names()
        hint = (
            f"known profiles: {', '.join(known)}"
            if known
            else "create one with: padlab init NAME --provider local"
        )
        raise PadlabError(f"no profile named {name!r}", hint) from None
    except (OSError, ValueError) as exc:
        raise PadlabError(f"cannot read profile {path}: {exc}", "fix its permissions or contents") from exc


def _a(kind: str) -> str:
    return f"a{'n' if kind[0] in 'aeiou' else ''} {kind}"


def _corrupt(name: str, path: Path, what: str) -> PadlabError:
    """Keep a copy of the damaged file next to it, and say how to recover."""
    import shutil

    kept = path.with_name(path.name + ".corrupt")
    with contextlib.suppress(OSError):
        shutil.copyfile(path, kept)
        os.chmod(kept, 0o600)
    return PadlabError(
        f"profile {path} {what}; a copy is kept as {kept.name}",
        f"fix the file, or recreate it with padlab init {name} --provider ... --force "
        "(`padlab down` still works from the readable settings)",
    )


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
    if name and NAME_RE.fullmatch(name) and exists(name):
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
