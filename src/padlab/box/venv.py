"""The box's Python environments, each installed from a lock shipped with padlab: Jupyter's
(the Jupyter user's, with uv, else pip) and the ACME client's (root's, box/setup/acme_setup.py).

A lock (jupyter-lock.txt, acme-lock.txt, made by scripts/lock-box) holds the exact version and
hashes of every package an environment needs, so every box runs what padlab's tests ran, whatever
is newest on the package index that day. `up` compares each environment with its lock each time
and brings it back to the lock when they differ; it touches nothing else (notebooks, kernels).
"""

from __future__ import annotations

import json
import os
import pkgutil
import shutil
import subprocess
import sys
import tempfile
from typing import NamedTuple

from .report import BoxError, Report
from .system import Host, sha256

LOCK = "jupyter-lock.txt"
# The locks' --python-version (scripts/lock-box): older Pythons have no JupyterLab 4.5.
MIN_PYTHON = (3, 10)
# Named in the step's detail and by `padlab doctor`.
HEADLINE = ("jupyterlab", "nbclassic", "jupyter-server", "ipykernel")
# Installed by earlier padlab versions: Notebook 7 (its presence moves nbclassic under /nbclassic/),
# and rfc3987-syntax, whose import builds Lark parsers at each Jupyter start (~0.8 s; scripts/lock-box).
REMOVED = ["notebook", "rfc3987-syntax"]


class Env(NamedTuple):
    """One kind of environment the box installs from a lock."""

    lock: str  # the lock's file name in padlab.box's package data
    what: str  # in messages: "installing Jupyter failed"
    step: str  # the report's step name
    headline: tuple  # packages whose versions the step's detail names
    removed: list  # uninstalled after the lock: packages earlier padlab versions installed
    uv: bool  # uv where it can be had (else pip); root's environment uses the venv's own pip
    only_binary: bool  # wheels only: root runs no package's build script


JUPYTER = Env(LOCK, "Jupyter", "python-env", HEADLINE, REMOVED, True, False)
ACME = Env("acme-lock.txt", "the ACME client", "acme-client", ("acme",), [], False, True)

# Run in the venv's interpreter with `locked` (pins()) set: which locked packages it lacks or has
# at another version (`out`), and what it has (`have`). packaging comes with the lock (jupyterlab
# needs it). The box runs it as the venv's owner; `padlab doctor` in Jupyter's own kernel.
CHECK_BODY = r"""
from importlib import metadata
from packaging.markers import Marker
from packaging.utils import canonicalize_name
from packaging.version import Version
have = {}
for dist in metadata.distributions():
    name = dist.metadata["Name"]
    if name:
        have.setdefault(canonicalize_name(name), dist.version)
out = []
for name, version, marker in locked:
    if marker and not Marker(marker).evaluate():
        continue
    got = have.get(canonicalize_name(name))
    if got is None or Version(got) != Version(version):
        out.append([name, got, version])
"""
CHECK_SNIPPET = "import json, sys\nlocked = json.load(sys.stdin)\n" + CHECK_BODY + "print(json.dumps(out))\n"


def lock_text(name: str = LOCK) -> str:
    """A lock shipped with this padlab (package data, inside the box program's zip too)."""
    data = pkgutil.get_data(__package__, name)
    if not data:
        raise BoxError("padlab's lock %s is missing from the box program" % name, "reinstall padlab")
    return data.decode()


def pins(text: str) -> list:
    """[name, version, marker or ""] of each requirement in a lock `uv pip compile` wrote."""
    out = []
    for line in text.splitlines():
        if not line[:1].isalnum():
            continue  # hashes, comments, continuation lines
        spec, _, marker = line.rstrip(" \\").partition(";")
        name, _, version = spec.strip().partition("==")
        out.append([name.strip(), version.strip(), marker.strip()])
    return out


def python_in(venv: str) -> str:
    return os.path.join(venv, "bin", "python")


def purelib(venv: str, owner: str | None = None) -> str:
    """Where modules of ours that run inside Jupyter go (box/__init__.py VENV_MODULES).

    The venv's python is its owner's (the Jupyter user's) to replace, so it runs as that
    user, and what it answers is used only when it is a folder inside the venv.
    """
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    argv = Host(sudo=True).as_user(owner) + [python_in(venv), "-c", code]
    proc = subprocess.run(argv, capture_output=True, text=True)
    path = proc.stdout.strip()
    inside = os.path.realpath(venv) + os.sep
    if proc.returncode != 0 or not os.path.isabs(path) or not os.path.realpath(path).startswith(inside):
        raise BoxError(
            "Jupyter's Python environment %s gave no site-packages folder inside it (%r)"
            % (venv, path[:200]),
            "remove %s on the box and run `padlab up` again to rebuild it" % venv,
        )
    return path


