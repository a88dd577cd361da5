from __future__ import annotations

import multiprocessing
import os
import stat

import pytest

from padlab import state
from padlab.errors import PadlabError


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
