"""One cheap fingerprint of everything `up` checks, so a no-op `up` answers "nothing to do" at once.

A full `up` ends by saving the fingerprint of what it left (the request without its
volatile fields, the box program, every file and folder it wrote, Jupyter's process
and port, the certificate's renewal date, the firewall's live rules, the units' states,
the folders kernel discovery looks in, mosh and rsync). The next `up` computes the
same fingerprint first, from stats and two root commands (nft, systemctl), and stops
there when it matches; any difference (Jupyter died, the certificate is due, a rule or
a unit file went, a new request...) runs every step again, as does `up --check`.

The record is root's, 0600, on a system box (/var/lib/padlab), so the Jupyter user, who
owns the prefix, can neither forge "nothing to do" nor read the hash of a request that
carries tokens; what that user can change (their files, their
process) only ever makes the fingerprint differ, never match: ctime and inode are
in each file's stat, and the user can set neither.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import time

from ..context import Context
from ..service import Layout, choose, read_pid
from ..system import IP_ADDR, ROOT_DIR, Host, sha256

# What changes between two identical `up`s, or is compared apart: the money times move with the clock.
VOLATILE = ("password", "check", "answers")
MONEY_TIMES = ("deadline_at", "budget_warn_at")
MONEY_SLACK_S = 120.0  # a deadline recomputed a little later is the same deadline


def record_path(layout: Layout) -> str:
    if layout.system:
        return os.path.join(ROOT_DIR, "up-%s.json" % layout.name)
    return os.path.join(layout.prefix, "up-%s.json" % layout.name)


def units(layout: Layout) -> list:
    """The systemd units up leaves running (Jupyter's, the agent's timer, the firewall's)."""
    out = [layout.unit, "padlab-agent-%s.timer" % layout.name]
    if layout.system:
        out.append("padlab-firewall.service")
    return out


def _request_part(req: dict) -> tuple:
    """(the request's hash without volatile fields, its money times apart)."""
    stable = {k: v for k, v in req.items() if k not in VOLATILE}
    autostop = dict(stable.get("autostop") or {})
    times = {k: autostop.pop(k, None) for k in MONEY_TIMES}
    autostop.pop("deadline_why", None)  # "$1.23 left at ...": words that move with every cent spent
    stable["autostop"] = autostop
    return sha256(json.dumps(stable, sort_keys=True, default=str)), times


def _stat(path: str, times: bool = False) -> list:
    """A file: what only a write, a replace or a chmod changes (ctime and inode included). A folder:
    only that it is one, its mode and owner (its contents are someone else's: notebooks, logs).
    ``times``: a folder whose entries `up` looks at (where kernel discovery looks, a venv's
    site-packages), followed as that look follows it, with its times too: an entry added or
    removed changes them."""
    try:
        st = os.stat(path) if times else os.lstat(path)
    except OSError as exc:
        return [path, type(exc).__name__]
    if stat.S_ISDIR(st.st_mode):  # a link to a folder only where ``times`` followed it
        folder = [path, "dir", st.st_mode, st.st_uid, st.st_gid]
        return folder + [st.st_mtime_ns, st.st_ctime_ns] if times else folder
    return [path, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode, st.st_uid, st.st_gid]


def _listening(req: dict) -> bool:
    """Whether Jupyter's port takes a connection. A plain socket, not create_connection: its name lookup
    alone (the idna codec) costs a no-op `up` 3 ms, and the address is one already."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(req["listen"], req["listen"])
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect((host, int(req["port"])))
            return True
    except OSError:
        return False


def applies(kind: str, req: dict, layout: Layout) -> bool:
    """Whether `up` may answer from the fingerprint: a system box whose units systemd runs
    (``kind``: service.choose), without `--check` or a new password."""
    return kind == "systemd" and layout.system and not req["check"] and req["password"] is None


def start(ctx: Context) -> list | None:
    """`up`'s early step (__main__.ACTIONS): the fingerprint's commands, started as soon as the box's
    lock is held, so they run while the rest of `up` is imported; None where `up` will not use them."""
    if not applies(choose(ctx.host, ctx.layout), ctx.req, ctx.layout):
        return None
    return _start(ctx.host, ctx.layout, ctx.req)


def _start(host: Host, layout: Layout, req: dict) -> list:
    """Two commands, started side by side while the rest is computed: systemctl (the units' states),
    and one root shell that reads the record (root's alone: it hashes a request that may carry
    tokens) and lists the firewall's rules (stateless: no counters). Without working sudo the
    shell fails, the record reads empty and `up` runs every step (which says why sudo failed)."""
    show = ["systemctl", "show", "-p", "Id,ActiveState,UnitFileState,FragmentPath"] + units(layout)
    script = "cat %s 2>/dev/null; printf '\\0'" % shlex.quote(record_path(layout))
    if req["firewall"] is not None and (shutil.which("nft") or os.path.exists("/usr/sbin/nft")):
        script += "; nft -s -j list ruleset"
    root = (["sudo", "-n", "--"] if host.sudo else []) + ["sh", "-c", script]
    argvs = [show, root] + ([IP_ADDR] if shutil.which("ip") else [])  # the box's addresses, for _parts
    return [subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for a in argvs]


def _finish(procs: list) -> tuple:
    """(the saved record, a hash of the units' states and the firewall's live rules, systemctl's words)."""
    (units_out, _), (root_out, _) = (p.communicate() for p in procs[:2])
    record, _, rules = root_out.partition(b"\0")
    codes = b"%d %d" % (procs[0].returncode, procs[1].returncode)
    return record, sha256(units_out + b"\0" + rules + b"\0" + codes), units_out


def enabled(units_out: bytes, unit: str) -> bool | None:
    """Whether systemctl show's block for `unit` says it starts at boot (service.status's `enabled`)."""
    for block in units_out.decode(errors="replace").split("\n\n"):
        props = dict(line.partition("=")[::2] for line in block.splitlines())
        if props.get("Id") == unit:
            return props.get("UnitFileState") == "enabled"
    return None


def _discovery_dirs(layout: Layout) -> list:
    """Where kernel discovery looks (box/kernels/kernels.py candidates): a new environment there changes these;
    and sshd's configuration, whose ports the firewall step reads."""
    try:
        home = pwd.getpwnam(layout.user).pw_dir
    except KeyError:
        home = "/nonexistent"
    dirs = ["/usr/local/bin", "/usr/bin", "/opt", os.path.join(layout.prefix, "kernels")]
    dirs += ["/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d"]  # the ports the firewall keeps open for ssh
    for base in (os.path.join(home, "miniconda3"), os.path.join(home, "anaconda3"), "/opt/conda"):
        dirs += [base, os.path.join(base, "envs")]
    return [_stat(d, times=True) for d in dirs]


def _packages(venv: str) -> list:
    """The site-packages folders of a venv padlab installs from a lock (Jupyter's, root's ACME
    client's): an install or removal there (a notebook's `pip install jupyterlab==...`) changes
    their times, and `up` brings the venv back to its lock."""
    base = os.path.join(venv, "lib")
    try:
        names = sorted(n for n in os.listdir(base) if n.startswith("python"))
    except OSError:
        return []
    return [_stat(os.path.join(base, name, "site-packages"), times=True) for name in names]


def _kernelspecs(layout: Layout) -> list:
    """The kernelspecs `up` registers (the venv's share/jupyter/kernels, the Jupyter user's to change):
    the folder and each entry, as lstat sees them, so a spec removed or a folder swapped for a link
    runs every step again (which re-registers, or refuses the link)."""
    folder = os.path.join(layout.venv, "share", "jupyter", "kernels")
    out = [_stat(folder)]
    if out[0][1] == "dir":  # a folder, not a link to one
        try:
            out += [_stat(os.path.join(folder, name)) for name in sorted(os.listdir(folder))]
        except OSError as exc:
            out.append(type(exc).__name__)
    return out


def _clone_there(layout: Layout, req: dict) -> bool | None:
    """Whether the course folder `--clone` asks for is there: up clones it again when it went."""
    if not req["clone"]:
        return None
    from ..system import expand_user
    from .clone import target

    try:
        return os.path.exists(os.path.join(expand_user(req["root_dir"], layout.user), target(req["clone"])))
    except KeyError:
        return False


def _parts(host: Host, layout: Layout, req: dict, program: bytes, procs: list) -> dict:
    """What the fingerprint covers besides the files and _finish's hash: computed while those run."""
    from . import acme_setup, tls  # here, not on top: start() runs before they are imported

    pid = read_pid(host, layout)
    ip_out = procs[2].communicate()[0].decode(errors="replace") if procs[2:] else None
    sans = tls.wanted_names(req["extra_sans"], ip_out)
    client = (os.environ.get("SSH_CONNECTION") or "").split()
    return {
        "program": sha256(program),
        "client": [client[0], client[3]] if len(client) == 4 else None,  # allow_from auto, ssh's port
        # Alive and listening, not which PID: a reboot or systemd's restart needs no full run.
        "jupyter": [pid is not None, pid is not None and _listening(req)],
        "tls": tls.current_ok(host, layout, req["ca_pem"], sans) is not None,
        "discovery": _discovery_dirs(layout),
        "tools": [shutil.which(t) for t in ("mosh-server", "rsync", "python3")],
        "clone": _clone_there(layout, req),
        "venv": _packages(layout.venv),
        "acme_venv": _packages(acme_setup.Paths(layout.name).venv),
        "kernelspecs": _kernelspecs(layout),
    }


def compute(req: dict, parts: dict, paths: list, root: str) -> dict:
    """The fingerprint of what `up` would check now (``root``: _finish's hash), and the money times apart."""
    req_hash, times = _request_part(req)
    files = [_stat(p) for p in paths]
    whole = dict(parts, request=req_hash, files=files, root=root)
    # Each part's own hash (a file's by its path), so a full run can say which part differed.
    each = {k: _short(v) for k, v in whole.items() if k != "files"}
    each.update(("file " + p, _short(st)) for p, st in zip(paths, files))
    return {
        "fp": sha256(json.dumps(whole, sort_keys=True, default=str)),
        "times": times,
        "paths": paths,
        "parts": each,
    }


def _short(value: object) -> str:
    return sha256(json.dumps(value, sort_keys=True, default=str))[:16]


def differing(kept: dict, now: dict) -> list:
    """The names of the parts that differ between a saved record and now: why every step runs."""
    old = kept.get("parts") if isinstance(kept.get("parts"), dict) else {}
    new = now["parts"]
    if not old:
        return ["record"]  # one from before parts were kept
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)) or ["record"]


def unchanged(
    host: Host,
    layout: Layout,
    req: dict,
    program: bytes,
    why: list | None = None,
    started: list | None = None,
) -> dict | None:
    """The last full run's record when nothing it checked changed since, else None. The returned
    record also says whether Jupyter's unit is enabled (``enabled``), as systemctl showed it.
    ``why``, when given, gets the names of the parts that differed (`up` reports them); ``started``:
    the commands start() started under this same lock."""
    why = [] if why is None else why
    procs = started or _start(host, layout, req)
    parts = _parts(host, layout, req, program, procs)
    raw, root, units_out = _finish(procs)
    try:
        kept = json.loads(raw or b"{}")
    except ValueError:
        kept = None
    if not isinstance(kept, dict) or not kept.get("fp") or not isinstance(kept.get("paths"), list):
        why.append("record")  # none, unreadable (no sudo) or not one
        return None
    now = compute(req, parts, [str(p) for p in kept["paths"]], root)
    if now["fp"] != kept["fp"]:
        why += differing(kept, now)
        return None
    for key, value in now["times"].items():
        old = (kept.get("times") or {}).get(key)
        if (value is None) != (old is None) or (
            value is not None and abs(float(value) - float(old)) > MONEY_SLACK_S
        ):
            why.append(key)
            return None
    kept["enabled"] = enabled(units_out, layout.unit)
    return kept


def remember(
    host: Host, layout: Layout, req: dict, program: bytes, warnings: list, tls_facts: dict | None
) -> None:
    """After a full run: save its fingerprint, over every path the run wrote or made, with what a
    no-op `up` must still report (its warnings, which certificate serves)."""
    paths = sorted(set(host.touched) - {record_path(layout)})
    procs = _start(host, layout, req)
    parts = _parts(host, layout, req, program, procs)
    record = compute(req, parts, paths, _finish(procs)[1])
    record.update(warnings=list(warnings), tls=tls_facts, at=time.time())
    host.write(record_path(layout), json.dumps(record, sort_keys=True) + "\n", mode=0o600, root=layout.system)
