from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from padlab import transport
from padlab.errors import PadlabError


def test_program_is_a_reproducible_zip_of_the_box_package():
    data = transport.program()
    transport.program.cache_clear()
    assert transport.program() == data
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "padlab_box/__main__.py" in names and "padlab_box/setup/bootstrap.py" in names
    assert "padlab_box/jupyter-lock.txt" in names  # the box installs Jupyter from it (box/venv.py)
    # Every subpackage ships, as a package: zipimport needs each __init__.py.
    packages = {p.parent.name for p in Path(transport.__file__).with_name("box").glob("*/__init__.py")}
    assert packages and all(f"padlab_box/{p}/__init__.py" in names for p in packages)
    assert not [n for n in names if "__pycache__" in n]


def test_box_package_uses_only_the_standard_library():
    """The box program must run on a bare Python 3.8+: no third-party imports (keygen runs in the venv)."""
    import ast
    import sys

    from padlab.box import VENV_MODULES

    allowed = set(sys.stdlib_module_names)
    in_venv = {"padlab_box." + m for m in VENV_MODULES}
    for name in zipfile.ZipFile(io.BytesIO(transport.program())).namelist():
        module = name[:-3].replace("/", ".").removesuffix(".__init__")
        if not name.endswith(".py") or module in in_venv:
            continue  # data (the locks), or code that runs in Jupyter's venv or root's ACME venv
        package = module if name.endswith("__init__.py") else module.rpartition(".")[0]
        tree = ast.parse(zipfile.ZipFile(io.BytesIO(transport.program())).read(name))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level >= 1:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base += "." + node.module if node.module else ""
                relative = {base} | {f"{base}.{a.name}" for a in node.names}
                assert not relative & in_venv, (name, sorted(relative & in_venv))
                continue
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                mods = [node.module or ""]
            else:
                continue
            for mod in mods:
                assert mod.split(".")[0] in allowed | {"__future__"}, (name, mod)


def test_box_errors_become_padlab_errors_with_code():
    with pytest.raises(transport.BoxFailure) as info:
        transport.parse_report(b'{"ok": false, "error": "no", "fix": "do this", "code": "x"}\n', 1, [], "box")
    assert str(info.value) == "no; do this" and info.value.code == "x"


def test_crash_without_report_is_one_clear_error():
    with pytest.raises(PadlabError, match="failed: Boom"):
        transport.parse_report(b"", 1, ["Traceback ...", "Boom"], "box")


def test_local_transport_runs_a_status_request(home):
    report = transport.LocalTransport().call(
        {
            "action": "status",
            "name": "t",
            "prefix": str(home / "box"),
            "etc": str(home / "box/etc"),
            "system": False,
        }
    )
    assert report["ok"] and report["service"]["running"] is False and report["password_set"] is False


# A stand-in for the box program: it starts a long child (as the real one starts venv and pip),
# records the child's pid, and waits for it.
BOX_WITH_CHILD = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(%r, "w").write(str(child.pid))
child.wait()
"""

CLIENT = """
import sys
from padlab import transport
try:
    transport.run_program([sys.executable, "-c", sys.argv[1]], {}, None, "test")
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_sigint_to_padlab_alone_ends_the_box_program_and_its_children(tmp_path):
    """kill -INT on padlab's pid (not the terminal's whole group) must not leave pip running."""
    import os
    import signal
    import subprocess
    import sys
    import time

    pidfile = tmp_path / "child.pid"
    client = subprocess.Popen([sys.executable, "-c", CLIENT, BOX_WITH_CHILD % str(pidfile)])
    deadline = time.monotonic() + 60
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline, "the stand-in box program did not start its child"
        time.sleep(0.1)
    child = int(pidfile.read_text())
    try:
        os.kill(client.pid, signal.SIGINT)
        assert client.wait(60) == 130
        deadline = time.monotonic() + 30
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the box program's child outlived padlab"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_local_box_lock_lives_under_padlab_home(home, tmp_path, monkeypatch):
    """The lock of a box in PADLAB_HOME is there too, not in ~/.cache (a second home to clean up)."""
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    box = home / "boxes" / "t"
    request = {"action": "logs", "name": "t", "prefix": str(box), "etc": str(box / "etc"), "system": False}
    transport.LocalTransport().call(dict(request, agent=True, lines=5))
    assert (box / "run" / "t.lock").is_file()
    assert not (tmp_path / "user-home" / ".cache" / "padlab").exists()


# A stand-in box program: a command it ran left a line without its newline on stderr, then it asks.
BOX_ASKING_AFTER_A_PARTIAL_LINE = """
import json, sys
sys.stdin.buffer.readline(); sys.stdin.buffer.readline()
sys.stderr.write("a command's progress, no newline ")
sys.stderr.write(json.dumps({"event": "ask", "ask": "sign", "csr": "x"}) + "\\n")
sys.stderr.flush()
answer = json.loads(sys.stdin.buffer.readline())
print(json.dumps({"ok": True, "answer": answer}))
"""


def test_a_question_after_a_partial_line_is_still_answered():
    """Otherwise the box waits for its answer, and `up` with it (until the box's own limit)."""
    import sys

    asked = []

    def on_event(event):
        asked.append(event)
        return {"cert_pem": "signed"}

    report = transport.run_program(
        [sys.executable, "-c", BOX_ASKING_AFTER_A_PARTIAL_LINE], {}, on_event, "test"
    )
    assert report["answer"] == {"cert_pem": "signed"} and asked[0]["ask"] == "sign"
