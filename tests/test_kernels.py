"""Kernels on demand on a real local workstation: uv builds them, Jupyter runs them, the profile remembers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from padlab.notebook_api import NotebookClient
from tests.helpers import PASSWORD, free_port, one_line_error, padlab, padlab_json


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp("kern") / "padlab-home"
    port = free_port()
    padlab(
        home, "init", "k", "--provider", "local", "--port", str(port), "--root-dir", str(home.parent / "nb")
    )
    card = padlab_json(home, "up", "--password-stdin", input=PASSWORD + "\n")
    yield {"home": home, "port": port, "card": card, "box": home / "boxes" / "k"}
    padlab(home, "down", check=False)


def run_in(lab: dict, kernel_name: str, code: str) -> str:
    with NotebookClient(f"https://127.0.0.1:{lab['port']}", lab["card"]["ca_cert"]) as client:
        assert client.login(PASSWORD)
        kernel = client.start_kernel(kernel_name)
        try:
            result = client.execute(kernel, code)
        finally:
            client.shutdown_kernel(kernel)
    assert result.error is None, result.error
    return result.stdout.strip()


def test_create_builds_registers_streams_and_is_a_noop_again(lab):
    proc = padlab(lab["home"], "kernels", "create", "small", "--packages", "six")
    assert "kernel small:" in proc.stderr  # uv's progress, streamed from the box
    spec = json.loads((lab["box"] / "venv/share/jupyter/kernels/padlab-small/kernel.json").read_text())
    interpreter = spec["argv"][0]
    assert interpreter == str(lab["box"] / "kernels/small/bin/python")  # absolute: Jupyter keeps it
    # compiled at build, before any import: the first start does not compile IPython while Juno waits
    assert list((lab["box"] / "kernels/small/lib").glob("python3*/site-packages/ipykernel/__pycache__/*.pyc"))
    assert run_in(lab, "padlab-small", "import sys, six; print(sys.executable)") == interpreter
    again = padlab_json(lab["home"], "kernels", "create", "small", "--packages", "six")
    assert again["changed"] is False
    assert again["kernel"]["name"] == "padlab-small"
    listed = padlab_json(lab["home"], "kernels")
    names = {k["name"]: k for k in listed["kernels"]}
    assert names["padlab-small"]["interpreter"] == interpreter and names["padlab-small"]["ipykernel"]
    assert names["python3"]["kind"] == "jupyter"
    assert not names["padlab-small"]["ipykernel"].startswith(("7.0.", "7.1.", "7.2.", "7.3."))


def test_kernels_padlab_builds_leave_out_the_ipykernels_that_lose_a_request():
    """ipython/ipykernel#1554: 7.0 to 7.3 can leave a new connection's first request unread."""
    from packaging.specifiers import SpecifierSet

    from padlab.box.kernels.kernels import IPYKERNEL

    allowed = SpecifierSet(IPYKERNEL.removeprefix("ipykernel"))
    assert not any(allowed.contains(v) for v in ("7.0.0", "7.1.0", "7.2.0", "7.3.0"))
    assert allowed.contains("6.31.0") and allowed.contains("7.4.0")


def test_profile_remembers_kernels_and_up_builds_them_on_a_new_machine(lab):
    padlab(lab["home"], "kernels", "k", "create", "again", "--packages", "six")
    toml = (lab["home"] / "profiles" / "k.toml").read_text()
    assert "[kernels.again]" in toml
    # A re-created machine (a DigitalOcean droplet from `up` after `down`) has none of them.
    shutil.rmtree(lab["box"] / "kernels" / "again")
    shutil.rmtree(lab["box"] / "venv/share/jupyter/kernels/padlab-again")
    padlab(lab["home"], "init", "k", "--provider", "local", "--port", str(lab["port"]), "--root-dir",
           str(lab["home"].parent / "nb"), "--force")  # fmt: skip
    report = padlab_json(lab["home"], "up")
    assert {s["name"]: s["changed"] for s in report["steps"]}["kernel-again"] is True
    assert run_in(lab, "padlab-again", "import six; print(six.__name__)") == "six"


def test_bad_kernel_requests_are_one_line_errors(lab):
    line = one_line_error(
        padlab(lab["home"], "kernels", "create", "Bad Name", "--packages", "six", check=False)
    )
    assert "kernel name" in line
    line = one_line_error(padlab(lab["home"], "kernels", "create", "x", check=False))
    assert "--packages" in line
    line = one_line_error(
        padlab(
            lab["home"], "kernels", "create", "nope", "--packages", "no-such-package-padlab-xyz", check=False
        )
    )
    assert "building kernel nope failed" in line
    assert "nope" not in (lab["home"] / "profiles" / "k.toml").read_text()


def test_probe_is_plain_stdlib():
    """The probe runs in whatever interpreter an image has, and reports what importlib.metadata sees."""
    from padlab.box.kernels import kernels

    proc = subprocess.run([sys.executable, "-c", kernels.PROBE], capture_output=True, text=True, check=True)
    out = json.loads(proc.stdout)
    assert out["python"].startswith(f"{sys.version_info[0]}.{sys.version_info[1]}.")
    assert out["torch"] is None and out["ipykernel"] is None
    assert Path(out["prefix"]).is_dir()
