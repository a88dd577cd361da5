"""Every bad input: non-zero exit, one line on stderr that says how to fix it, no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.helpers import PASSWORD, free_port, one_line_error, padlab


def init_local(home: Path, name: str = "lab", port: int | None = None) -> int:
    port = port or free_port()
    padlab(
        home, "init", name, "--provider", "local", "--port", str(port), "--root-dir", str(home.parent / "nb")
    )
    return port


def test_unknown_profile_lists_the_existing_ones(tmp_path):
    home = tmp_path / "h"
    init_local(home, "alpha")
    init_local(home, "beta")
    line = one_line_error(padlab(home, "status", "gamma", check=False))
    assert "no profile named 'gamma'" in line
    assert "alpha, beta" in line


def test_no_profile_at_all_says_how_to_create_one(tmp_path):
    line = one_line_error(padlab(tmp_path / "h", "status", check=False))
    assert "padlab init NAME --provider local" in line


def test_short_password_is_refused(tmp_path):
    home = tmp_path / "h"
    init_local(home)
    line = one_line_error(padlab(home, "up", "--password-stdin", input="short-pw\n", check=False))
    assert "too short" in line and "12" in line and "--generate-password" in line
    assert not (home / "boxes").exists(), "nothing is installed before the password is accepted"


def test_common_password_is_refused(tmp_path):
    home = tmp_path / "h"
    init_local(home)
    line = one_line_error(padlab(home, "up", "--password-stdin", input="password1234\n", check=False))
    assert "too weak" in line


def test_no_terminal_and_no_password_flag(tmp_path):
    home = tmp_path / "h"
    init_local(home)
    line = one_line_error(padlab(home, "up", input="", check=False))
    assert "--password-stdin" in line and "--generate-password" in line


def test_conflicting_password_flags(tmp_path):
    home = tmp_path / "h"
    init_local(home)
    line = one_line_error(padlab(home, "up", "--password-stdin", "--generate-password", check=False))
    assert "exclude each other" in line


def test_invalid_profile_name(tmp_path):
    line = one_line_error(padlab(tmp_path / "h", "init", "Bad_Name", "--provider", "local", check=False))
    assert "lowercase letters, digits and dashes" in line


def test_duplicate_profile_needs_force(tmp_path):
    home = tmp_path / "h"
    init_local(home)
    line = one_line_error(padlab(home, "init", "lab", "--provider", "local", check=False))
    assert "--force" in line


def test_port_out_of_range(tmp_path):
    line = one_line_error(
        padlab(tmp_path / "h", "init", "x", "--provider", "local", "--port", "80", check=False)
    )
    assert "1024 and 65535" in line


def test_port_in_use_names_the_holder(tmp_path):
    home = tmp_path / "h"
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        init_local(home, port=port)
        line = one_line_error(padlab(home, "up", "--password-stdin", input=PASSWORD + "\n", check=False))
    assert f"port {port} is already in use by pid" in line
    assert "--port" in line
    # Fixed and re-run, the same profile comes up.
    padlab(home, "init", "lab", "--provider", "local", "--port", str(free_port()), "--force")
    padlab(home, "up", "--password-stdin", input=PASSWORD + "\n")
    padlab(home, "down")


def test_missing_venv_module_names_the_apt_package(tmp_path):
    """The box's python lacks venv/ensurepip (as on a bare Debian): say which package to install."""
    home = tmp_path / "h"
    init_local(home)
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "ensurepip.py").write_text("raise ImportError('ensurepip is not available')\n")
    proc = padlab(home, "up", "--password-stdin", input=PASSWORD + "\n", check=False, PYTHONPATH=str(shadow))
    line = one_line_error(proc)
    assert "venv module is missing" in line and "apt-get install python3-venv" in line


def test_doctor_before_up(tmp_path):
    home = tmp_path / "h"
    init_local(home)
    line = one_line_error(padlab(home, "doctor", check=False))
    assert "padlab up lab" in line


def test_unknown_setting_in_profile_file(tmp_path):
    home = tmp_path / "h"
    init_local(home)
    with open(home / "profiles" / "lab.toml", "a") as fh:
        fh.write('colour = "blue"\n')
    line = one_line_error(padlab(home, "status", check=False))
    assert "unknown setting(s) colour" in line


def test_profile_names_must_match_whole_and_stay_short(tmp_path):
    home = tmp_path / "h"
    line = one_line_error(padlab(home, "init", "nl\n", "--provider", "local", check=False))
    assert "invalid profile name 'nl\\n'" in line
    long = "a" * 300
    for args in (("init", long, "--provider", "local"), ("status", long)):
        line = one_line_error(padlab(home, *args, check=False))
        assert "invalid profile name" in line and "300 characters" in line
    assert not (home / "profiles").exists() or not list((home / "profiles").iterdir())


@pytest.mark.parametrize("root_dir", ["", "../../etc", "notebooks", "~other/nb"])
def test_notebook_folder_must_be_absolute_or_under_home(tmp_path, root_dir):
    home = tmp_path / "h"
    proc = padlab(home, "init", "x", "--provider", "local", "--root-dir", root_dir, check=False)
    line = one_line_error(proc)
    assert "not an absolute path or under ~" in line and "--root-dir ~/notebooks" in line
    for good in ("~", "~/nb", "/srv/nb"):
        padlab(home, "init", "x", "--provider", "local", "--root-dir", good, "--force")


def test_mistyped_profile_setting_is_one_line_and_the_file_is_kept(tmp_path):
    home = tmp_path / "h"
    init_local(home)
    path = home / "profiles" / "lab.toml"
    text = path.read_text()
    path.write_text(text.replace("port = ", 'port = "abc"\nold_port = ', 1).replace("old_port = ", "# "))
    line = one_line_error(padlab(home, "status", check=False))
    assert "port = 'abc', which is not an int" in line and "lab.toml.corrupt" in line
    assert "padlab init lab" in line
    assert (home / "profiles" / "lab.toml.corrupt").read_text() == path.read_text()
    path.write_text('provider = "local"\nport = true\n')
    assert "port = True, which is not an int" in one_line_error(padlab(home, "status", check=False))
    path.write_text("port = [")
    line = one_line_error(padlab(home, "status", check=False))
    assert "is not valid TOML" in line and "lab.toml.corrupt" in line
