"""The `up` step that gives Jupyter a public certificate for the box's IP (Let's Encrypt by default).

Where the ACME client runs: on the box, as root, in a venv of padlab's own under
/var/lib/padlab/acme-NAME (certbot's ``acme`` package; box/setup/acme_client.py), installed from
padlab's lock (acme-lock.txt: exact versions, hashes, wheels only) and brought back to it
at each `up` (box/venv.py, as Jupyter's venv). The box renews
its 160-hour certificate at half its life, and after a reboot that changed its address,
from a systemd timer, while no padlab client runs. Root runs only root-owned files there,
with ``python -I``: never Jupyter's venv, which the Jupyter user can change.

Jupyter reads key and chain from one file in that root-owned folder (root's, readable by its
user's group: it may read its own key, never change or swap it), so renewals reach it without
a restart. Root never reads that file back: it keeps its own copy of the key.
When no certificate can be had, the step says why in one line and `up` keeps padlab's CA.
"""

from __future__ import annotations

import json
import os
import time

from .. import venv
from ..report import BoxError, Report
from ..service import Layout
from ..system import ROOT_DIR, Host, has_systemd

RUN_TIMEOUT_S = 300


class Paths:
    """Where one workstation's ACME client keeps its files: all root's, in /var/lib/padlab."""

    def __init__(self, name: str) -> None:
        self.dir = os.path.join(ROOT_DIR, "acme-%s" % name)
        self.venv = os.path.join(self.dir, "venv")
        self.python = os.path.join(self.venv, "bin", "python")
        self.program = os.path.join(self.dir, "padlab_box.pyz")
        self.runner = os.path.join(self.dir, "padlab-acme")
        self.config = os.path.join(self.dir, "config.json")  # 0600: holds the account key
        self.ca = os.path.join(self.dir, "acme-ca.pem")  # extra roots for a private ACME server
        self.state = os.path.join(self.dir, "state.json")
        self.cert = os.path.join(self.dir, "cert.pem")  # the chain, for status and the health check
        self.key = os.path.join(self.dir, "key.pem")  # root's copy of the key, 0600: renewals keep it
        self.live = os.path.join(self.dir, "jupyter.pem")  # key + chain: what Jupyter serves (0440)
        self.unit = "padlab-acme-%s.service" % name
        self.timer = "padlab-acme-%s.timer" % name
        self.agent_dir = os.path.join(ROOT_DIR, "agent-%s" % name)


def runner_script(python: str, program: str, name: str) -> str:
    return """#!{python} -I
# Written by padlab: get or renew the box's public certificate (padlab-acme-{name}.timer).
import sys
sys.path.insert(0, {program!r})
from padlab_box.setup.acme_client import main
sys.exit(main([{name!r}] + sys.argv[1:]))
""".format(python=python, program=program, name=name)


def unit_text(where: Paths, name: str) -> str:
    return """[Unit]
Description=padlab: renew the box's public TLS certificate ({name})
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart={python} -I {runner}
""".format(name=name, python=where.python, runner=where.runner)


def timer_text(name: str) -> str:
    return """[Unit]
Description=padlab: check the box's public TLS certificate hourly and at boot ({name})

[Timer]
OnBootSec=30s
OnUnitActiveSec=1h
RandomizedDelaySec=1m

[Install]
WantedBy=timers.target
""".format(name=name)


