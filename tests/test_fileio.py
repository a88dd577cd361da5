"""Atomic writes: temp file, fsync, rename, then fsync of the directory that holds the name."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from padlab import fileio


def test_write_is_atomic_private_and_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[bool] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)) or real(fd))
    target = tmp_path / "a" / "file"
    fileio.write_atomic(target, "one")
    fileio.write_atomic(target, b"two", mode=0o640)
    assert target.read_bytes() == b"two" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert synced == [False, True, False, True], "the data, then the directory entry, each time"
    assert os.listdir(target.parent) == ["file"]
