"""The box's dedicated Python environment for Jupyter (uv when present, else pip)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from .report import BoxError, Report
from .system import Host, sha256

# cryptography lets the box make its own TLS key and CSR; the key never leaves.
# nbclassic, not Notebook 7: Juno Connect drives only the classic UI at the server's root
# (/tree, /notebooks/NAME.ipynb), which nbclassic serves only when Notebook 7 is absent.
PACKAGES = ["jupyterlab>=4.2,<5", "nbclassic>=1.1", "ipykernel>=6.29", "cryptography>=42"]
# Installed by earlier padlab versions; its presence moves nbclassic under /nbclassic/.
REMOVED = ["notebook"]


def python_in(venv: str) -> str:
    return os.path.join(venv, "bin", "python")


def purelib(venv: str) -> str:
    """Where modules of ours that run inside Jupyter go (box/__init__.py VENV_MODULES)."""
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    proc = subprocess.run([python_in(venv), "-c", code], capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def ensure(host: Host, venv: str, report: Report, owner: str | None, root: bool, extra: list[str]) -> None:
    """Create the venv and install Jupyter once; a stamp makes re-runs a no-op."""
    packages = PACKAGES + list(extra)
    stamp = os.path.join(venv, ".padlab-packages")
    want = sha256(json.dumps(packages))
    current = host.read(stamp)
    if current is not None and current.decode().strip() == want and os.access(python_in(venv), os.X_OK):
        report.step("python-env", False, venv)
        return
    report.stage("installing Jupyter into %s" % venv)
    as_owner = host.as_user(owner)
    if not os.access(python_in(venv), os.X_OK):
        _create(host, venv, owner, root, as_owner)
    uv = shutil.which("uv") or uv_in_venv(venv, as_owner)
    if uv:
        # The system's CA store, as pip uses: a TLS-intercepting proxy's CA lives there.
        native_tls = ["env", "UV_NATIVE_TLS=1"]
        cmd = native_tls + [uv, "pip", "install", "--quiet", "--python", python_in(venv)] + packages
    else:
        cmd = [python_in(venv), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"] + packages
    proc = subprocess.run(as_owner + cmd, capture_output=True, text=True)
    if proc.returncode == 0:
        proc = subprocess.run(as_owner + _uninstall(uv, venv), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise BoxError(
            "installing Jupyter failed: %s" % " | ".join(tail),
            "check the box can reach the Python package index, then run `padlab up` again",
        )
    host.write(stamp, want + "\n", mode=0o644, owner=owner, root=root)
    report.step("python-env", True, "installed %s with %s" % (", ".join(PACKAGES), "uv" if uv else "pip"))


def _uninstall(uv: str | None, venv: str) -> list[str]:
    """Remove what padlab no longer installs; a package that is not there is skipped."""
    if uv:
        return [
            "env",
            "UV_NATIVE_TLS=1",
            uv,
            "pip",
            "uninstall",
            "--quiet",
            "--python",
            python_in(venv),
        ] + REMOVED
    return [python_in(venv), "-m", "pip", "uninstall", "--quiet", "--yes"] + REMOVED


def uv_in_venv(venv: str, as_owner: list[str]) -> str | None:
    """uv from pip into the venv: ~3 s, then Jupyter in ~1 s instead of ~13 s with pip (testbed, bookworm).

    A venv made without pip (see _create) runs pip straight from its wheel, as ensurepip would
    have installed it; a platform with no uv wheel gets pip installed for Jupyter instead.
    """
    uv = os.path.join(venv, "bin", "uv")
    if not os.access(uv, os.X_OK):
        wheel = None if os.path.exists(os.path.join(venv, "bin", "pip")) else pip_wheel()
        run_pip = [python_in(venv), os.path.join(wheel, "pip")] if wheel else [python_in(venv), "-m", "pip"]
        pip = run_pip + ["install", "--quiet", "--disable-pip-version-check", "uv"]
        if subprocess.run(as_owner + pip, capture_output=True).returncode != 0:
            _ensure_pip(venv, as_owner)
            return None  # no uv wheel for this platform: pip installs Jupyter instead
    return uv


def pip_wheel() -> str | None:
    """The pip wheel ensurepip installs from (Debian: /usr/share/python-wheels), or None."""
    import ensurepip
    import glob

    bundled = os.path.join(os.path.dirname(ensurepip.__file__), "_bundled")
    found = glob.glob(os.path.join(bundled, "pip-*.whl")) + glob.glob("/usr/share/python-wheels/pip-*.whl")
    return sorted(found)[-1] if found else None


def _ensure_pip(venv: str, as_owner: list[str]) -> None:
    if not os.path.exists(os.path.join(venv, "bin", "pip")):
        subprocess.run(as_owner + [python_in(venv), "-m", "ensurepip", "--default-pip"], capture_output=True)


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