def ensure(host: Host, layout: Layout, req: dict, program: bytes, report: Report) -> dict:
    """{"kind": "public", "pem", ...} when Jupyter can serve a public certificate, else
    {"kind": "padlab-ca", "reason"}."""
    spec = req["acme"]
    where = Paths(layout.name)
    if spec is None:
        if layout.system and os.path.exists("/etc/systemd/system/%s" % where.timer):
            # padlab's CA chosen since: the timer stops renewing a certificate nobody serves.
            host.run(["systemctl", "disable", "--now", where.timer], root=True, check=False)
        return {"kind": "padlab-ca", "reason": None}
    if not layout.system:
        return _fallback("padlab has no root on this box, and the ACME challenge needs port 80")
    if not has_systemd():
        return _fallback("the box has no systemd to renew a 160-hour certificate")
    t0 = time.monotonic()
    problem = _install(host, where, layout, req, program, report)
    if problem:
        return _fallback(problem)
    before = host.read(where.cert)
    report.stage("getting a certificate for %s from %s" % (spec["ip"], spec["directory"]))
    proc = host.run(
        [where.python, "-I", where.runner, layout.name], root=True, check=False, timeout=RUN_TIMEOUT_S
    )
    if proc.returncode not in (0, 1):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return _fallback("the ACME client failed: %s" % tail[0][:300])
    report.data["acme_seconds"] = round(time.monotonic() - t0, 1)
    return dict(facts(host, layout.name, spec["ip"]), new=host.read(where.cert) != before)


def facts(host: Host, name: str, ip: str | None = None) -> dict:
    """What status and the card say about the public certificate; padlab-ca with a reason without one."""
    where = Paths(name)
    state = _load(host.read(where.state))
    if not state:
        return _fallback("no public certificate yet")
    now = time.time()
    valid = float(state.get("not_after") or 0) > now and os.path.exists(where.live)
    if not valid or (ip and ip not in (state.get("ips") or [])):
        return _fallback(state.get("reason") or "the public certificate expired")
    out = {
        "kind": "public",
        "pem": where.live,
        "cert": where.cert,
        "issuer": state.get("issuer"),
        "not_after": state.get("not_after"),
        "ips": state.get("ips"),
        "profile": state.get("profile"),
        "reason": None,
    }
    if state.get("status") == "failed":
        out["renewal_failed"] = state.get("reason")
    return out


def _fallback(reason: str) -> dict:
    return {"kind": "padlab-ca", "reason": reason}


def _install(
    host: Host, where: Paths, layout: Layout, req: dict, program: bytes, report: Report
) -> str | None:
    """The venv, the program, the config and the timer, all root's; a reason when it cannot."""
    spec = req["acme"]
    host.makedirs(ROOT_DIR, mode=0o755, root=True)
    host.makedirs(where.dir, mode=0o755, root=True)
    try:
        venv.bring_to_lock(venv.ACME, host, where.venv, report, "root", True, [])
    except BoxError as e:
        return "could not install the ACME client on the box: %s" % e.message[:300]
    host.write(where.program, program, mode=0o644, root=True)
    host.write(where.runner, runner_script(where.python, where.program, layout.name), mode=0o755, root=True)
    conf = {
        "directory": spec["directory"],
        "ip": spec["ip"],
        "account_key_pem": spec["account_key_pem"],
        "ca_pem": spec["ca_pem"],
        "user": layout.user,
        "agent_log": os.path.join(where.agent_dir, "agent.log"),
        "agent_config": os.path.join(where.agent_dir, "config.json"),
    }
    host.write(where.config, json.dumps(conf, indent=2, sort_keys=True) + "\n", mode=0o600, root=True)
    if spec["ca_pem"]:
        host.write(where.ca, spec["ca_pem"], mode=0o644, root=True)
    changed = host.write("/etc/systemd/system/%s" % where.unit, unit_text(where, layout.name), root=True)
    changed |= host.write("/etc/systemd/system/%s" % where.timer, timer_text(layout.name), root=True)
    if changed:
        host.run(["systemctl", "daemon-reload"], root=True)
    if host.run(["systemctl", "is-enabled", where.timer], check=False).stdout.strip() != "enabled":
        host.run(["systemctl", "enable", "--now", where.timer], root=True)
    return None


def served_cert(host: Host, layout: Layout) -> str:
    """The chain file of the certificate Jupyter's config names (public or padlab's CA)."""
    try:
        cfg = json.loads(host.read(layout.config) or b"{}")
    except ValueError:
        cfg = {}
    where = Paths(layout.name)
    return where.cert if (cfg.get("ServerApp") or {}).get("certfile") == where.live else layout.cert


def _load(raw: bytes | None) -> dict:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
