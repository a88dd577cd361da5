"""The box's Python environments as Jupyter kernels: discover, register, and build on demand.

GPU images keep PyTorch in their own environments (Paperspace: the user site of
/usr/local/bin/python; AWS DLAMI: /opt/pytorch; conda envs), not in padlab's venv.
Each one with ipykernel becomes a kernelspec that names its interpreter by absolute
path (Jupyter would swap a bare ``python`` for its own). Vendor environments are never
changed: one with torch or TensorFlow but no ipykernel is listed with the command that
adds it. Kernels padlab builds (``padlab kernels NAME create``) are uv venvs under
padlab's prefix sharing one uv cache.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shutil
import subprocess

from .. import venv
from ..report import BoxError, Report
from ..service import Layout
from ..system import Host, sha256

PREFIX = "padlab-"  # our kernelspecs; any other kernelspec is left alone
KERNEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
PROBE_TIMEOUT = 30
# A kernel padlab builds: not ipykernel 7.0 to 7.3, which can leave a new connection's first request
# unread (ipython/ipykernel#1554): 7.4 where its Python has it (3.11 and later), else 6.x.
IPYKERNEL = "ipykernel!=7.0.*,!=7.1.*,!=7.2.*,!=7.3.*"
CUDA_TIMEOUT = 180

# Run by each candidate interpreter, as the Jupyter user: what a kernel there would see.
PROBE = """
import json, sys
try:
    from importlib import metadata
except ImportError:
    metadata = None
def version(name):
    try:
        return metadata.version(name) if metadata else None
    except Exception:
        return None
print(json.dumps({
    "python": "%d.%d.%d" % tuple(sys.version_info[:3]),
    "prefix": sys.prefix,
    "torch": version("torch"),
    "tensorflow": version("tensorflow") or version("tensorflow-cpu"),
    "ipykernel": version("ipykernel"),
}))
"""

CUDA_PROBE = """
import json, torch
ok = bool(torch.cuda.is_available())
print(json.dumps({"cuda": ok, "device": torch.cuda.get_device_name(0) if ok else None}))
"""


def as_user(user: str) -> list:
    """argv prefix that runs a command as the Jupyter user, with that user's HOME (so ~/.local counts)."""
    if pwd.getpwuid(os.geteuid()).pw_name == user:
        return []
    home = "HOME=" + pwd.getpwnam(user).pw_dir
    if os.geteuid() == 0 and shutil.which("sudo") is None:
        return ["runuser", "-u", user, "--", "env", home]
    return ["sudo", "-n", "-u", user, "-H", "--", "env", home]


def kernels_dir(layout: Layout) -> str:
    """Kernelspecs live in padlab's Jupyter venv (on its data path), not in the user's files."""
    return os.path.join(layout.venv, "share", "jupyter", "kernels")


def envs_dir(layout: Layout) -> str:
    return os.path.join(layout.prefix, "kernels")


def uv_cache(layout: Layout) -> str:
    """One cache for every kernel, on the same disk as the venvs: a second torch env is mostly links."""
    return os.path.join(layout.prefix, "cache", "uv")


# -- discovery ---------------------------------------------------------------------------


