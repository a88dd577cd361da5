"""padlab's locks (box/jupyter-lock.txt, box/acme-lock.txt): what they pin, and boxes whose
Jupyter ends on its lock exactly, fresh or with a stack that moved (docs/jupyter-stack.md).
tests/test_acme_testbed.py checks the ACME client's venv against its lock."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PASSWORD, padlab, padlab_json

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "src" / "padlab" / "box" / "jupyter-lock.txt"
STACK_IN = ROOT / "scripts" / "jupyter-stack.in"
ACME_LOCK = ROOT / "src" / "padlab" / "box" / "acme-lock.txt"
ACME_IN = ROOT / "scripts" / "acme-client.in"
LOCKS = [(LOCK, STACK_IN), (ACME_LOCK, ACME_IN)]

# Run with a box's Jupyter interpreter, the lock on stdin: each locked package that applies to
# that interpreter, and what is installed there under its name ("" when nothing is).
COMPARE = r"""
import json, sys
from importlib import metadata
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
have = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
out = {}
for line in sys.stdin.read().splitlines():
    if line[:1].isalnum():
        req = Requirement(line.rstrip(" \\"))
        if req.marker is None or req.marker.evaluate():
            out[req.name] = [str(req.specifier)[2:], have.get(canonicalize_name(req.name), "")]
print(json.dumps(out))
"""


def entries(text: str) -> list[tuple[str, list[str]]]:
    """(requirement line, its --hash options) for each entry of a requirements file."""
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line[:1].isalnum():
            out.append((line.rstrip(" \\"), []))
        elif line.strip().startswith("--hash=") and out:
            out[-1][1].append(line.strip().rstrip(" \\"))
    return out


def compare(python: list[str]) -> dict[str, list[str]]:
    """{package: [locked, installed]} in the environment of `python` (an argv prefix)."""
    proc = subprocess.run(
        [*python, "-c", COMPARE], input=LOCK.read_text(), capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout)


def exact_pins(lock: Path) -> dict[str, str]:
    """{package: version} of a lock whose every entry is an exact pin with sha256 hashes."""
    versions = {}
    for line, hashes in entries(lock.read_text()):
        match = re.fullmatch(r"([a-z0-9-]+)==([0-9][0-9a-z.+]*)( ; .+)?", line)
        assert match, f"not an exact pin: {line!r}"
        assert hashes and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes), line
        versions[match[1]] = match[2]
    return versions


def off_lock(found: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: pair for name, pair in found.items() if pair[0] != pair[1]}


@pytest.mark.parametrize(("lock", "source"), LOCKS, ids=["jupyter", "acme"])
def test_lock_pins_every_entry_exactly_with_hashes_and_covers_its_source(lock: Path, source: Path) -> None:
    versions = exact_pins(lock)
    wanted = {
        re.split(r"[<>=!~ ;\[]", line, maxsplit=1)[0].lower()
        for line in source.read_text().splitlines()
        if line[:1].isalnum()
    }
    assert wanted <= set(versions), f"scripts/lock-box was not run after {source.name} changed"


def test_jupyter_lock_pins_jupyterlab_4_5() -> None:
    versions = exact_pins(LOCK)
    assert len(versions) > 50, "the lock holds everything Jupyter pulls in, not only the top"
    # 4.6.0 to 4.6.6 ignore a tap on a menu item (jupyterlab/jupyterlab#19124; tests/test_touch.py).
    assert versions["jupyterlab"].startswith("4.5.")
    assert {"nbclassic", "jupyter-server", "ipykernel", "cryptography"} <= set(versions)
    # Notebook 7 would move the classic UI Juno Connect drives off the server's root (box/venv.py).
    assert "notebook" not in versions


def test_jupyter_lock_pins_an_ipykernel_that_reads_every_request() -> None:
    """ipykernel 7.0 to 7.3 can leave a new connection's first request unread, so a first cell never
    runs (ipython/ipykernel#1554; benchmarks/kernel_hang.py); 7.4, which has the fix, needs Python 3.11."""
    major, minor = (int(part) for part in exact_pins(LOCK)["ipykernel"].split(".")[:2])
    assert major == 6 or (major, minor) >= (7, 4)


def test_jupyter_lock_leaves_out_rfc3987_syntax() -> None:
    """Its import builds Lark parsers, ~0.9 s of every Jupyter start (jupyter-server/jupyter_server#1559),
    for jsonschema's "iri" format, which no Jupyter schema uses: scripts/lock-box leaves it and lark out."""
    versions = exact_pins(LOCK)
    assert "rfc3987-syntax" not in versions and "lark" not in versions
    assert "jsonschema" in versions and "jupyter-events" in versions


def test_acme_lock_pins_an_acme_with_ip_identifiers_and_profiles() -> None:
    versions = exact_pins(ACME_LOCK)
    # IP identifiers and new_order(..., profile=...): certbot's acme 4.1 (box/setup/acme_client.py).
    assert (4, 1) <= tuple(int(part) for part in versions["acme"].split(".")[:2]) < (6, 0)
    # box/venv.py compares the venv with its lock through the venv's own Python and packaging.
    assert {"josepy", "cryptography", "requests", "packaging"} <= set(versions)


def test_uv_is_installed_from_the_lock_pin_and_its_hashes() -> None:
    """uv, which installs the rest, comes from the lock too: box/venv.py's pip install of it gets
    exactly the lock's `uv==` requirement with its hashes, nothing newer."""
    from padlab.box import venv

    pinned = venv.uv_pins(venv.lock_text())
    assert pinned.splitlines()[0] == f"uv=={exact_pins(LOCK)['uv']} \\"
    hashes = [line.strip(" \\") for line in pinned.splitlines()[1:] if "--hash" in line]
    assert len(hashes) > 3 and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes)
    assert not any(line[:1].isalnum() for line in pinned.splitlines()[1:]), "one package only"


