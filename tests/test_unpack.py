"""box/files/unpack.py: archives unpack into their folder and nowhere else."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from padlab.box.files import unpack


def make_tar(path: Path, members: list[tuple[str, str, str | bytes]], mode: str = "w:gz") -> Path:
    """members: (name, kind, content or link target); kind is file, dir, sym, hard or fifo."""
    with tarfile.open(path, mode) as tf:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = value.encode() if isinstance(value, str) else value
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "sym": tarfile.SYMTYPE,
                "hard": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[kind]
            info.linkname = str(value)
            tf.addfile(info)
    return path


def make_zip(path: Path, members: list[tuple[str, str]], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members:
            zf.writestr(name, text)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("suffix,mode", [(".tar.gz", "w:gz"), (".tgz", "w:gz"), (".tar.xz", "w:xz")])
def test_tar_unpacks_with_internal_links(tmp_path: Path, suffix: str, mode: str) -> None:
    into = tmp_path / "datasets"
    into.mkdir()
    archive = make_tar(
        tmp_path / f"a{suffix}",
        [
            ("mnist", "dir", ""),
            ("mnist/train.csv", "file", "1,2\n"),
            ("mnist/latest", "sym", "train.csv"),
            ("mnist/copy.csv", "hard", "mnist/train.csv"),
        ],
        mode,
    )
    assert unpack.extract(str(archive), str(into)) == ["mnist"]
    assert (into / "mnist/latest").read_text() == "1,2\n"
    assert (into / "mnist/copy.csv").read_text() == "1,2\n"
    assert tree(into) == ["mnist", "mnist/copy.csv", "mnist/latest", "mnist/train.csv"]


def test_zip_unpacks(tmp_path: Path) -> None:
    into = tmp_path / "d"
    into.mkdir()
    archive = make_zip(tmp_path / "a.zip", [("pets/a.txt", "a"), ("pets/b/c.txt", "c")])
    assert unpack.extract(str(archive), str(into)) == ["pets"]
    assert (into / "pets/b/c.txt").read_text() == "c"


UNSAFE_TARS = {
    "dotdot": [("../evil", "file", "x")],
    "absolute": [("/tmp/evil", "file", "x")],
    "symlink-out": [("link", "sym", "/etc")],
    "symlink-up": [("link", "sym", "../..")],
    # A link that stays inside by text but not once the first link is followed.
    "symlink-chain": [("a", "sym", "."), ("a/b", "sym", "..")],
    "through-link": [("dir", "sym", "/tmp"), ("dir/evil", "file", "x")],
    "hardlink-out": [("h", "hard", "/etc/passwd")],
    "fifo": [("pipe", "fifo", "")],
}


@pytest.mark.parametrize("case", sorted(UNSAFE_TARS))
def test_unsafe_tar_is_refused_and_leaves_nothing(tmp_path: Path, case: str) -> None:
    into = tmp_path / "datasets"
    into.mkdir()
    (into / "mine.txt").write_text("kept")
    archive = make_tar(tmp_path / "bad.tar.gz", [("ok.txt", "file", "fine"), *UNSAFE_TARS[case]])
    with pytest.raises(unpack.Unsafe):
        unpack.extract(str(archive), str(into))
    assert tree(into) == ["mine.txt"]
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize(
    "members,links",
    [([("../evil.txt", "x")], None), ([("/abs.txt", "x")], None), ([("ok.txt", "x")], {"l": "/etc/passwd"})],
    ids=["dotdot", "absolute", "symlink-out"],
)
def test_unsafe_zip_is_refused(tmp_path: Path, members, links) -> None:
    into = tmp_path / "d"
    into.mkdir()
    archive = make_zip(tmp_path / "bad.zip", members, links)
    with pytest.raises(unpack.Unsafe):
        unpack.extract(str(archive), str(into))
    assert tree(into) == []


def test_existing_entries_are_never_overwritten(tmp_path: Path) -> None:
    into = tmp_path / "d"
    into.mkdir()
    (into / "pets").mkdir()
    (into / "pets/a.txt").write_text("mine")
    archive = make_zip(tmp_path / "a.zip", [("pets/a.txt", "theirs")])
    with pytest.raises(unpack.Clash, match="pets"):
        unpack.extract(str(archive), str(into))
    assert (into / "pets/a.txt").read_text() == "mine"
    assert [p for p in os.listdir(into) if p.startswith(".padlab-unpack")] == []


def test_modes_lose_setuid_and_group_write(tmp_path: Path) -> None:
    into = tmp_path / "d"
    into.mkdir()
    path = tmp_path / "m.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("tool")
        info.mode = 0o6777
        info.size = 2
        tf.addfile(info, io.BytesIO(b"#!"))
    unpack.extract(str(path), str(into))
    assert stat.S_IMODE((into / "tool").stat().st_mode) & 0o7022 == 0