def candidates(layout: Layout) -> list:
    """(kind, env dir or None, interpreter path) for every Python environment worth probing."""
    home = pwd.getpwnam(layout.user).pw_dir
    found = []
    seen_real = set()
    for pattern in (
        "/usr/local/bin/python3*",
        "/usr/local/bin/python",
        "/usr/bin/python3*",
        "/usr/bin/python",
    ):
        for path in sorted(glob.glob(pattern)):
            if not re.search(r"/python(3(\.\d+)?)?$", path) or not os.access(path, os.X_OK):
                continue
            real = os.path.realpath(path)
            if real in seen_real:
                continue
            seen_real.add(real)
            found.append(("system", None, path))
    own = os.path.realpath(layout.prefix)
    for cfg in sorted(glob.glob("/opt/*/pyvenv.cfg")):
        env = os.path.dirname(cfg)
        if os.path.realpath(env).startswith(own + os.sep) or os.path.realpath(env) == own:
            continue
        found.append(("venv", env, os.path.join(env, "bin", "python")))
    conda = set()
    for base in (os.path.join(home, "miniconda3"), os.path.join(home, "anaconda3"), "/opt/conda"):
        if os.path.isdir(os.path.join(base, "conda-meta")):
            conda.add(base)
        conda.update(os.path.dirname(m) for m in glob.glob(os.path.join(base, "envs", "*", "conda-meta")))
    conda.update(_conda_env_list(layout, home))
    for env in sorted(conda):
        found.append(("conda", env, os.path.join(env, "bin", "python")))
    for env in sorted(glob.glob(os.path.join(envs_dir(layout), "*", "bin", "python"))):
        found.append(("padlab", os.path.dirname(os.path.dirname(env)), env))
    return [c for c in found if os.access(c[2], os.X_OK)]


def _conda_env_list(layout: Layout, home: str) -> list:
    """`conda env list` as the Jupyter user, when a conda is on the PATH or in the usual places."""
    exe = shutil.which("conda")
    for base in (os.path.join(home, "miniconda3"), os.path.join(home, "anaconda3"), "/opt/conda"):
        exe = exe or (
            os.path.join(base, "bin", "conda")
            if os.access(os.path.join(base, "bin", "conda"), os.X_OK)
            else None
        )
    if not exe:
        return []
    try:
        proc = subprocess.run(
            as_user(layout.user) + [exe, "env", "list", "--json"], capture_output=True, text=True, timeout=60
        )
        return [
            e for e in json.loads(proc.stdout).get("envs", []) if os.path.isdir(os.path.join(e, "conda-meta"))
        ]
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []


