"""Jupyter's server config: HTTPS with HSTS, password only (argon2 via jupyter_server), no token,
a Secure _xsrf cookie, and a per-address backoff after failed logins (box/setup/login_guard.py)."""

from __future__ import annotations

import contextlib
import json
import os
import pkgutil
import secrets
import signal
import subprocess

from .. import venv
from ..report import BoxError
from ..service import Layout
from ..system import Host, expand_user

LOGIN_GUARD = "padlab_login_guard"
HTTP_FRONT = "padlab_http_front"
HSTS = "max-age=31536000"

HASH_SNIPPET = "import sys; from jupyter_server.auth import passwd; print(passwd(sys.stdin.read()))"


def hash_password(layout: Layout, password: str) -> str:
    """jupyter_server's own passwd(): argon2, so Jupyter can verify it unchanged."""
    # The venv is the Jupyter user's: its python runs as that user, never as root.
    proc = subprocess.run(
        Host(sudo=True).as_user(layout.user)
        + [os.path.join(layout.venv, "bin", "python"), "-c", HASH_SNIPPET],
        input=password,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not proc.stdout.startswith("argon2:"):
        raise BoxError("could not hash the password with jupyter_server", "run `padlab up` again")
    return proc.stdout.strip()


# What Jupyter imports as it starts (the server, its extensions, IPython through notebook_shim):
# imported, as the Jupyter user, by warm_up while TLS is settled, so that Jupyter's first start
# finds their bytecode written (~1 s of compiling, testbed) and answers sooner. What the password's
# hash imports meanwhile (jupyter_server.auth) comes last.
WARM_MODULES = (
    "IPython",
    "nbclassic.notebookapp",
    "notebook_shim.nbserver",
    "jupyter_lsp.serverextension",
    "jupyter_server_terminals.app",
    "jupyterlab.labapp",
    "jupyter_server.serverapp",
)
WARM_SNIPPET = (
    "import importlib, sys\n"
    "for name in sys.argv[1:]:\n"
    "    try:\n"
    "        importlib.import_module(name)\n"
    "    except Exception:\n"
    "        pass\n"
)


def warm_up(layout: Layout) -> subprocess.Popen | None:
    """Start importing Jupyter's modules in the venv, as the Jupyter user (whose venv it is, so
    the bytecode it writes is theirs to write anyway); the caller ends it (warmed) as Jupyter starts.
    Only a speed-up: a failure here is Jupyter's own start's to report."""
    try:
        return subprocess.Popen(
            # Niced: it takes only what the steps beside it (TLS, the password's hash) leave idle.
            Host(sudo=True).as_user(layout.user)
            + ["nice", "-n", "19", os.path.join(layout.venv, "bin", "python"), "-I", "-c", WARM_SNIPPET]
            + list(WARM_MODULES),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own group: warmed() ends sudo and the user's python together
        )
    except OSError:
        return None


def warmed(proc: subprocess.Popen | None) -> None:
    """End warm_up's process: what it compiled so far is kept, and Jupyter's start compiles the rest
    rather than the same modules twice at once."""
    if proc is None or proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(10)
            return
        except subprocess.TimeoutExpired:
            continue


def current_hash(host: Host, layout: Layout) -> str | None:
    raw = host.read(layout.config)
    if not raw:
        return None
    try:
        return json.loads(raw)["PasswordIdentityProvider"]["hashed_password"] or None
    except (ValueError, KeyError):
        return None


def ensure_cookie_secret(host: Host, layout: Layout) -> bool:
    """A stable secret keeps browser sessions valid across restarts."""
    if host.read(layout.cookie_secret):
        return False
    host.write(
        layout.cookie_secret, secrets.token_hex(32) + "\n", mode=0o600, owner=layout.user, root=layout.system
    )
    return True


def install_login_guard(host: Host, layout: Layout) -> bool:
    """Put the login form with the backoff, and the proxy's HTTP front, into Jupyter's venv;
    returns whether either changed (the front only listens where the config names a port)."""
    lib = venv.purelib(layout.venv, layout.user)
    changed = False
    for name, source in ((LOGIN_GUARD, "login_guard.py"), (HTTP_FRONT, "http_front.py")):
        text = pkgutil.get_data(__package__, source) or b""
        changed |= host.write(
            os.path.join(lib, name + ".py"), text, mode=0o644, owner=layout.user, root=layout.system
        )
    return changed


# JupyterLab's own defaults changed for an iPad (settings the user can still change): the news
# question is answered no (4.5 asks from its settings alone, whatever news_url says), no update
# check, and one tap opens a file or folder in the file browser (a double tap is a zoom on iPad).
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/filebrowser-extension:browser": {"singleClickNavigation": True},
}


