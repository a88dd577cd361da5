"""The idempotent steps that make a box a workstation, and the down/status/passwd actions.

Each action takes the Context (context.py: the checked request, the report, the
host, the layout) and fills its report. Running ``up`` twice changes nothing the
second time.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from typing import Any, Callable

from .. import account, service, venv
from ..context import Context
from ..net import ports
from ..report import BoxError, Report
from ..service import Layout
from ..system import PROGRAM_DIR, ROOT_DIR, Host, expand_user, primary_address
from . import acme_setup, fingerprint, jupyter, tls

CHECK_SNIPPET = (
    "import sys; from jupyter_server.auth import passwd_check; "
    "h, p = sys.stdin.read().split('\\n', 1); sys.exit(0 if passwd_check(h, p) else 1)"
)


def up(ctx: Context) -> None:
    req, report, host, layout = ctx.req, ctx.report, ctx.host, ctx.layout
    kind = service.choose(host, layout)
    quick = kind == "systemd" and layout.system  # remote boxes: the fingerprint covers what systemd runs
    if fingerprint.applies(kind, req, layout):
        # Its root shell is the sudo check here: where sudo fails, the record reads empty and every step runs.
        why: list = []
        kept = fingerprint.unchanged(host, layout, req, ctx.program, why, started=ctx.early)
        if kept is not None:
            report.step(
                "unchanged", False, "nothing to do: as the last full run left it (`up --check` runs all)"
            )
            for warning in kept.get("warnings") or []:
                report.warn(warning)
            report.data.update(workstation_facts(host, layout, kind, enabled=kept.get("enabled")))
            report.data["tls"] = kept.get("tls")  # which certificate serves, as the full run found
            return
        report.data["fingerprint_changed"] = why  # which parts differed from the last full run's: why all run
    host.check_sudo()
    try:
        _setup(ctx, kind)
    except Exception:
        _arm_autostop(ctx, kind)
        raise
    if quick and "needs_cert" not in report.data:  # stopped at TLS: not a finished run
        fingerprint.remember(host, layout, req, ctx.program, report.warnings, report.data.get("tls"))


def _arm_autostop(ctx: Context, kind: str) -> None:
    """An `up` that failed half-way (no venv, no certificate, a port taken) still leaves the box
    stopping as its settings say: idle limit, maximum uptime, budget. A new cloud machine is billed
    from its first second, and the agent's step comes late in `up`. Best effort: the error that
    ended `up` is the one to report."""
    from ..autostop import agent_setup

    with contextlib.suppress(Exception):  # the first failure is the one reported
        agent_setup.install(ctx.host, ctx.layout, ctx.req, ctx.program, kind, Report())


def _setup(ctx: Context, kind: str) -> None:
    """Every step of `up`, in order; each changes only what differs from what it wants."""
    req, report, host, layout = ctx.req, ctx.report, ctx.host, ctx.layout
    account.ensure(host, layout.user, report)
    account.adopt(host, layout, req["root_dir"], report)

    host.makedirs(layout.prefix, owner=layout.user, root=layout.system)
    for d in (os.path.dirname(layout.lib), os.path.dirname(layout.launcher)):
        host.makedirs(d, owner=layout.user, root=layout.system)
    for d in (layout.run_dir, layout.log_dir):
        host.makedirs(d, mode=0o755 if layout.system else 0o700, owner=layout.user, root=layout.system)
    host.makedirs(layout.etc, mode=0o700, owner=layout.user, root=layout.system)
    host.makedirs(layout.jupyter_dir, mode=0o700, owner=layout.user, root=layout.system)
    report.step("box-program", host.write(layout.lib, ctx.program, owner=layout.user, root=layout.system))

    # What needs nothing from Jupyter's venv runs in a thread while the venv installs (mostly a wait
    # on the network); joined before Jupyter starts, and before any return or raise.
    side = Alongside(report, lambda aside: _alongside(ctx, kind, aside))
    joined: list = [side]
    try:
        _main_steps(ctx, kind, side, joined)
    finally:
        for other in joined:
            if isinstance(other, Alongside):
                other.thread.join()
            else:
                jupyter.warmed(other)


def _alongside(ctx: Context, kind: str, report: Report) -> bool:
    """The compiled program, the unit, mosh, rsync and the firewall; returns whether the unit changed."""
    from ..files import files
    from ..net import firewall, mosh

    req, host, layout = ctx.req, ctx.host, ctx.layout
    if layout.system and ctx.program:
        report.step("compiled-program", compiled_program(host, ctx.program))
    unit_changed = service.install(host, layout, kind, report)
    if req["mosh"] is not None:
        mosh.ensure(host, req["mosh"], report)
    if req["rsync"] is not None:
        files.ensure_rsync(host, report)
    if req["firewall"] is not None:
        firewall.ensure(host, req, ctx.program, report)
    return unit_changed


class Alongside:
    """Steps run in a thread beside the main ones, with a report of their own (Report.aside)."""

    def __init__(self, report: Report, work: Callable[[Report], Any]) -> None:
        self.main, self.report = report, report.aside()
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(work,))
        self.thread.start()

    def _run(self, work: Callable[[Report], Any]) -> None:
        try:
            self.result = work(self.report)
        except BaseException as exc:  # noqa: BLE001 (raised in the main thread, by wait())
            self.error = exc

    def wait(self) -> Any:
        """Join, add its steps to the main report, raise what it raised, else return what it returned."""
        self.thread.join()
        self.main.merge(self.report)
        self.report = Report()  # merged once
        if self.error is not None:
            raise self.error
        return self.result


def _main_steps(ctx: Context, kind: str, side: Alongside, joined: list) -> None:
    """The steps in order; those that need nothing from the step before run in a thread beside it,
    each added to `joined` (joined by _setup before any return or raise)."""
    from ..autostop import agent_setup
    from ..kernels import kernels
    from . import boot, clone, health

    req, report, host, layout = ctx.req, ctx.report, ctx.host, ctx.layout
    # Kernel discovery (probing each Python on the box) needs nothing from Jupyter's venv: it runs
    # while the venv installs, unless declared kernels are built first (with the venv's uv). The
    # kernelspecs are written into the venv, after it is there.
    found = None
    if not (req["kernels"] or {}).get("declared"):
        found = Alongside(report, lambda aside: _discover_kernels(layout, aside))
        joined.append(found)
    env_changed = venv.ensure(
        host, layout.venv, report, layout.user, layout.system, req["packages"], req["uv_cache"]
    )
    # A new stack: its modules compile (as the Jupyter user) while TLS is settled, not in Jupyter's
    # first start; the password's hash, the files beside the config and the agent's credential
    # meanwhile too.
    warming = jupyter.warm_up(layout) if env_changed else None
    joined.append(warming)
    prep = Alongside(report, lambda aside: _config_parts(host, layout, req["password"], aside))
    joined.append(prep)

    report.stage("checking the TLS certificate")
    public = acme_setup.ensure(host, layout, req, ctx.program, report)
    new_public = bool(public.pop("new", False))
    report.data["tls"] = public
    pem = public["pem"] if public["kind"] == "public" else None
    if pem:
        cert_changed = False  # Jupyter reads it at each new connection: no restart for it
        report.step(
            "tls",
            new_public,
            "public certificate for %s from %s" % (", ".join(public["ips"]), public["issuer"]),
        )
    else:
        # The names are read once: the signed certificate is checked against the names it was
        # signed for (the box's addresses read again could differ; the next `up` sees a new one).
        sans = tls.wanted_names(req["extra_sans"])
        req["ca_pem"] = padlab_ca(req, report, public["reason"])
        result = tls.check(host, layout, req["ca_pem"], sans, None)
        if result["status"] == "need" and req["answers"]:  # the client signs it now, in this same call
            signed = report.ask("sign", csr=result["csr"], sans=sans).get("cert_pem")
            if isinstance(signed, str) and signed:
                result = tls.check(host, layout, req["ca_pem"], sans, signed)
        if result["status"] == "need":  # no client to sign it (a container's boot): `up` does
            report.step("tls", True, "new key" if result["key_new"] else result["reason"])
            report.data.update(needs_cert={"csr": result["csr"], "sans": sans, "reason": result["reason"]})
            side.wait()  # kernels and the config's parts: the second call, with the certificate, redoes them
            return
        cert_changed = result["origin"] == "new" and host.write(
            layout.cert, result["pem"], mode=0o644, owner=layout.user, root=layout.system
        )
        cert_changed |= host.write(
            os.path.join(layout.tls_dir, "ca.crt"),
            req["ca_pem"],
            mode=0o644,
            owner=layout.user,
            root=layout.system,
        )
        report.step("tls", cert_changed, "certificate for %s" % ", ".join(sans))

    hashed, secret_changed, files_changed, agent_changed = prep.wait()
    envs = found.wait() if found is not None else None
    default_kernel = kernels.ensure(host, layout, req["kernels"], report, envs)
    cfg = jupyter.config(
        layout,
        int(req["port"]),
        req["listen"],
        req["root_dir"],
        hashed,
        default_kernel,
        pem,
        req["proxy_port"],
    )
    root_dir = expand_user(req["root_dir"], layout.user)
    host.makedirs(root_dir, mode=0o755, owner=layout.user, root=layout.system)
    if req["clone"]:
        clone.ensure(host, layout, {"url": req["clone"], "root_dir": req["root_dir"]}, report)
    cfg_changed = host.write(layout.config, cfg, mode=0o600, owner=layout.user, root=layout.system)
    cfg_changed |= files_changed
    report.step("jupyter-config", cfg_changed or secret_changed, layout.config)
    launcher_changed = host.write(
        layout.launcher, service.launcher_script(layout), mode=0o755, owner=layout.user, root=layout.system
    )
    unit_changed = side.wait()

    jupyter.warmed(warming)
    running = service.read_pid(host, layout) is not None
    port = int(req["port"])
    if not running and ports.in_use(port):
        holder = ports.owner(port)
        raise BoxError(
            "port %d is already in use%s" % (port, " by %s" % holder if holder else ""),
            "stop that program, or choose another port: padlab init %s --port N --force" % layout.name,
            code="port_in_use",
        )
    restart = (
        env_changed
        or cert_changed
        or cfg_changed
        or secret_changed
        or launcher_changed
        or unit_changed
        or agent_changed
    )
    acted = service.start(host, layout, kind, restart=restart)
    report.step(
        "jupyter-running", acted, "restarted" if acted and running else ("started" if acted else "running")
    )
    # While Jupyter starts (~2 s), not after.
    agent_setup.install(host, layout, req, ctx.program, kind, report, pin=public["cert"] if pem else None)
    if req["boot"] is not None:
        boot.save(host, req, ctx.program, report)
    report.stage("waiting for Jupyter to answer over HTTPS")
    waited = health.wait_ready(
        port,
        None if pem else req["ca_pem"],
        layout.log,
        alive=lambda: service.read_pid(host, layout) is not None,
        pin=cert_sha256(host, layout) if pem else None,
    )
    report.step("jupyter-answers", False, "its HTTPS login page answered in %.2f s" % waited)
    report.data.update(workstation_facts(host, layout, kind))
    report.data["tls"] = public  # with the reason when padlab's CA serves


def padlab_ca(req: dict, report: Report, reason: str | None) -> str:
    """padlab's CA for a box without a public certificate: the request's, else asked of the client,
    which makes it only then, and not on a public panel that was not allowed to (tls.ca_for_box).
    Kept in the request as if sent: the fingerprint, the agent's copy and a container's boot use it."""
    ca_pem = req["ca_pem"]
    if not ca_pem and req["answers"]:
        ca_pem = report.ask("ca", reason=reason).get("ca_pem")
    if not isinstance(ca_pem, str) or not ca_pem:
        raise BoxError(
            "the box got no public certificate (%s) and no padlab CA to sign one" % reason,
            "run `padlab up` again",
            code="needs_ca",
        )
    return ca_pem


def _discover_kernels(layout: Layout, report: Report) -> list:
    from ..kernels import kernels

    report.stage("looking for the box's Python environments")
    return kernels.discover(layout)


def _config_parts(host: Host, layout: Layout, password: str | None, report: Report) -> tuple:
    """(the password's hash, whether the cookie secret changed, whether the login guard or the lab's
    overrides changed, whether the agent's extension changed): what Jupyter's start needs from the
    venv, apart from TLS and kernels."""
    from ..autostop import agent_setup

    hashed = _password_hash(host, layout, password, report)
    secret_changed = jupyter.ensure_cookie_secret(host, layout)
    files_changed = jupyter.install_login_guard(host, layout)
    files_changed |= jupyter.install_lab_overrides(host, layout)
    agent_changed = agent_setup.prepare_jupyter(host, layout, report)
    return hashed, secret_changed, files_changed, agent_changed


def compiled_program(host: Host, program: bytes) -> bool:
    """Root's copy of the program with each module's bytecode, for this box's python3 (PROGRAM_DIR/
    SHA256-TAG.pyz): transport.LOADER imports it instead of compiling the zip's sources on each call
    (half the time of a no-op `up`). Named by the program's hash; the loader uses it only when root
    owns it and every folder above it, so no one else can plant code there. Returns whether it wrote it."""
    tag = sys.implementation.cache_tag
    if not tag:
        return False
    path = os.path.join(PROGRAM_DIR, "%s-%s.pyz" % (hashlib.sha256(program).hexdigest(), tag))
    try:
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode) and st.st_uid == 0 and not st.st_mode & 0o022:
            host.touched.append(path)  # the fingerprint notices it gone: the next `up` makes it again
            return False
    except OSError:
        pass
    host.makedirs(ROOT_DIR, mode=0o755, root=True)
    host.makedirs(PROGRAM_DIR, mode=0o755, root=True)
    host.write(path, with_bytecode(program, path), mode=0o644, root=True)
    # Other versions' copies, a week on: a second client of another padlab version keeps its own meanwhile.
    keep = ["!", "-name", os.path.basename(path)]
    host.run(
        ["find", PROGRAM_DIR, "-maxdepth", "1", "-name", "*.pyz", *keep, "-mtime", "+7", "-delete"],
        root=True,
        check=False,
    )
    return True


def with_bytecode(program: bytes, where: str) -> bytes:
    """The program's zip plus, beside each module, its bytecode as an unchecked hash-based .pyc
    (PEP 552): zipimport loads it as it is, without reading the source (kept for tracebacks)."""
    import importlib.util
    import io
    import marshal
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(program)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data)
            if info.filename.endswith(".py"):
                code = compile(data, os.path.join(where, info.filename), "exec", dont_inherit=True)
                header = importlib.util.MAGIC_NUMBER + b"\x01\x00\x00\x00" + importlib.util.source_hash(data)
                pyc = zipfile.ZipInfo(info.filename + "c", date_time=info.date_time)
                pyc.external_attr = info.external_attr
                dst.writestr(pyc, header + marshal.dumps(code))
    return out.getvalue()


def _password_hash(host: Host, layout: Layout, password: str | None, report: Report) -> str:
    """The hash Jupyter gets. `up` sets the first password only; changing it is `padlab passwd`'s job,
    so a password from a lost or stale client record never replaces the one in use."""
    current = jupyter.current_hash(host, layout)
    if password is None:
        if current is None:
            raise BoxError(
                "no password is set on this workstation yet",
                "run `padlab up` in a terminal, or with --password-stdin or --generate-password",
                code="needs_password",
            )
        return current
    if current and _matches(layout, current, password):
        return current
    if current:
        report.data["password_kept"] = True
        report.warn(
            "this workstation already has a password, so up kept it and did not use the one given; "
            "to change it: padlab passwd %s" % layout.name
        )
        return current
    return jupyter.hash_password(layout, password)


def _matches(layout: Layout, hashed: str, password: str) -> bool:
    proc = subprocess.run(
        Host(sudo=True).as_user(layout.user) + [venv.python_in(layout.venv), "-c", CHECK_SNIPPET],
        input=hashed + "\n" + password,
        capture_output=True,
        text=True,
    )
    return proc.returncode == 0


def cert_sha256(host: Host, layout: Layout) -> str | None:
    """Fingerprint of the served certificate: SHA-256 of its DER bytes (stdlib only)."""
    raw = host.read(acme_setup.served_cert(host, layout))
    if not raw:
        return None
    body = b"".join(line for line in raw.splitlines() if line and not line.startswith(b"-----"))
    return hashlib.sha256(base64.b64decode(body)).hexdigest()


def workstation_facts(host: Host, layout: Layout, kind: str, enabled: bool | None = None) -> dict:
    """What every report carries about the workstation (the agent's view is agent_setup.facts);
    ``enabled``: whether the unit starts at boot, where the caller has just asked systemd."""
    return {
        "service": service.status(host, layout, kind, enabled),
        "cert_sha256": cert_sha256(host, layout),
        "hostname": socket.gethostname(),
        "primary_address": primary_address(),
        "password_set": jupyter.current_hash(host, layout) is not None,
        "tls": _public_tls(host, layout),
    }


def _public_tls(host: Host, layout: Layout) -> dict | None:
    """The public certificate's facts (a failed renewal included) when Jupyter serves one, else None."""
    if not layout.system or acme_setup.served_cert(host, layout) == layout.cert:
        return None
    return acme_setup.facts(host, layout.name)


def down(ctx: Context) -> None:
    host, layout = ctx.host, ctx.layout
    kind = service.choose(host, layout)
    acted = service.stop(host, layout, kind, disable=ctx.req["disable"])
    ctx.report.step("jupyter-stopped", acted, "stopped" if acted else "was not running")
    ctx.report.data.update(workstation_facts(host, layout, kind))


def status(ctx: Context) -> None:
    from ..autostop import agent_setup

    host, layout = ctx.host, ctx.layout
    ctx.report.data.update(workstation_facts(host, layout, service.choose(host, layout)))
    ctx.report.data["autostop"] = agent_setup.facts(host, layout)


def passwd(ctx: Context) -> None:
    req, report, host, layout = ctx.req, ctx.report, ctx.host, ctx.layout
    raw = host.read(layout.config)
    if not raw:
        raise BoxError("this workstation is not set up yet", "run `padlab up` first", code="not_set_up")
    kind = service.choose(host, layout)
    from . import health  # urllib's import alone is ~40 ms: only where Jupyter is waited for

    hashed = jupyter.hash_password(layout, req["password"])
    cfg = json.loads(raw)
    cfg["PasswordIdentityProvider"]["hashed_password"] = hashed
    text = json.dumps(cfg, indent=2, sort_keys=True) + "\n"
    host.write(layout.config, text, mode=0o600, owner=layout.user, root=layout.system)
    report.step("password", True, "new argon2 hash")
    if service.read_pid(host, layout) is not None:
        service.start(host, layout, kind, restart=True)
        alive = lambda: service.read_pid(host, layout) is not None  # noqa: E731
        public = acme_setup.served_cert(host, layout) != layout.cert  # pinned, as `up` checks it
        ca_pem = req["ca_pem"] or _text(host.read(os.path.join(layout.tls_dir, "ca.crt")))
        port = int(cfg["ServerApp"]["port"])
        pin = cert_sha256(host, layout) if public else None
        health.wait_ready(port, None if pin else ca_pem, layout.log, alive=alive, pin=pin)
        report.step("jupyter-running", True, "restarted with the new password")
    report.data.update(workstation_facts(host, layout, kind))


def _text(raw: bytes | None) -> str | None:
    return raw.decode() if raw else None