def probe(layout: Layout, interpreter: str) -> dict | None:
    """Versions as the Jupyter user sees them (so the user site counts); None if it does not run."""
    try:
        proc = subprocess.run(
            as_user(layout.user) + [interpreter, "-c", PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
        )
        return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None


def discover(layout: Layout) -> list:
    """Every environment with what it holds, its kernel name and display name, and a fix when it has no ipykernel."""
    out = []
    for kind, env, interpreter in candidates(layout):
        info = probe(layout, interpreter)
        if info is None:
            continue
        where = env or interpreter
        entry = {
            "kind": kind,
            "env": env,
            "interpreter": interpreter,
            "name": kernel_name(kind, where),
            "display_name": display_name(kind, where, info),
        }
        entry.update(info)
        entry["fix"] = None if info["ipykernel"] else add_ipykernel(layout, kind, env, interpreter)
        out.append(entry)
    return out


def kernel_name(kind: str, where: str) -> str:
    if kind == "padlab":
        return PREFIX + os.path.basename(where)
    slug = re.sub(r"[^a-z0-9]+", "-", where.lower()).strip("-")
    return (PREFIX + kind + "-" + slug)[:64]


def display_name(kind: str, where: str, info: dict) -> str:
    """What the kernel is, at a glance: "PyTorch 2.6 · /opt/pytorch"."""
    if info.get("torch"):
        what = "PyTorch " + _short(info["torch"])
    elif info.get("tensorflow"):
        what = "TensorFlow " + _short(info["tensorflow"])
    else:
        what = "Python " + _short(info["python"])
    if kind == "padlab":
        return "%s · %s (padlab)" % (what, os.path.basename(where))
    return "%s · %s" % (what, where)


def _short(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


def add_ipykernel(layout: Layout, kind: str, env: str | None, interpreter: str) -> str:
    """The one command that makes a vendor environment a kernel; padlab never runs it itself."""
    if kind == "conda":
        return "conda install -p %s ipykernel" % env
    if kind == "system" and interpreter.startswith("/usr/bin/"):
        return "sudo apt-get install python3-ipykernel"
    if kind == "system":
        return "sudo -u %s %s -m pip install --user ipykernel" % (layout.user, interpreter)
    owner = pwd.getpwuid(os.stat(env).st_uid).pw_name if env else layout.user
    sudo = "" if owner == layout.user else "sudo "
    return "%s%s -m pip install ipykernel" % (sudo, interpreter)


def default_kernel(envs: list) -> str | None:
    """New notebooks open in the image's own GPU stack when there is one (torch first, then TensorFlow).

    Only the image's environments count: a kernel built on demand is picked by hand, so
    building one never changes the default (that would need a Jupyter restart).
    """
    for want in ("torch", "tensorflow"):
        for e in envs:
            if e["kind"] in ("venv", "conda", "system") and e.get(want) and e.get("ipykernel"):
                return e["name"]
    return None


# -- registration --------------------------------------------------------------------------


def kernelspec(entry: dict) -> dict:
    return {
        "argv": [entry["interpreter"], "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": entry["display_name"],
        "language": "python",
        "metadata": {
            "padlab": {k: entry[k] for k in ("kind", "env", "interpreter", "python", "torch", "tensorflow")}
        },
    }


def register(host: Host, layout: Layout, envs: list) -> bool:
    """Write a kernelspec per environment with ipykernel; remove ours whose environment is gone.

    All of it as the Jupyter user, whose venv this is: root never lists nor removes what
    that user could have swapped for a link (to /etc/systemd/system, say).
    """
    base = kernels_dir(layout)
    ops = [{"op": "mkdir", "path": base, "mode": 0o755}]
    wanted = []
    for e in envs:
        if not e["ipykernel"]:
            continue
        wanted.append(e["name"])
        directory = os.path.join(base, e["name"])
        text = json.dumps(kernelspec(e), indent=1, sort_keys=True) + "\n"
        ops.append({"op": "mkdir", "path": directory, "mode": 0o755})
        ops.append(
            {
                "op": "write",
                "path": os.path.join(directory, "kernel.json"),
                "data": text.encode(),
                "mode": 0o644,
            }
        )
    ops.append({"op": "prune", "path": base, "prefix": PREFIX, "keep": wanted})
    return host.user_ops(layout.user, ops)


def ensure(host: Host, layout: Layout, spec: dict, report: Report, envs: list | None = None) -> str | None:
    """Build the declared kernels, then register every environment; returns the default kernel name.

    envs: what discover() found already (`up` looks while Jupyter's venv installs; the kernelspecs
    go into that venv, so they are written only here, once it exists)."""
    for name, want in sorted((spec.get("declared") or {}).items()):
        build(host, layout, name, want, report)
    if envs is None:
        report.stage("looking for the box's Python environments")
        envs = discover(layout)
    changed = register(host, layout, envs)
    kernels = [e for e in envs if e["ipykernel"]]
    report.step("kernels", changed, ", ".join(e["display_name"] for e in kernels) or "padlab's Python only")
    for e in envs:
        if e["fix"] and (e["torch"] or e["tensorflow"]):
            report.warn(
                "%s has %s but no ipykernel, so it is not a kernel; to add it: %s"
                % (e["env"] or e["interpreter"], "PyTorch" if e["torch"] else "TensorFlow", e["fix"])
            )
    report.data["kernels"] = [public(e) for e in envs]
    return default_kernel(envs)


def public(entry: dict) -> dict:
    keys = (
        "name",
        "display_name",
        "kind",
        "interpreter",
        "python",
        "torch",
        "tensorflow",
        "ipykernel",
        "fix",
    )
    return {k: entry.get(k) for k in keys}


# -- kernels on demand ----------------------------------------------------------------------


def build(host: Host, layout: Layout, name: str, want: dict, report: Report) -> bool:
    """A uv venv under padlab's prefix with ipykernel and the asked-for packages; same request, no work."""
    if not KERNEL_NAME_RE.fullmatch(name):
        raise BoxError("invalid kernel name %r" % name, "use lowercase letters, digits, - and _ (at most 40)")
    env = os.path.join(envs_dir(layout), name)
    python = os.path.join(env, "bin", "python")
    stamp = os.path.join(env, ".padlab-kernel")
    digest = sha256(json.dumps(want, sort_keys=True))
    current = host.read(stamp)
    if current is not None and current.decode().strip() == digest and os.access(python, os.X_OK):
        report.step("kernel-" + name, False, env)
        return False
    run_as = as_user(layout.user)
    for d in (envs_dir(layout), uv_cache(layout)):
        host.makedirs(d, owner=layout.user, root=layout.system)
    uv = shutil.which("uv") or venv.uv_in_venv(layout.venv, run_as)
    if not uv:
        raise BoxError("uv is not available on the box to build kernel %s" % name, "run `padlab up` first")
    uv_env = [
        "env",
        "UV_NATIVE_TLS=1",
        "UV_SYSTEM_CERTS=1",
        "UV_CACHE_DIR=" + uv_cache(layout),
        "UV_PYTHON_PREFERENCE=system",
    ]
    python_want = want.get("python")
    if os.access(python, os.X_OK) and python_want and not _same_python(env, python_want):
        host.user_ops(layout.user, [{"op": "rm", "path": env}])
    if not os.access(python, os.X_OK):
        report.stage("kernel %s: creating its Python %s environment" % (name, python_want or "(the box's)"))
        argv = [uv, "venv", "--quiet", env]
        if python_want:
            argv += ["--python", python_want]
        _stream(run_as + uv_env + argv, name, report)
    packages = [IPYKERNEL] + list(want.get("packages") or [])
    # uv leaves bytecode to the first import, so a new kernel's first start would compile
    # IPython and its kin while the notebook waits (3x slower here); compile it now instead.
    argv = [uv, "pip", "install", "--compile-bytecode", "--python", python] + packages
    if want.get("requirements"):
        req_file = os.path.join(env, "padlab-requirements.txt")
        host.write(req_file, want["requirements"], owner=layout.user, root=layout.system)
        argv += ["-r", req_file]
    if want.get("torch_backend"):
        argv += ["--torch-backend", want["torch_backend"]]
    report.stage("kernel %s: installing %s" % (name, " ".join(packages[1:]) or "ipykernel"))
    _stream(run_as + uv_env + argv, name, report)
    host.write(stamp, digest + "\n", owner=layout.user, root=layout.system)
    report.step("kernel-" + name, True, "built %s with uv" % env)
    return True


def _same_python(env: str, want: str) -> bool:
    """Whether the venv's Python is the wanted X.Y, read from its pyvenv.cfg, never by running it.

    The Jupyter user owns the venv (uv builds it as them), so its bin/python is theirs to
    replace: running it here would run their code as root. Unreadable counts as different.
    """
    from ..service import read_small

    raw = read_small(os.path.join(env, "pyvenv.cfg"), limit=4096) or b""
    for line in raw.decode(errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            return value.strip().split(".")[:2] == want.split(".")[:2]
    return False


def _stream(argv: list, name: str, report: Report) -> None:
    """Run uv and pass each line of its progress on to the client as a stage event."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.strip()
        if line:
            tail = (tail + [line])[-3:]
            report.stage("kernel %s: %s" % (name, line))
    if proc.wait() != 0:
        raise BoxError(
            "building kernel %s failed: %s" % (name, " | ".join(tail)),
            "check the package names and that the box reaches the package index, then run it again",
        )


def cuda(layout: Layout, interpreter: str) -> dict:
    """torch.cuda as a kernel in that environment sees it (importing torch takes seconds)."""
    try:
        proc = subprocess.run(
            as_user(layout.user) + [interpreter, "-c", CUDA_PROBE],
            capture_output=True,
            text=True,
            timeout=CUDA_TIMEOUT,
        )
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return {"cuda": None, "device": None}
