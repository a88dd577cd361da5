from __future__ import annotations

import io
import zipfile

import pytest

from padlab import transport
from padlab.errors import PadlabError


def test_program_is_a_reproducible_zip_of_the_box_package():
    data = transport.program()
    transport.program.cache_clear()
    assert transport.program() == data
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "padlab_box/__main__.py" in names and "padlab_box/bootstrap.py" in names


def test_box_package_uses_only_the_standard_library():
    """The box program must run on a bare Python 3.8+: no third-party imports (keygen runs in the venv)."""
    import ast
    import sys

    from padlab.box import VENV_MODULES

    allowed = set(sys.stdlib_module_names)
    for name in zipfile.ZipFile(io.BytesIO(transport.program())).namelist():
        if name.rsplit("/", 1)[-1][:-3] in VENV_MODULES:
            continue
        tree = ast.parse(zipfile.ZipFile(io.BytesIO(transport.program())).read(name))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 1:
                relative = [node.module] if node.module else [a.name for a in node.names]
                assert not set(relative) & set(VENV_MODULES), (name, relative)
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
