"""`padlab panel install --system` and `--on PROFILE`: the panel as a system service on a small
always-on host (a $5 VM made in a provider's web console, a Pi), for an iPad with no computer.

Layout on the host:

- ``/opt/padlab-panel/venv``: root's venv padlab runs from, installed from ``host-lock.txt``
  (exact versions and hashes, shipped with padlab) and padlab's own wheel (``--no-deps``). The
  service user can read and run it, never change it. ``--on`` ships that wheel, built from the
  running padlab (``wheel()``), over ssh; the host fetches only the locked dependencies.
- ``/var/lib/padlab-panel``: the service's PADLAB_HOME (profiles, state, keys, the panel's
  password hash), 0700, owned by the unprivileged system user ``padlab-panel``. Not
  ``/var/lib/padlab``: that is root's (box/system.ROOT_DIR: the firewall's and the ACME
  client's root-run files), and a user who owns it could change what root runs.
- ``padlab-panel.service``: ``User=padlab-panel``, ``ProtectSystem=strict`` with only the home
  writable, no capabilities (one, to bind a port below 1024), ``Restart=on-failure``, enabled.

Root writes nothing inside the service user's home and runs nothing from it: the password is
set by running padlab as that user (``runuser``). The certificate is the box's public one
(box/setup/acme_setup.py and acme_client.py, run here as root under the name ``_panel``, which no
profile can have): http-01 on port 80, opened for the challenge only through the firewall
code, renewed by its timer; the panel reloads it into its live SSLContext (server.py), so a
renewal needs no restart. Without a public address padlab's CA stays, with a one-line reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from padlab.errors import PadlabError

PANEL_USER = "padlab-panel"
HOME = "/var/lib/padlab-panel"
PREFIX = "/opt/padlab-panel"
VENV = PREFIX + "/venv"
INCOMING = PREFIX + "/incoming"
UNIT = "padlab-panel.service"
UNIT_PATH = "/etc/systemd/system/" + UNIT
ACME_NAME = "_panel"  # box/setup/acme_setup.Paths: /var/lib/padlab/acme-_panel; profiles are [a-z0-9-]
LOCK = "host-lock.txt"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Wheels only, but http-ece publishes only an sdist (pure Python, its hash pinned in the lock).
SDIST_ONLY = "http-ece"
READY_S = 60


# -- padlab itself, as a wheel, and the script that installs it ---------------------------


def wheel() -> tuple[str, bytes]:
    """(file name, bytes) of a pure-Python wheel of the running padlab: the same bytes for the
    same code, so a re-run sees nothing new. Its dependencies come from host-lock.txt."""
    import padlab

    version = _version()
    root = Path(padlab.__file__).parent
    dist = f"padlab-{version}.dist-info"
    files: list[tuple[str, bytes]] = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo"):
            files.append((f"padlab/{path.relative_to(root).as_posix()}", path.read_bytes()))
    files.append((f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: padlab\nVersion: {version}\n".encode()))
    files.append(
        (
            f"{dist}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: padlab\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
    )
    files.append((f"{dist}/entry_points.txt", b"[console_scripts]\npadlab = padlab.cli:main\n"))
    record = [f"{name},sha256={_b64sha(data)},{len(data)}" for name, data in files]
    files.append((f"{dist}/RECORD", ("\n".join([*record, f"{dist}/RECORD,,"]) + "\n").encode()))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return f"padlab-{version}-py3-none-any.whl", buf.getvalue()


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("padlab")
    except metadata.PackageNotFoundError:
        return "0"


def _b64sha(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def lock_text() -> str:
    from importlib import resources

    return (resources.files("padlab.panel") / LOCK).read_text()


def setup_script(wheel_name: str) -> str:
    """Run as root in INCOMING: the venv, brought to the lock and this wheel; nothing when both
    are what it already has (the stamp). python3-venv from apt when the image lacks it."""
    pip = "venv/bin/python -I -m pip install -q --disable-pip-version-check"
    return f"""set -eu
umask 022
cd {PREFIX}
want=$(cat incoming/{wheel_name} incoming/{LOCK} | sha256sum | cut -d' ' -f1)
if [ -x venv/bin/padlab ] && [ "$(cat venv/.padlab-stamp 2>/dev/null)" = "$want" ]; then
  echo "padlab-panel: padlab is installed in {VENV} (unchanged)" >&2; exit 0
fi
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  echo "padlab-panel: installing python3-venv" >&2
  command -v apt-get >/dev/null || {{ echo "padlab-panel: python3's venv module is missing; install python3-venv" >&2; exit 3; }}
  DEBIAN_FRONTEND=noninteractive apt-get -qq update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get -qq install -y python3-venv >/dev/null