def lab_settings_dir(layout: Layout) -> str:
    """JupyterLab's app_settings_dir (its overrides.json), in padlab's config rather than the venv."""
    return os.path.join(layout.jupyter_dir, "lab-settings")


def install_lab_overrides(host: Host, layout: Layout) -> bool:
    """Write padlab's overrides.json for JupyterLab; returns whether it changed."""
    directory = lab_settings_dir(layout)
    host.makedirs(directory, mode=0o700, owner=layout.user, root=layout.system)
    text = json.dumps(LAB_OVERRIDES, indent=2, sort_keys=True) + "\n"
    return host.write(
        os.path.join(directory, "overrides.json"), text, mode=0o600, owner=layout.user, root=layout.system
    )


def config(
    layout: Layout,
    port: int,
    listen: str,
    root_dir: str,
    hashed: str,
    default_kernel: str | None = None,
    pem: str | None = None,
    proxy_port: int | None = None,
) -> str:
    """pem: one file with key and chain (a public certificate, box/setup/acme_setup.py), else padlab's pair.
    proxy_port: Jupyter served again over plain HTTP there, for a cloud's HTTPS proxy (box/setup/http_front.py)."""
    home = expand_user("~", layout.user)
    cfg = {
        "ServerApp": {
            "ip": listen,
            "port": port,
            "port_retries": 0,
            "open_browser": False,
            "certfile": pem or layout.cert,
            "keyfile": pem or layout.key,
            "root_dir": expand_user(root_dir, layout.user),
            "cookie_secret_file": layout.cookie_secret,
            "allow_remote_access": True,
            "allow_root": layout.user == "root",
            "trust_xheaders": False,
            "tornado_settings": {
                "headers": {"Strict-Transport-Security": HSTS},
                "xsrf_cookie_kwargs": {"path": "/", "secure": True},
            },
        },
        "IdentityProvider": {"token": ""},
        "PasswordIdentityProvider": {
            "hashed_password": hashed,
            "password_required": True,
            "allow_password_change": False,
            "login_handler_class": LOGIN_GUARD + ".LoginHandler",
        },
        # nbclassic (the classic UI Juno Connect drives): no banner about moving to Notebook 7
        # across the top of every page; padlab keeps the classic UI on purpose (box/venv.py).
        "NotebookApp": {"show_banner": False},
        "LabApp": {
            # No first-visit toast asking about Jupyter news (it covers an iPad's bottom right corner),
            # and no "newer version available" one: padlab's lock decides the version
            # (box/venv.py), and JupyterLab 4.6 breaks touch (jupyterlab/jupyterlab#19124).
            "news_url": None,
            "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
            "app_settings_dir": lab_settings_dir(layout),
            "user_settings_dir": os.path.join(home, ".jupyter", "lab", "user-settings"),
            "workspaces_dir": os.path.join(home, ".jupyter", "lab", "workspaces"),
        },
    }
    if proxy_port:
        cfg["ServerApp"]["jpserver_extensions"] = {HTTP_FRONT: True}
        cfg["PadlabHttpFront"] = {"port": proxy_port}
    if default_kernel:
        # New notebooks open in the image's own GPU stack (padlab.box.kernels).
        cfg["MappingKernelManager"] = {"default_kernel_name": default_kernel}
    return json.dumps(cfg, indent=2, sort_keys=True) + "\n"
