"""Root on the box and the Jupyter user's trees (issue 16): root runs nothing the user owns and
follows no link the user planted. As root here, with `nobody` standing in for the Jupyter user."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from padlab.box import venv
from padlab.box.files import files, jobs
from padlab.box.kernels import kernels
from padlab.box.report import BoxError, Report
from padlab.box.service import Layout
from padlab.box.system import Host

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="root acting for another user needs root")

USER = "nobody"


@pytest.fixture
def trees(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """A folder the user owns, and a root-only canary folder a planted link may point at."""
    # The box runs the system's python3; this test's may live where `nobody` cannot reach.
    monkeypatch.setattr(sys, "executable", shutil.which("python3", path="/usr/bin:/bin") or sys.executable)
    base = Path(tempfile.mkdtemp(prefix="padlab-trees-"))
    base.chmod(0o755)
    nobody = pwd.getpwnam(USER)
    user = base / "user"
    user.mkdir()
    os.chown(user, nobody.pw_uid, nobody.pw_gid)
    canary = base / "canary"
    canary.mkdir(mode=0o755)
    (canary / "padlab-units.service").write_text("[Unit]\n")
    try:
        yield SimpleNamespace(base=base, user=user, canary=canary, uid=nobody.pw_uid, gid=nobody.pw_gid)
    finally:
        shutil.rmtree(base)


def as_user(trees: SimpleNamespace, path: Path, directory: bool = True) -> Path:
    """Make path (and its parents under the user's folder) as the user would."""
    if directory:
        path.mkdir(parents=True, exist_ok=True)
    part = path
    while part != trees.user:
        os.lchown(part, trees.uid, trees.gid)
        part = part.parent
    return path


def listing(directory: Path) -> dict:
    return {str(p.relative_to(directory)): p.stat().st_uid for p in sorted(directory.rglob("*"))}


def planted_python(trees: SimpleNamespace, bin_dir: Path, prints: str = "") -> Path:
    """A bin/python that notes who ran it, as a notebook could leave one."""
    marks = trees.base / "marks"
    marks.mkdir(mode=0o777, exist_ok=True)
    marks.chmod(0o777)
    as_user(trees, bin_dir)
    python = bin_dir / "python"
    python.write_text(f"#!/bin/sh\nid -u > {marks}/ran-$$\necho '{prints}'\n")
    python.chmod(0o755)
    os.lchown(python, trees.uid, trees.gid)
    return marks


def ran_as(marks: Path) -> set:
    return {p.read_text().strip() for p in marks.glob("ran-*")}


def test_the_kernel_python_version_is_read_not_run(trees: SimpleNamespace) -> None:
    """_same_python once ran kernels/NAME/bin/python as root to ask its version."""
    env = trees.user / "prefix" / "kernels" / "evil"
    marks = planted_python(trees, env / "bin", "3.11")
    (env / "pyvenv.cfg").write_text("home = /usr/bin\nimplementation = CPython\nversion_info = 3.11.4\n")
    assert kernels._same_python(str(env), "3.11")
    assert not kernels._same_python(str(env), "3.12")
    (env / "pyvenv.cfg").unlink()
    os.mkfifo(env / "pyvenv.cfg")  # planted: must not make the read wait
    assert not kernels._same_python(str(env), "3.11")
    assert ran_as(marks) == set()


def test_jupyters_venv_python_runs_as_its_owner_and_its_answer_is_checked(trees: SimpleNamespace) -> None:
    """purelib ran venv/bin/python as root, and root then wrote a module wherever it said."""
    env = trees.user / "prefix" / "venv"
    marks = planted_python(trees, env / "bin", str(trees.canary))
    with pytest.raises(BoxError, match="no site-packages folder inside it"):
        venv.purelib(str(env), USER)
    assert ran_as(marks) == {str(trees.uid)}


def test_kernelspecs_are_registered_as_the_user_never_through_a_planted_link(trees: SimpleNamespace) -> None:
    """The venv's kernels folder made a link to a root folder: root once removed padlab-* there."""
    prefix = as_user(trees, trees.user / "prefix")
    layout = Layout("box", str(prefix), str(trees.user / "etc"), USER, True)
    share = as_user(trees, Path(layout.venv) / "share" / "jupyter")
    before = listing(trees.canary)
    (share / "kernels").symlink_to(trees.canary)
    os.lchown(share / "kernels", trees.uid, trees.gid)
    entry = {"ipykernel": "6", "name": "padlab-x", "interpreter": "/usr/bin/python3", "display_name": "x"}
    entry.update(kind="system", env=None, python="3.11", torch=None, tensorflow=None)
    with pytest.raises(BoxError, match=f"as {USER}"):
        kernels.register(Host(sudo=True), layout, [entry])
    assert listing(trees.canary) == before
    # Without the link, the same call writes the kernelspec, the user's, and prunes only ours.
    (share / "kernels").unlink()
    as_user(trees, share / "kernels" / "padlab-gone")
    as_user(trees, share / "kernels" / "python3")
    assert kernels.register(Host(sudo=True), layout, [entry])
    spec = share / "kernels" / "padlab-x" / "kernel.json"
    assert json.loads(spec.read_text())["display_name"] == "x" and spec.stat().st_uid == trees.uid
    assert sorted(p.name for p in (share / "kernels").iterdir()) == ["padlab-x", "python3"]
    assert not kernels.register(Host(sudo=True), layout, [entry])  # nothing changed


def test_host_writes_in_the_users_tree_as_the_user(trees: SimpleNamespace) -> None:
    """Any Host.write for the user into a folder the user owns: a planted link leads nowhere root-only."""
    run = as_user(trees, trees.user / "prefix" / "run")
    run.rmdir()
    run.symlink_to(trees.canary)
    os.lchown(run, trees.uid, trees.gid)
    before = listing(trees.canary)
    with pytest.raises(BoxError):
        Host(sudo=True).write(str(run / "keep-until"), "0\n", owner=USER, root=True)
    assert listing(trees.canary) == before


def test_a_download_job_folder_planted_as_a_link_gets_nothing_from_root(
    trees: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job folder's name is predictable: root once wrote job.json, runner.pyz and a lock through it."""
    downloads = as_user(trees, trees.user / ".cache" / "padlab" / "downloads")
    monkeypatch.setattr(jobs, "jobs_dir", lambda prefix, user, system: str(downloads))
    url, root_dir = "http://127.0.0.1:9/data.bin", str(as_user(trees, trees.user / "notebooks"))
    dest = os.path.join(root_dir, "datasets", "data.bin")
    (downloads / jobs.job_id(url, dest)).symlink_to(trees.canary)
    before = listing(trees.canary)
    req = {"user": USER, "system": True, "prefix": str(trees.user), "root_dir": root_dir}
    req["get"] = {"url": url, "name": "data.bin", "to": "datasets"}
    ctx = SimpleNamespace(req=req, report=Report(), program=b"not a zip")
    with pytest.raises(BoxError, match="may not write") as err:
        files.get(ctx)  # type: ignore[arg-type]
    assert err.value.code == "bad_path"
    assert listing(trees.canary) == before
    made = trees.user / "notebooks" / "datasets"
    assert made.is_dir() and made.stat().st_uid == trees.uid  # made as the user, not chowned after
    assert os.geteuid() == 0 and os.getegid() == 0  # root's ids are back


def test_files_acting_gives_root_back(trees: SimpleNamespace) -> None:
    owner = files.Owner({"user": USER, "system": True})
    groups = os.getgroups()
    with owner.acting():
        assert os.geteuid() == trees.uid and os.getuid() == 0
        with owner.root():
            assert os.geteuid() == 0 and os.getgroups() == groups
        assert os.geteuid() == trees.uid
        path = trees.user / "x"
        owner.write(str(path), b"1")
    assert os.geteuid() == 0 and os.getegid() == 0 and os.getgroups() == groups
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_uid == trees.uid


def test_a_fifo_planted_where_root_reads_a_file_is_no_file_and_no_hang(tmp_path: Path) -> None:
    """`Host.read` (the Jupyter config, stamps, certificates) opens a FIFO without waiting for a writer."""
    import threading

    fifo = tmp_path / "jupyter_server_config.json"
    os.mkfifo(fifo)
    plain = tmp_path / "cert.pem"
    plain.write_bytes(b"pem")
    got: list = []
    reader = threading.Thread(target=lambda: got.append(Host(sudo=False).read(str(fifo))), daemon=True)
    reader.start()
    reader.join(30)
    if reader.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # free the stuck reader before failing
        pytest.fail("Host.read waited on a FIFO")
    assert got == [None]
    assert Host(sudo=False).read(str(plain)) == b"pem"
    assert Host(sudo=False).read(str(tmp_path / "missing")) is None