def ensure(
    host: Host,
    venv: str,
    report: Report,
    owner: str | None,
    root: bool,
    extra: list[str],
    cache: str | None = None,
) -> bool:
    """Create Jupyter's venv and bring it to padlab's lock; returns whether anything changed (Jupyter restarts).

    ``cache``: where uv keeps its cache (a container's volume, so a rebuild after its disk
    was wiped downloads nothing); None: uv's default, in the owner's home.
    """
    return bring_to_lock(JUPYTER, host, venv, report, owner, root, extra, cache)


def bring_to_lock(
    spec: Env,
    host: Host,
    venv: str,
    report: Report,
    owner: str | None,
    root: bool,
    extra: list[str],
    cache: str | None = None,
) -> bool:
    """Create the venv as `owner` and bring it to `spec`'s lock; returns whether anything changed."""
    if sys.version_info[:2] < MIN_PYTHON:
        raise BoxError(
            "the box's python3 is %d.%d; padlab's %s needs Python %d.%d or newer"
            % (sys.version_info[:2] + (spec.what,) + MIN_PYTHON),
            "use an image with a newer python3 (Ubuntu 22.04 or later, Debian 12 or later)",
        )
    lock = lock_text(spec.lock)
    locked = pins(lock)
    lock_file = os.path.join(venv, ".padlab-" + spec.lock)
    stamp = os.path.join(venv, ".padlab-packages")
    want = sha256(lock + json.dumps(extra))
    as_owner = host.as_user(owner)
    fresh = not os.access(python_in(venv), os.X_OK)
    before = None if fresh else differences(venv, locked, as_owner)
    current = host.read(stamp)
    if before == [] and current is not None and current.decode().strip() == want:
        report.step(spec.step, False, "padlab's lock: %s" % headline(locked, spec.headline))
        return False
    report.stage("installing %s from padlab's lock into %s" % (spec.what, venv))
    if fresh:
        _create(host, venv, owner, root, as_owner)
    host.write(lock_file, lock, mode=0o644, owner=owner, root=root)
    uv = (shutil.which("uv") or uv_in_venv(venv, as_owner)) if spec.uv else None
    if not uv:
        _ensure_pip(venv, as_owner)  # a venv made without pip (_create) installs with pip
    env = ["env", "UV_NATIVE_TLS=1"]  # the system's CA store, as pip uses: a TLS-intercepting proxy's CA
    if cache:
        host.makedirs(cache, mode=0o700, owner=owner, root=root)
        env.append("UV_CACHE_DIR=%s" % cache)
    for cmd in _installs(uv, env, venv, lock_file, extra, spec):
        proc = subprocess.run(as_owner + cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise BoxError(
                "installing %s failed: %s" % (spec.what, " | ".join(tail)),
                "check the box can reach the Python package index, then run `padlab up` again",
            )
    after = differences(venv, locked, as_owner)
    if after:
        raise BoxError(
            "%s's environment still differs from padlab's lock: %s" % (spec.what, _changes(after)),
            "run `padlab up` again; if it persists, remove %s and run `padlab up`" % venv,
        )
    host.write(stamp, want + "\n", mode=0o644, owner=owner, root=root)
    tool = "uv" if uv else "pip"
    if fresh or before is None:
        detail = "installed padlab's lock (%s) with %s" % (headline(locked, spec.headline), tool)
    elif before:
        detail = "brought to padlab's lock with %s: %s" % (tool, _changes(before))
    else:
        detail = "padlab's lock (%s), extra packages with %s" % (headline(locked, spec.headline), tool)
    report.step(spec.step, True, detail)
    return True


def headline(locked: list, names: tuple = HEADLINE) -> str:
    versions = {name: version for name, version, _ in locked}
    return ", ".join("%s %s" % (name, versions.get(name, "?")) for name in names)


def _changes(diff: list) -> str:
    shown = ["%s %s -> %s" % (name, got or "(none)", version) for name, got, version in diff[:6]]
    more = " and %d more" % (len(diff) - 6) if len(diff) > 6 else ""
    return ", ".join(shown) + more


def differences(venv: str, locked: list, as_owner: list) -> list | None:
    """[name, installed or None, locked] for each locked package that differs; None: cannot tell.

    Runs the venv's interpreter as its owner: root never runs what Jupyter's user can write.
    Isolated (-I): no PYTHONPATH or user site decides what it reports.
    """
    proc = subprocess.run(
        as_owner + [python_in(venv), "-I", "-c", CHECK_SNIPPET],
        input=json.dumps(locked),
        capture_output=True,
        text=True,
    )
    try:
        diff = json.loads(proc.stdout) if proc.returncode == 0 else None
    except ValueError:
        return None
    return diff if isinstance(diff, list) else None


def _installs(uv: str | None, env: list[str], venv: str, lock_file: str, extra: list[str], spec: Env) -> list:
    """The lock with its hashes checked, then any extra packages held to the lock, then removals.

    ``env``: the `env VAR=...` prefix uv runs under."""
    if uv:
        base = env + [uv, "pip", "install", "--quiet", "--python", python_in(venv)]
    else:
        base = [python_in(venv), "-I", "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if spec.only_binary:
        base += ["--only-binary", ":all:"]
    # --no-deps: the lock is complete (scripts/lock-box leaves out only what must not be there), and
    # nothing to resolve means no package metadata to fetch.
    cmds = [base + ["--require-hashes", "--no-deps", "-r", lock_file]]
    if extra:
        cmds.append(base + ["-c", lock_file] + list(extra))
    return cmds + ([_uninstall(uv, env, venv, spec.removed)] if spec.removed else [])


def _uninstall(uv: str | None, env: list[str], venv: str, removed: list) -> list[str]:
    """Remove what padlab no longer installs; a package that is not there is skipped."""
    if uv:
        return env + [uv, "pip", "uninstall", "--quiet", "--python", python_in(venv)] + removed
    return [python_in(venv), "-I", "-m", "pip", "uninstall", "--quiet", "--yes"] + removed


def uv_in_venv(venv: str, as_owner: list[str]) -> str | None:
    """uv into the venv, then Jupyter in ~1 s instead of ~13 s with pip (testbed, bookworm).

    The version and hashes come from padlab's lock (uv_pins), as every other package in the venv.
    First its binary straight from the index (fetch_uv: ~0.4 s); else pip installs it (~1.5 to
    2.5 s, most of it pip's own start): a venv made without pip (see _create) runs pip straight
    from its wheel, as ensurepip would have installed it; a platform with no uv wheel gets pip
    installed for Jupyter instead.
    """
    uv = os.path.join(venv, "bin", "uv")
    if not os.access(uv, os.X_OK) and not fetch_uv(venv, as_owner):
        wheel = None if os.path.exists(os.path.join(venv, "bin", "pip")) else pip_wheel()
        run_pip = [python_in(venv), os.path.join(wheel, "pip")] if wheel else [python_in(venv), "-m", "pip"]
        pip = run_pip + [
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary",
            ":all:",
        ]
        # A file root owns that the owner can read: /dev/stdin is root's pipe, which another
        # user cannot open again by its path (pip would fail there, and fall back to itself).
        with tempfile.TemporaryDirectory(prefix="padlab-uv-") as folder:
            os.chmod(folder, 0o755)
            pins = os.path.join(folder, "uv.txt")
            with open(pins, "w") as fh:
                fh.write(uv_pins(lock_text()))
            os.chmod(pins, 0o644)
            pinned = subprocess.run(as_owner + pip + ["--require-hashes", "-r", pins], capture_output=True)
        if pinned.returncode != 0:
            _ensure_pip(venv, as_owner)
            return None  # no uv wheel for this platform: pip installs Jupyter instead
    return uv


# Run as the venv's owner by the box's python3 (-I), the lock's uv pin and hashes on stdin: the uv
# binary of the wheel for this machine (glibc Linux), from the index's JSON API, its SHA-256 one
# of the lock's, to bin/uv. Exit 3: no such wheel here (pip decides then).
FETCH_UV = r"""
import hashlib, io, json, os, platform, re, sys, urllib.request, zipfile
want = json.load(sys.stdin)
libc, version = platform.libc_ver()
if libc != "glibc":
    sys.exit(3)
glibc = tuple(int(part) for part in version.split(".")[:2])
arch = platform.machine()
def fits(filename):
    match = re.fullmatch(r"uv-%s-py3-none-(.+)\.whl" % re.escape(want["version"]), filename)
    for tag in match.group(1).split(".") if match else []:
        m = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", tag)
        if m and m.group(3) == arch and (int(m.group(1)), int(m.group(2))) <= glibc:
            return True
    return False
index = urllib.request.Request(
    "https://pypi.org/simple/uv/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
)
with urllib.request.urlopen(index, timeout=30) as resp:
    files = json.load(resp)["files"]
found = [f for f in files if fits(f["filename"]) and f.get("hashes", {}).get("sha256") in want["hashes"]]
if not found:
    sys.exit(3)
with urllib.request.urlopen(found[0]["url"], timeout=120) as resp:
    data = resp.read()
if hashlib.sha256(data).hexdigest() not in want["hashes"]:
    sys.exit("the uv wheel's SHA-256 is not one of padlab's lock")
with zipfile.ZipFile(io.BytesIO(data)) as wheel:
    member = "uv-%s.data/scripts/uv" % want["version"]
    part = want["dest"] + ".part"
    with wheel.open(member) as src, open(part, "wb") as dst:
        while True:
            chunk = src.read(1 << 20)
            if not chunk:
                break
            dst.write(chunk)
os.chmod(part, 0o755)
os.replace(part, want["dest"])
"""


def fetch_uv(venv: str, as_owner: list[str]) -> bool:
    """uv's binary into the venv's bin, as its owner, from the wheel the lock pins (FETCH_UV); returns
    whether it is there. The lock's install then adds uv's package (the same binary) beside it."""
    pinned = uv_pins(lock_text())
    version = pinned.split("==", 1)[1].split()[0]
    hashes = [line.split("sha256:", 1)[1].strip(" \\") for line in pinned.splitlines() if "sha256:" in line]
    uv = os.path.join(venv, "bin", "uv")
    want = {"version": version, "hashes": hashes, "dest": uv}
    try:
        proc = subprocess.run(
            as_owner + [sys.executable, "-I", "-c", FETCH_UV],
            input=json.dumps(want),
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and os.access(uv, os.X_OK)


def uv_pins(lock: str) -> str:
    """uv's requirement in the lock, with its hashes (the lines from `uv==` to the next package)."""
    out: list = []
    for line in lock.splitlines():
        if line[:1].isalnum():
            if out:
                break
            if line.startswith("uv=="):
                out.append(line)
        elif out:
            out.append(line)
    if not out:
        raise BoxError("padlab's lock %s names no uv" % LOCK, "reinstall padlab")
    return "\n".join(out) + "\n"


def pip_wheel() -> str | None:
    """The pip wheel ensurepip installs from (Debian: /usr/share/python-wheels), or None."""
    import ensurepip
    import glob

    bundled = os.path.join(os.path.dirname(ensurepip.__file__), "_bundled")
    found = glob.glob(os.path.join(bundled, "pip-*.whl")) + glob.glob("/usr/share/python-wheels/pip-*.whl")
    return sorted(found)[-1] if found else None


def _ensure_pip(venv: str, as_owner: list[str]) -> None:
    if not os.path.exists(os.path.join(venv, "bin", "pip")):
        subprocess.run(
            as_owner + [python_in(venv), "-I", "-m", "ensurepip", "--default-pip"], capture_output=True
        )


def _create(host: Host, venv: str, owner: str | None, root: bool, as_owner: list[str]) -> None:
    probe = subprocess.run([sys.executable, "-c", "import venv, ensurepip"], capture_output=True)
    if probe.returncode != 0:
        minor = "%d.%d" % sys.version_info[:2]
        raise BoxError(
            "Python's venv module is missing on the box",
            "install it: sudo apt-get install python3-venv (or python%s-venv)" % minor,
        )
    parent = os.path.dirname(venv.rstrip("/"))
    host.makedirs(parent, owner=owner, root=root)
    host.makedirs(venv, owner=owner, root=root)
    # Without pip when its wheel is at hand (~0.1 s instead of ~2.5 s): it only installs uv (uv_in_venv).
    bare = ["--without-pip"] if pip_wheel() else []
    proc = subprocess.run(
        as_owner + [sys.executable, "-m", "venv"] + bare + [venv], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise BoxError(
            "could not create the Python environment: %s" % proc.stderr.strip().splitlines()[-1:],
            "install python3-venv on the box and run `padlab up` again",
        )