@pytest.mark.parametrize(("lock", "source"), LOCKS, ids=["jupyter", "acme"])
def test_lock_ships_in_the_box_program(lock: Path, source: Path) -> None:
    import io
    import zipfile

    from padlab import transport

    shipped = zipfile.ZipFile(io.BytesIO(transport.program())).read(f"padlab_box/{lock.name}")
    assert shipped == lock.read_bytes()


@pytest.fixture(scope="module")
def venv_python(workstation) -> list[str]:
    return [str(workstation["home"] / "boxes" / "ws" / "venv" / "bin" / "python")]


def doctor_stack(home: Path) -> dict:
    proc = padlab(home, "doctor", "--password-stdin", "--json", input=PASSWORD + "\n", check=False)
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    if "Jupyter stack" not in checks:  # it needs a kernel that ran code: say what the kernel did
        logs = sorted((home / "boxes").glob("*/log/jupyter-*.log"))
        tail = logs[0].read_text(errors="replace").splitlines()[-40:] if logs else ["(no Jupyter log)"]
        raise AssertionError(f"{checks.get('kernel runs code')}\nJupyter's log ends:\n" + "\n".join(tail))
    return checks["Jupyter stack"]


def test_fresh_box_runs_exactly_the_lock(workstation, venv_python) -> None:
    found = compare(venv_python)
    assert found["jupyterlab"][1].startswith("4.5.")
    assert off_lock(found) == {}
    stack = doctor_stack(workstation["home"])
    assert stack["ok"] is True
    assert stack["detail"].startswith(f"jupyterlab {found['jupyterlab'][0]}, nbclassic ")


def test_fresh_box_jupyter_starts_without_rfc3987_syntax(venv_python) -> None:
    """The lock installs with --no-deps: jsonschema's optional IRI checker stays out, and what Jupyter's
    server imports for its event schemas imports without it."""
    code = "import jupyter_events.validators, jupyter_server.serverapp; import rfc3987_syntax"
    proc = subprocess.run([*venv_python, "-c", code], capture_output=True, text=True)
    assert "No module named 'rfc3987_syntax'" in proc.stderr, proc.stderr[-500:]


def test_up_brings_a_moved_stack_back_to_the_lock_and_leaves_notebooks(workstation, venv_python) -> None:
    """A box an earlier padlab set up (JupyterLab 4.6.6, Notebook 7): the next up ends on the lock."""
    home = workstation["home"]
    mine = home.parent / "nb" / "mine.ipynb"
    mine.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n')
    before = mine.stat().st_mtime_ns
    uv = Path(sys.executable).with_name("uv")
    subprocess.run(
        [str(uv), "pip", "install", "--quiet", "--python", venv_python[0], "jupyterlab==4.6.6", "notebook"],
        check=True,
        capture_output=True,
    )
    locked = compare(venv_python)["jupyterlab"][0]
    assert off_lock(compare(venv_python))["jupyterlab"] == [locked, "4.6.6"]

    stack = doctor_stack(home)
    assert stack["ok"] is False and stack["fix"] == "run `padlab up` to bring it to the lock"
    assert f"jupyterlab 4.6.6, lock {locked}" in stack["detail"]

    report = padlab_json(home, "up")
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["python-env"]["changed"] is True
    assert f"jupyterlab 4.6.6 -> {locked}" in steps["python-env"]["detail"]
    assert steps["jupyter-running"]["detail"] == "restarted"  # on the stack it now has
    assert off_lock(compare(venv_python)) == {}
    notebook_7 = subprocess.run([*venv_python, "-c", "import notebook"], capture_output=True)
    assert notebook_7.returncode != 0, "Notebook 7 stayed: the classic UI is off the server's root"
    assert mine.stat().st_mtime_ns == before

    assert doctor_stack(home)["ok"] is True
    # Only the stack's step: other steps may change with this host's addresses (the TLS names).
    again = {s["name"]: s for s in padlab_json(home, "up")["steps"]}
    assert again["python-env"]["changed"] is False, again["python-env"]


def compare_on(machine) -> dict[str, list[str]]:
    """compare() on a testbed box, as its Jupyter user (root never runs what that user can write)."""
    proc = machine.exec(
        ["runuser", "-u", "padlab", "--", "/opt/padlab/venv/bin/python", "-c", COMPARE],
        input=LOCK.read_text(),
    )
    return json.loads(proc.stdout)


@pytest.mark.timeout(600)
def test_trixie_box_fresh_then_moved_ends_on_the_lock(make_machines, tmp_path) -> None:
    """Debian 13 (Python 3.13) over ssh: a bare box, then one whose stack an earlier padlab left newer."""
    from tests.test_ssh_provider import init

    (machine,) = make_machines(1, image="trixie")
    home = tmp_path / "home"
    init(home, "box", machine)
    padlab_json(home, "up", "box", "--password-stdin", input=PASSWORD + "\n")
    found = compare_on(machine)
    assert found["jupyterlab"][1].startswith("4.5.") and off_lock(found) == {}

    machine.exec(  # the venv has no pip (box/venv.py makes it without): the uv padlab put there
        "runuser -u padlab -- env UV_NATIVE_TLS=1 /opt/padlab/venv/bin/uv pip install --quiet "
        "--python /opt/padlab/venv/bin/python jupyterlab==4.6.6 notebook",
        timeout=300,
    )
    assert off_lock(compare_on(machine))["jupyterlab"][1] == "4.6.6"
    report = padlab_json(home, "up", "box")
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["python-env"]["changed"] is True and "jupyterlab 4.6.6 -> " in steps["python-env"]["detail"]
    assert off_lock(compare_on(machine)) == {}
