"""Datasets and files: `get` (a download that runs on the box), `push` and `pull` (rsync over padlab's ssh).

The download itself is the box's job (padlab/box/files/files.py, box/files/download.py);
this side checks the arguments, asks the box, and hands progress events to the
CLI. push and pull copy with rsync over padlab's multiplexed ssh connection,
keeping partial files so that a re-run resumes; on this machine they copy.
Remote paths are relative to the notebook folder and may not leave it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlsplit

from padlab.errors import PadlabError

SHA256 = re.compile(r"^[0-9a-f]{64}$")
PARTIAL_DIR = ".rsync-partial"


def file_name(url: str) -> str:
    """The name a download gets: the last part of the URL's path."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PadlabError(
            f"{url!r} is not an http(s) URL", "give the full URL, e.g. https://example.com/data.tgz"
        )
    name = unquote(parts.path.rsplit("/", 1)[-1])
    if not name or name in (".", "..") or "/" in name or "\0" in name or name.endswith(".part"):
        raise PadlabError(
            f"the URL {url!r} does not end with a file name",
            "give the URL of the file itself (its path ends with the file's name)",
        )
    return name


def relative_path(path: str, what: str) -> str:
    """A path inside the notebook folder as typed: relative, and never going up."""
    if not path or os.path.isabs(path) or path.startswith("~") or ".." in path.replace("\\", "/").split("/"):
        raise PadlabError(
            f"{what} {path!r} must stay inside the notebook folder",
            f"give {what} relative to the notebook folder, without '..' (e.g. datasets/mnist)",
        )
    return path


def check_get(url: str, to: str, sha256: str | None, unpack: bool) -> dict[str, Any]:
    """The request fields of a download, or a one-line error before anything is sent."""
    from padlab.box.files import unpack as box_unpack

    name = file_name(url)
    relative_path(to, "--to")
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if not SHA256.match(sha256):
            raise PadlabError(
                "--sha256 must be 64 hexadecimal digits", "copy the SHA-256 from the dataset's page"
            )
    if unpack and not box_unpack.supported(name):
        raise PadlabError(
            f"--unpack knows {', '.join(box_unpack.SUFFIXES)}, and {name!r} is none of them",
            "leave out --unpack, and unpack it on the box yourself",
        )
    return {"url": url, "name": name, "to": to, "sha256": sha256, "unpack": unpack}


def _running(profile: Any) -> tuple[Any, Any]:
    from padlab import providers

    provider = providers.get(profile)
    machine = provider.describe()
    if machine.state != "running":
        raise PadlabError(
            f"the machine behind {profile.name!r} is {machine.state}", f"padlab up {profile.name}"
        )
    return provider, machine


def _call(profile: Any, action: str, fields: dict, on_event: Callable[[dict], None] | None = None) -> dict:
    from padlab import workstation

    provider, machine = _running(profile)
    req = workstation.request_for(profile, provider, action, machine)
    req[action] = fields
    return provider.transport(machine).call(req, on_event)


def get(profile: Any, spec: dict[str, Any], on_event: Callable[[dict], None]) -> dict[str, Any]:
    """Start or re-attach to the download on the box and follow it to its end."""
    return _call(profile, "get", spec, on_event)


def downloads(profile: Any) -> dict[str, Any]:
    """Running, finished and failed downloads on the box, newest first."""
    return _call(profile, "get", {"list": True})


# -- push and pull -------------------------------------------------------------------------------


def transfer(profile: Any, push: bool, local: str, remote: str, bwlimit: int | None, tty: bool) -> dict:
    """Copy LOCAL to REMOTE (push) or REMOTE to LOCAL (pull); REMOTE is inside the notebook folder."""
    from padlab import workstation

    relative_path(remote, "the box path")
    if push and not Path(local).exists():
        raise PadlabError(f"{local} does not exist on this machine", "give a file or folder that exists here")
    provider, machine = _running(profile)
    target = provider.target(machine)
    req = workstation.request_for(profile, provider, "paths", machine)
    req["paths"] = {"path": remote, "push": push, "rsync": target is not None}
    info = provider.transport(machine).call(req)
    where = info["path"] + ("/" if remote.endswith("/") or remote == "." else "")
    if target is None:  # the box is this machine
        return _copy(local, where) if push else _copy(where, local)
    if not shutil.which("rsync"):
        raise PadlabError(
            "rsync is not installed on this machine", "install it: apt install rsync, or brew install rsync"
        )
    from padlab import ssh

    ssh.ensure_master(target)
    host = f"[{target.host}]" if ":" in target.host else target.host
    argv = ["rsync", "-a", f"--partial-dir={PARTIAL_DIR}", "-e", _ssh_command(target)]
    if info.get("rsync_path"):
        argv += ["--rsync-path", info["rsync_path"]]
    if bwlimit:
        argv.append(f"--bwlimit={bwlimit}")
    argv += ["--info=progress2"] if tty else ["--stats"]
    argv += [local, f"{host}:{where}"] if push else [f"{host}:{where}", local]
    proc = subprocess.run(argv, stdout=None if tty else subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode in (20, -2):
        raise KeyboardInterrupt
    if proc.returncode != 0:
        last = [line for line in proc.stderr.splitlines() if line.strip()][-1:] or [f"exit {proc.returncode}"]
        raise PadlabError(
            f"rsync failed (exit {proc.returncode}): {last[0]}",
            "run the same command again: partial transfers resume",
        )
    out = {"from": local if push else where, "to": where if push else local, "rsync": "ok"}
    out.update(_stats(proc.stdout or ""))
    return out


def _ssh_command(target: Any) -> str:
    """padlab's ssh, as one string for `rsync -e` (which splits on spaces and honours double quotes)."""
    from padlab import ssh

    words = ["ssh", *ssh.options(target, batch=True)]
    return " ".join(f'"{w}"' if " " in w and '"' not in w else w for w in words)


def _stats(text: str) -> dict[str, int]:
    """The numbers from `rsync --stats` that show what a resumed transfer saved."""
    out = {}
    for key, label in (
        ("total_bytes", "Total file size"),
        ("literal_bytes", "Literal data"),
        ("matched_bytes", "Matched data"),
    ):
        match = re.search(rf"^{label}: ([\d,.]+)", text, re.M)
        if match:
            out[key] = int(re.sub(r"[,.]", "", match.group(1)))
    return out


def _copy(src: str, dst: str) -> dict[str, Any]:
    """The local provider's push/pull: a plain copy with rsync's rules for a trailing slash."""
    source = Path(src)
    if not source.exists():
        raise PadlabError(
            f"{src} does not exist", "check the path (box paths are relative to the notebook folder)"
        )
    target = Path(dst)
    if dst.endswith("/") or target.is_dir():
        target = target / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    else:
        tmp = target.with_name(f".{target.name}.padlab-part")
        shutil.copy2(source, tmp)
        os.replace(tmp, target)
    return {"from": str(source), "to": str(target), "copy": "ok"}
