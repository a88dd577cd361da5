from __future__ import annotations

import json
import multiprocessing
import os
import stat

import pytest

from padlab import state
from padlab.errors import PadlabError
from tests.helpers import PASSWORD, free_port, one_line_error, padlab, padlab_json


def test_update_merges_and_is_private(home):
    state.update("a", phase="starting")
    state.update("a", host="198.18.0.2")
    data = state.load("a")
    assert data["phase"] == "starting" and data["host"] == "198.18.0.2"
    path = home / "state" / "a.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".a.json")], "no temp files left"


def _hold(home: str, ready, release) -> None:
    os.environ["PADLAB_HOME"] = home
    with state.locked("a"):
        ready.set()
        release.wait(30)


def test_lock_excludes_other_processes(home):
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold, args=(str(home), ready, release))
    proc.start()
    try:
        assert ready.wait(30)
        assert state.is_locked("a")
        with pytest.raises(PadlabError, match="another padlab command"), state.locked("a", timeout=0.2):
            pass
    finally:
        release.set()
        proc.join(30)
    assert not state.is_locked("a")
    with state.locked("a", timeout=1):
        pass


def test_unreadable_state_is_kept_and_raises_once(home):
    state.update("a", phase="running", password_hint="yours")
    path = home / "state" / "a.json"
    path.write_text('{"phase": "runn')
    with pytest.raises(state.Corrupt, match="a.json.corrupt"):
        state.load("a")
    assert (home / "state" / "a.json.corrupt").read_text() == '{"phase": "runn'
    assert state.load("a") == {}
    path.write_text("[1, 2]")
    assert "kept as" in state.recover("a")
    assert state.recover("a") is None


def _jupyter_pid(home) -> int | None:
    pidfile = next(home.glob("boxes/lab/run/jupyter-*.pid"), None)
    try:
        pid = int(pidfile.read_text()) if pidfile else 0
        return pid if b"jupyter" in open(f"/proc/{pid}/cmdline", "rb").read() else None
    except (OSError, ValueError):
        return None


def test_corrupt_files_never_hide_or_keep_up_a_running_jupyter(tmp_path):
    """A damaged state file: one line naming the kept copy, then `status` still sees Jupyter, and
    `up` with another password keeps the one in use and says so. A damaged profile: `down` still stops it."""
    home = tmp_path / "h"
    port = free_port()
    padlab(
        home, "init", "lab", "--provider", "local", "--port", str(port), "--root-dir", str(tmp_path / "nb")
    )
    padlab(home, "up", "--password-stdin", input=PASSWORD + "\n")
    config = home / "boxes" / "lab" / "etc" / "jupyter" / "jupyter_server_config.json"
    hashed = json.loads(config.read_text())["PasswordIdentityProvider"]["hashed_password"]
    try:
        (home / "state" / "lab.json").write_text("{not json")
        line = one_line_error(padlab(home, "status", check=False))
        assert "lab.json.corrupt" in line and "padlab status lab" in line
        assert (home / "state" / "lab.json.corrupt").read_text() == "{not json"
        assert padlab_json(home, "status")["state"] == "running"

        card = padlab_json(home, "up", "--password-stdin", input="a-different-long-password\n")
        assert card["password_kept"] is True
        assert any("already has a password" in w and "padlab passwd lab" in w for w in card["warnings"])
        assert json.loads(config.read_text())["PasswordIdentityProvider"]["hashed_password"] == hashed
        plain = padlab(home, "up", "--generate-password")
        assert "shown once" not in plain.stderr and "padlab passwd lab" in plain.stdout

        profile = home / "profiles" / "lab.toml"
        profile.write_text(profile.read_text().replace(f"port = {port}", 'port = "abc"'))
        (home / "state" / "lab.json").write_text("")
        assert _jupyter_pid(home) is not None
        proc = padlab(home, "down")
        assert "lab.toml.corrupt" in proc.stderr and "lab.json.corrupt" in proc.stderr
        assert _jupyter_pid(home) is None
    finally:
        padlab(home, "down", check=False)
