"""Check a workstation from the client's side, as the iPad would meet it, with a fix per failure."""

from __future__ import annotations

import socket
import ssl
from dataclasses import asdict, dataclass
from typing import Any

from padlab import tls

GPU_CODE = """
import shutil, subprocess
if shutil.which("nvidia-smi"):
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.strip()
    print(out or "nvidia-smi found no GPU")
else:
    print("no nvidia-smi on the box")
"""


CUDA_CODE = """
import torch
ok = torch.cuda.is_available()
print("available: " + torch.cuda.get_device_name(0) if ok else "not available", "(torch %s)" % torch.__version__)
"""


# How long code may run in a kernel before doctor reports it as not answering: each websocket's
# handshake and close have their own bounds in NotebookClient, so doctor always ends.
KERNEL_TIMEOUT = 60.0
CUDA_TIMEOUT = 300.0  # the first `import torch` with CUDA initialises the driver: minutes on a cold box


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped or information only
    detail: str
    fix: str = ""


def _trusted_by(host: str, port: int, extra_ca: str | None) -> tuple[str, str]:
    """(CA file, its name) that verifies the box: padlab's CA, else a private ACME server's
    roots (--acme-ca), else the system's (a public certificate); raises as the handshake does."""
    import ssl as ssl_mod

    candidates = [(str(tls.ca_cert_path()), "padlab's CA")] if tls.ca_cert_path().exists() else []
    if extra_ca:
        candidates.append((extra_ca, "the ACME server's roots (--acme-ca)"))
    system = ssl_mod.get_default_verify_paths().cafile
    if system:
        candidates.append((system, "the system's public roots: no profile needed"))
    last: Exception | None = None
    for path, name in candidates:
        ctx = ssl_mod.create_default_context(cafile=path)
        try:
            with socket.create_connection((host, port), timeout=5) as sock:
                sock.settimeout(5)
                with ctx.wrap_socket(sock, server_hostname=host):
                    return path, name
        except ssl_mod.SSLCertVerificationError as exc:
            last = exc
    raise last or ssl_mod.SSLError("no CA file to verify with")


def run(
    host: str, port: int, password: str | None, info_only_gpu: bool = True, extra_ca: str | None = None
) -> list[Check]:
    from padlab.notebook_api import NotebookClient

    checks: list[Check] = []
    try:
        with socket.create_connection((host, port), timeout=5):
            pass
        checks.append(Check("port open", True, f"{host}:{port} accepts connections"))
    except OSError as exc:
        checks.append(
            Check(
                "port open",
                False,
                f"{host}:{port}: {exc.strerror or exc}",
                "run `padlab up`; check the box's firewall",
            )
        )
        return checks
    try:
        ca_file, trusted = _trusted_by(host, port, extra_ca)
        checks.append(Check("TLS chain", True, f"certificate verifies against {trusted} for {host}"))
    except (ssl.SSLError, ssl.CertificateError, OSError) as exc:
        reason = getattr(exc, "verify_message", None) or str(exc)
        checks.append(
            Check("TLS chain", False, reason, "run `padlab up` to issue a certificate for this address")
        )
        return checks
    url = f"https://{host if ':' not in host else f'[{host}]'}:{port}"
    with NotebookClient(url, ca_file) as client:
        try:
            page = client.http.get("/login")
            ok = page.status_code == 200 and "password" in page.text.lower()
            checks.append(
                Check(
                    "login page",
                    ok,
                    f"HTTP {page.status_code}",
                    "" if ok else "see the box's Jupyter log: padlab logs",
                )
            )
        except Exception as exc:  # any transport failure is a finding, not a crash
            checks.append(Check("login page", False, str(exc), "see the box's Jupyter log: padlab logs"))
            return checks
        if password is None:
            checks.append(Check("password login", None, "skipped: pass --password-stdin to test it"))
            checks.append(Check("kernel runs code", None, "skipped: needs the password"))
            checks.append(Check("Jupyter stack", None, "skipped: needs the password"))
            checks.append(Check("GPU visible", None, "skipped: needs the password"))
            return checks
        if not client.login(password):
            checks.append(
                Check("password login", False, "Jupyter refused the password", "reset it: padlab passwd")
            )
            return checks
        checks.append(Check("password login", True, "logged in"))
        kernel = None
        try:
            kernel = client.start_kernel()
            # One websocket for the three runs (notebook_api.NotebookClient.kernel says why).
            with client.kernel(kernel, 3 * KERNEL_TIMEOUT) as running:
                result = running.execute("print(6 * 7)", timeout=KERNEL_TIMEOUT)
                ok = result.stdout.strip() == "42"
                checks.append(
                    Check(
                        "kernel runs code",
                        ok,
                        "print(6 * 7) -> %s" % (result.stdout.strip() or result.error),
                        "" if ok else "restart it: padlab up",
                    )
                )
                checks.append(stack_check(running))
                gpu = running.execute(GPU_CODE, timeout=KERNEL_TIMEOUT)
            checks.append(
                Check("GPU visible", None, "; ".join((gpu.stdout.strip() or gpu.error or "?").splitlines()))
            )
            checks += torch_kernels(client)
        except Exception as exc:  # a kernel failure is a finding to report
            checks.append(
                Check("kernel runs code", False, str(exc) or type(exc).__name__, "see the box's Jupyter log")
            )
        finally:
            if kernel:
                client.shutdown_kernel(kernel)
    return checks