fi
[ -x venv/bin/python ] || python3 -m venv venv
[ -f {SYSTEM_CA_BUNDLE} ] && export PIP_CERT={SYSTEM_CA_BUNDLE}
echo "padlab-panel: installing padlab's locked dependencies into {VENV}" >&2
{pip} --only-binary :all: --no-binary {SDIST_ONLY} --require-hashes -r incoming/{LOCK}
{pip} --no-deps --force-reinstall incoming/{wheel_name}
echo "$want" > venv/.padlab-stamp
"""


def bundle(extra: dict[str, bytes] | None = None) -> bytes:
    """A tar of the wheel, the lock and setup.sh (plus `extra` files) for INCOMING."""
    name, data = wheel()
    files = {name: data, LOCK: lock_text().encode(), "setup.sh": setup_script(name).encode(), **(extra or {})}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for fname, body in files.items():
            info = tarfile.TarInfo(fname)
            info.size, info.mode, info.mtime = len(body), 0o644, 0
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


UNPACK = (
    f"umask 022; rm -rf {INCOMING}; mkdir -p {INCOMING}; chmod 755 {PREFIX}; "
    f"tar -x --no-same-owner -C {INCOMING} -f - && sh {INCOMING}/setup.sh"
)


def _ensure_venv() -> None:
    """This machine: the same venv as --on makes, from the running padlab (skipped inside it)."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    proc = subprocess.run(["sh", "-c", UNPACK], input=bundle(), capture_output=True, timeout=900)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise PadlabError(
            f"installing padlab into {VENV} failed: {' | '.join(tail)}",
            "check that this machine reaches the Python package index (pypi.org), then run it again",
        )


# -- the system service -------------------------------------------------------------------


def _run(argv: list[str], check: bool = True, input: str | None = None, timeout: float = 120):
    proc = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        why = (proc.stderr.strip() or proc.stdout.strip() or "no message").splitlines()[-1]
        raise PadlabError(f"{' '.join(argv[:3])} failed: {why}", "run it again; if it persists, see its log")
    return proc


def ensure_user() -> None:
    """The unprivileged system user and its 0700 home (the service's PADLAB_HOME)."""
    if _run(["getent", "passwd", PANEL_USER], check=False).returncode != 0:
        nologin = shutil.which("nologin") or "/usr/sbin/nologin"
        _run(["useradd", "--system", "--user-group", "--home-dir", HOME, "--no-create-home",
              "--shell", nologin, PANEL_USER])  # fmt: skip
    try:
        info = os.lstat(HOME)
    except FileNotFoundError:
        os.mkdir(HOME, 0o700)
        info = os.lstat(HOME)
    import stat

    if not stat.S_ISDIR(info.st_mode):
        raise PadlabError(f"{HOME} is not a directory", "move it away, then run the install again")
    import pwd

    pw = pwd.getpwnam(PANEL_USER)
    os.chown(HOME, pw.pw_uid, pw.pw_gid, follow_symlinks=False)
    os.chmod(HOME, 0o700)


