"""The image's GPU stack as kernels, on a real Debian box laid out like the GPU images.

One testbed machine carries the three layouts padlab must find, each with
ipykernel and a stand-in `torch` (a tiny installed distribution with
``__version__`` and ``cuda.is_available()``) of its own version:

- Paperspace ML-in-a-Box: the system interpreter with torch in the Jupyter user's ~/.local;
- AWS Deep Learning AMI: a venv at /opt/pytorch;
- conda: an env under ~/miniconda3/envs;

plus a vendor venv with torch but no ipykernel, which padlab must list with the
command that adds it and leave alone. After `up`, code runs in each through
/api/kernelspecs and imports that environment's torch; the vendor files are unchanged.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator

import pytest

from padlab.notebook_api import NotebookClient
from tests.helpers import PASSWORD, padlab, padlab_json

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(900)]

USER_SITE = "/home/padlab/.local/lib/python3.11/site-packages"
LAYOUTS = {  # site-packages -> the stand-in torch version it holds
    USER_SITE: "2.1.1",
    "/opt/pytorch/lib/python3.11/site-packages": "2.6.0",
    "/home/padlab/miniconda3/envs/fastai/lib/python3.11/site-packages": "2.3.0",
}
NO_IPYKERNEL = "/opt/vendor"
VENDOR_DIRS = "/home/padlab/.local /opt/pytorch /home/padlab/miniconda3 /opt/vendor"

SETUP = textwrap.dedent(
    """\
    set -e
    standin() {  # a stand-in torch distribution: what importlib.metadata and `import torch` see
      mkdir -p "$1/torch" "$1/torch-$2.dist-info"
      printf '__version__ = "%s"\\nfrom . import cuda\\n' "$2" > "$1/torch/__init__.py"
      printf 'def is_available():\\n    return False\\n' > "$1/torch/cuda.py"
      printf 'Metadata-Version: 2.1\\nName: torch\\nVersion: %s\\n' "$2" > "$1/torch-$2.dist-info/METADATA"
      : > "$1/torch-$2.dist-info/RECORD"
    }
    python3 -m venv /tmp/tools && /tmp/tools/bin/pip -q download -d /tmp/wheels ipykernel
    # Paperspace: pip --user as the Jupyter user, into ~/.local.
    runuser -u padlab -- /tmp/tools/bin/pip -q install --no-index -f /tmp/wheels --target {user_site} ipykernel
    runuser -u padlab -- bash -c "$(declare -f standin); standin {user_site} 2.1.1"
    # AWS DLAMI: a root-owned venv under /opt.
    python3 -m venv /opt/pytorch && /opt/pytorch/bin/pip -q install --no-index -f /tmp/wheels ipykernel
    standin /opt/pytorch/lib/python3.11/site-packages 2.6.0
    # conda: an env (conda-meta marks it) in ~/miniconda3/envs.
    runuser -u padlab -- python3 -m venv /home/padlab/miniconda3/envs/fastai
    runuser -u padlab -- mkdir -p /home/padlab/miniconda3/envs/fastai/conda-meta /home/padlab/miniconda3/conda-meta
    runuser -u padlab -- /home/padlab/miniconda3/envs/fastai/bin/pip -q install --no-index -f /tmp/wheels ipykernel
    runuser -u padlab -- bash -c "$(declare -f standin); standin /home/padlab/miniconda3/envs/fastai/lib/python3.11/site-packages 2.3.0"
    # A vendor env with torch and no ipykernel.
    python3 -m venv /opt/vendor && standin /opt/vendor/lib/python3.11/site-packages 1.13.1
    """
).replace("{user_site}", USER_SITE)

# Bytecode caches are the interpreter's own writes, not padlab's.
HASH = f"find {VENDOR_DIRS} -type f -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum"


@pytest.fixture(scope="module")
def box(testbed, tmp_path_factory) -> Iterator[dict]:
    machine = testbed.machine(f"kern{os.getpid() % 100000}")
    machine.exec(["bash", "-c", SETUP], timeout=900)
    before = machine.exec(["bash", "-c", HASH]).stdout
    home = tmp_path_factory.mktemp("kernels") / "home"
    padlab(home, "init", "box", "--provider", "ssh", "--host", f"{machine.user}@{machine.ip}",
           "--identity", str(machine.identity))  # fmt: skip
    card = padlab_json(home, "up", "box", "--password-stdin", input=PASSWORD + "\n")
    yield {"machine": machine, "home": home, "card": card, "vendor_hash": before}
    machine.destroy()


def specs(box: dict) -> dict:
    with NotebookClient(box["card"]["url"], box["card"]["ca_cert"]) as client:
        assert client.login(PASSWORD)
        return client.api("GET", "/kernelspecs").json()


def run(box: dict, name: str, code: str) -> str:
    with NotebookClient(box["card"]["url"], box["card"]["ca_cert"]) as client:
        assert client.login(PASSWORD)
        kernel = client.start_kernel(name)
        try:
            result = client.execute(kernel, code, timeout=120)
        finally:
            client.shutdown_kernel(kernel)
    assert result.error is None, result.error
    return result.stdout.strip()


def test_each_image_layout_is_a_kernel_that_imports_its_own_torch(box):
    found = specs(box)
    by_version = {}
    for name, spec in found["kernelspecs"].items():
        meta = spec["spec"].get("metadata", {}).get("padlab") or {}
        if meta.get("torch"):
            assert spec["spec"]["argv"][0].startswith("/"), spec  # absolute interpreter path
            by_version[meta["torch"]] = (name, spec["spec"])
    assert sorted(by_version) == sorted(LAYOUTS.values()), found
    for site, version in LAYOUTS.items():
        name, spec = by_version[version]
        out = run(
            box, name, "import torch; print(torch.__version__, torch.__file__, torch.cuda.is_available())"
        )
        assert out == f"{version} {site}/torch/__init__.py False"
    assert by_version["2.6.0"][1]["display_name"] == "PyTorch 2.6 · /opt/pytorch"
    assert by_version["2.1.1"][1]["display_name"] == "PyTorch 2.1 · /usr/bin/python3"
    # New notebooks open in the image's stack, not padlab's bare Python.
    assert found["default"] in {n for n, _ in by_version.values()}


def test_vendor_env_without_ipykernel_is_listed_with_its_fix_and_untouched(box):
    assert any(f"{NO_IPYKERNEL} has PyTorch but no ipykernel" in w for w in box["card"]["warnings"])
    listed = padlab_json(box["home"], "kernels", "box")
    vendor = next(k for k in listed["kernels"] if k["interpreter"] == f"{NO_IPYKERNEL}/bin/python")
    assert (
        vendor["ipykernel"] is None
        and vendor["fix"] == f"sudo {NO_IPYKERNEL}/bin/python -m pip install ipykernel"
    )
    torch_kernels = [k for k in listed["kernels"] if k["torch"] and k["ipykernel"]]
    assert len(torch_kernels) == 3 and all(k["cuda"] is False for k in torch_kernels)
    assert listed["default"] in {k["name"] for k in torch_kernels}
    again = padlab_json(box["home"], "up", "box", "--check")
    assert {s["name"]: s["changed"] for s in again["steps"]}["kernels"] is False
    assert box["machine"].exec(["bash", "-c", HASH]).stdout == box["vendor_hash"]


def test_doctor_reports_cuda_for_each_torch_kernel(box):
    proc = padlab(
        box["home"], "doctor", "box", "--json", "--password-stdin", input=PASSWORD + "\n", check=False
    )
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    cuda = {k: c for k, c in checks.items() if k.startswith("CUDA in ")}
    assert set(cuda) >= {"CUDA in PyTorch 2.6 · /opt/pytorch", "CUDA in PyTorch 2.1 · /usr/bin/python3"}
    assert all(c["detail"].startswith("not available (torch ") for c in cuda.values()), cuda