def stack_check(kernel: Any) -> Check:
    """Jupyter's own versions against padlab's lock, read in its python3 kernel (Jupyter's venv)."""
    import json

    from padlab.box import venv

    locked = venv.pins(venv.lock_text())
    report = "print(json.dumps({'diff': out, 'have': {n: have.get(n) for n in HEADLINE}}))\n"
    code = (
        f"import json\nlocked = {json.dumps(locked)}\nHEADLINE = {venv.HEADLINE!r}\n{venv.CHECK_BODY}{report}"
    )
    result = kernel.execute(code, timeout=KERNEL_TIMEOUT)
    try:
        found = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return Check("Jupyter stack", None, f"could not read it: {result.error or result.stdout.strip()}")
    shown = ", ".join(f"{name} {found['have'].get(name) or '(none)'}" for name in venv.HEADLINE)
    if not found["diff"]:
        return Check("Jupyter stack", True, f"{shown} (padlab's lock)")
    moved = ", ".join(f"{name} {got or '(none)'}, lock {want}" for name, got, want in found["diff"][:5])
    more = f" and {len(found['diff']) - 5} more" if len(found["diff"]) > 5 else ""
    return Check(
        "Jupyter stack",
        False,
        f"{shown}; differs from padlab's lock: {moved}{more}",
        "run `padlab up` to bring it to the lock",
    )


def torch_kernels(client: Any) -> list[Check]:
    """For each kernel whose environment has torch (padlab's kernelspec metadata): CUDA, as a notebook sees it."""
    checks = []
    specs = client.api("GET", "/kernelspecs").json().get("kernelspecs", {})
    for name, spec in sorted(specs.items()):
        body = spec.get("spec") or {}
        if not ((body.get("metadata") or {}).get("padlab") or {}).get("torch"):
            continue
        label = f"CUDA in {body.get('display_name', name)}"
        kernel = None
        try:
            kernel = client.start_kernel(name)
            result = client.execute(kernel, CUDA_CODE, timeout=CUDA_TIMEOUT)
            if result.error:
                checks.append(Check(label, False, result.error, f"see `padlab kernels` for kernel {name}"))
            else:
                checks.append(Check(label, None, result.stdout.strip()))
        except Exception as exc:  # a kernel that does not start is a finding to report
            checks.append(Check(label, False, str(exc) or type(exc).__name__, "see the box's Jupyter log"))
        finally:
            if kernel:
                client.shutdown_kernel(kernel)
    return checks


def as_json(checks: list[Check]) -> dict[str, Any]:
    return {"ok": all(c.ok is not False for c in checks), "checks": [asdict(c) for c in checks]}