def as_panel_user(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """padlab run as the service user, on its home: root never writes there itself."""
    argv = ["runuser", "-u", PANEL_USER, "--", "env", f"PADLAB_HOME={HOME}", f"{VENV}/bin/python", "-I",
            "-m", "padlab", *args]  # fmt: skip
    return _run(argv, input=input)


def has_password() -> bool:
    return os.path.lexists(os.path.join(HOME, "panel", "password.json"))


def unit_text(
    listen: str,
    port: int,
    names: list[str],
    public_cert: str | None,
    allow_api_urls: list[str] | None = None,
    allow_padlab_ca: bool = False,
) -> str:
    """The unit, root's: the API URLs a session may send a stored key to are set here, out of the
    panel's reach (the service user cannot write the unit)."""
    argv = [f"{VENV}/bin/python", "-I", "-m", "padlab", "panel", "--listen", listen, "--port", str(port)]
    for name in names:
        argv += ["--name", name]
    for url in allow_api_urls or ():
        argv += ["--allow-api-url", url]
    if public_cert:
        argv += ["--public-cert", public_cert]
    if allow_padlab_ca:  # a box without a public certificate may make padlab's CA here (docs/panel.md)
        argv.append("--allow-padlab-ca")
    caps = "CAP_NET_BIND_SERVICE" if port < 1024 else ""
    return f"""[Unit]
Description=padlab web control panel (system service)
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={PANEL_USER}
Group={PANEL_USER}
Environment=PADLAB_HOME={HOME}
WorkingDirectory={HOME}
ExecStart={shlex.join(argv)}
Restart=on-failure
RestartSec=2
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
ReadWritePaths={HOME}
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
LockPersonality=yes
CapabilityBoundingSet={caps}
AmbientCapabilities={caps}

[Install]
WantedBy=multi-user.target
"""


def _firewall(port: int, enable: bool, report: Any) -> str:
    """ssh and the panel's port through the box's firewall code; the ACME client adds port 80 to
    these saved rules for a challenge only. Returns the step's detail."""
    from padlab import transport
    from padlab.box.net import firewall
    from padlab.box.system import Host

    host = Host(sudo=False)
    try:
        with open(firewall.SPEC) as fh:
            before = json.load(fh)
    except (OSError, ValueError):
        before = {}
    others = [r for r in before.get("rules", []) if r.get("name") not in ("ssh", "panel")]
    rules = [firewall._rule("ssh", "tcp", str(p), None) for p in firewall.ssh_ports(host)]
    rules.append(firewall._rule("panel", "tcp", str(port), None))
    saved = {"rules": rules + others, "enable": bool(enable or before.get("enable"))}
    host.makedirs("/var/lib/padlab", mode=0o755, root=True)
    host.makedirs(firewall.DIR, mode=0o755, root=True)
    host.write(firewall.SPEC, json.dumps(saved, indent=2, sort_keys=True) + "\n", mode=0o644, root=True)
    backend, _ = firewall.apply(host, saved, report)
    if backend.startswith("nftables"):
        host.write(firewall.PROGRAM, transport.program(), mode=0o644, root=True)
        host.write(firewall.RUNNER, firewall.runner_script(sys.executable), mode=0o755, root=True)
        if host.write(f"/etc/systemd/system/{firewall.UNIT}", firewall.unit_text(sys.executable), root=True):
            host.run(["systemctl", "daemon-reload"], root=True)
        host.run(["systemctl", "enable", firewall.UNIT], root=True)
    return "no active firewall: nothing to open" if backend == "none" else f"{backend}: ssh and {port}/tcp"


def choose_address(given: str | None) -> str:
    """The address the iPad uses: given (--public-address, or --on's host), else this machine's
    one public address, else its primary one."""
    import ipaddress

    from padlab.box.system import addresses, primary_address

    if given:
        return given
    public = [a for a in addresses() if ipaddress.ip_address(a).is_global]
    return public[0] if public else (primary_address() or socket.gethostname())


def _tls(mode: str, directory: str | None, ca: str | None, address: str, report: Any) -> dict[str, Any]:
    """{"public_cert": path or None, "line": the one-line TLS summary}."""
    from padlab import acme, transport
    from padlab.box.service import Layout
    from padlab.box.setup import acme_setup

    profile = SimpleNamespace(tls=mode, acme_directory=directory, acme_ca=ca)
    fields, why = acme.box_fields(profile, address, False)
    layout = Layout(ACME_NAME, PREFIX, PREFIX, PANEL_USER, True)
    from padlab.box.system import Host

    out = acme_setup.ensure(Host(sudo=False), layout, {"acme": fields},
                            transport.program(), report)  # fmt: skip
    if out.get("kind") == "public":
        return {"public_cert": out["pem"], "line": acme.summary(out), "served": True}
    reason = why or out.get("reason") or "no public certificate"
    # Asked but not had (the ACME server down, port 80 blocked): the unit still names the file, so
    # the panel takes the certificate the timer gets later (server.watch_certificate).
    later = acme_setup.Paths(ACME_NAME).live if fields else None
    return {"public_cert": later, "line": f"padlab's CA: {reason}", "served": False}


def _wait_ready(port: int, timeout: float = READY_S) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as sock, ctx.wrap_socket(sock):
                return True
        except OSError:
            time.sleep(0.3)
    return False


class _Stages:
    """box Report whose stages are plain lines on stderr (not the box's JSON events)."""

    def __init__(self) -> None:
        from padlab.box.report import Report

        self.report = Report()
        self.report.stage = lambda name: print(f"  {name}", file=sys.stderr, flush=True)  # type: ignore[method-assign]


def install_system(
    listen: str,
    port: int,
    names: list[str],
    tls: str,
    acme_directory: str | None,
    acme_ca: str | None,
    public_address: str | None,
    firewall_on: bool,
    new_password: bool,
    allow_api_urls: list[str] | None = None,
    allow_padlab_ca: bool = False,
) -> dict[str, Any]:
    """Everything, as root, idempotent: venv, user, password (only the first time or when asked),
    firewall, certificate, unit; then waits until the panel answers."""
    from padlab import passwords

    if os.geteuid() != 0:
        raise PadlabError("`padlab panel install --system` must run as root", "run it with sudo")
    if not shutil.which("systemctl") or not os.path.isdir("/run/systemd/system"):
        raise PadlabError(
            "systemd is not running on this machine", "use `padlab panel` from your init system"
        )
    t0 = time.monotonic()
    report = _Stages().report
    _ensure_venv()
    ensure_user()
    password = None
    if new_password or not has_password():
        password = passwords.generate()
        as_panel_user("panel", "passwd", "--password-stdin", input=password + "\n")
    address = choose_address(public_address)
    fw = _firewall(port, firewall_on, report)
    tls_out = _tls(tls, acme_directory, acme_ca, address, report)
    text = unit_text(listen, port, names, tls_out["public_cert"], allow_api_urls, allow_padlab_ca)
    try:
        old = Path(UNIT_PATH).read_text()
    except OSError:
        old = None
    changed = old != text
    if changed:
        Path(UNIT_PATH).write_text(text)
        _run(["systemctl", "daemon-reload"])
    _run(["systemctl", "enable", UNIT])
    active = _run(["systemctl", "is-active", UNIT], check=False).stdout.strip() == "active"
    venv_new = _stamp_newer_than_service()
    if changed or not active or venv_new:
        _run(["systemctl", "restart", UNIT])
    if not _wait_ready(port):
        log = _run(["journalctl", "-u", UNIT, "-n", "5", "--no-pager", "-o", "cat"], check=False).stdout
        raise PadlabError(
            f"the panel did not answer on port {port} within {READY_S} s: {' | '.join(log.splitlines()[-3:])}",
            f"see `journalctl -u {UNIT}`",
        )
    host = f"[{address}]" if ":" in address else address
    urls = [f"https://{host}:{port}/", *(f"https://{n}:{port}/" for n in names)]
    ca = None if tls_out["served"] else _ca_fingerprint()
    return {
        "url": urls[0],
        "urls": urls,
        "password": password,
        "tls_line": tls_out["line"],
        "public_cert": tls_out["served"],
        "ca_sha256": ca,
        "firewall": fw,
        "unit": UNIT_PATH,
        "restarted": bool(changed or not active or venv_new),
        "seconds": round(time.monotonic() - t0, 1),
    }


def _stamp_newer_than_service() -> bool:
    """Whether padlab in the venv changed since the running panel started (it must restart)."""
    try:
        stamp = os.stat(f"{VENV}/.padlab-stamp").st_mtime
    except OSError:
        return False
    since = _run(["systemctl", "show", "-p", "ActiveEnterTimestampMonotonic", "--value", UNIT], check=False)
    try:
        started_mono = int(since.stdout.strip()) / 1e6
    except ValueError:
        return True
    started = time.time() - (time.monotonic() - started_mono)
    return stamp > started


def _ca_fingerprint() -> str | None:
    """padlab's CA certificate the panel made in its home (a public file; read without following links)."""
    from padlab import tls
    from padlab.box.system import read_plain

    try:
        pem = read_plain(os.path.join(HOME, "ca", "padlab-ca.pem")).decode()
    except (OSError, ValueError):
        return None
    return tls.pretty_fingerprint(tls.fingerprint(pem))


# -- --on PROFILE: the same, over ssh, from a computer ------------------------------------


def install_on(profile_name: str, args: list[str], acme_ca: str | None) -> int:
    """Ship padlab (wheel + lock) to the profile's host over padlab's ssh, install it there,
    then run `padlab panel install --system ARGS` there as root; its output is this command's."""
    from padlab import profiles, ssh, state

    profile = profiles.load(profile_name)
    host = profile.host or state.load(profile_name).get("host")
    if not host:
        raise PadlabError(
            f"{profile_name!r} has no address to install the panel on",
            f"padlab init {profile_name} --provider ssh --host USER@HOST",
        )
    target = ssh.Target(host, profile.user, profile.ssh_port, profile.identity, ssh.key_alias(profile_name))
    ssh.ensure_master(target)
    sudo = "" if target.user == "root" else "sudo -n "
    extra = {}
    if acme_ca:
        extra["acme-ca.pem"] = Path(acme_ca).read_bytes()
        args = [*args, "--acme-ca", f"{INCOMING}/acme-ca.pem"]
    if "--public-address" not in args:
        args = [*args, "--public-address", host]
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:  # reached by name: the panel's certificate (padlab's CA) must carry it
        if host not in args:
            args = [*args, "--name", host]
    remote = (
        f"{sudo}sh -c {shlex.quote(UNPACK)} && {sudo}{VENV}/bin/padlab panel install --system "
        + " ".join(shlex.quote(a) for a in args)
    )
    proc = subprocess.run(ssh.command(target, remote, master="no"), input=bundle(extra), timeout=1800)
    if proc.returncode != 0:
        raise PadlabError(
            f"installing the panel on {target.display} failed (exit {proc.returncode}; its message is above)",
            f"fix what it says, then run `padlab panel install --on {profile_name}` again",
        )
    return 0
