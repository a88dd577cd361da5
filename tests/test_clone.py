"""--clone: the course repository lands in the notebook folder at `up`, once, never over the user's work."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.helpers import PASSWORD, free_port, one_line_error, padlab, padlab_json


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def course_repo(path: Path) -> str:
    """A local git repository standing in for fastai/course22, reached over file:// (no internet)."""
    path.mkdir()
    git("init", "-q", "-b", "main", cwd=path)
    (path / "00-is-it-a-bird.ipynb").write_text(
        '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    )
    git("add", ".", cwd=path)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "lesson 0", cwd=path)
    return f"file://{path}"


def test_clone_at_up_only_if_missing_and_never_over_changes(tmp_path):
    home, nb = tmp_path / "home", tmp_path / "nb"
    url = course_repo(tmp_path / "course22")
    padlab(
        home,
        "init",
        "c",
        "--provider",
        "local",
        "--port",
        str(free_port()),
        "--root-dir",
        str(nb),
        "--clone",
        url,
    )
    try:
        first = padlab_json(home, "up", "--password-stdin", input=PASSWORD + "\n")
        steps = {s["name"]: s for s in first["steps"]}
        assert steps["clone"]["changed"] is True
        lesson = nb / "course22" / "00-is-it-a-bird.ipynb"
        assert lesson.is_file() and (nb / "course22" / ".git").is_dir()
        # The user works on the lesson; upstream moves on; `up` leaves the folder alone.
        lesson.write_text("my edits")
        (tmp_path / "course22" / "01-new.ipynb").write_text("{}")
        again = padlab_json(home, "up")
        assert {s["name"]: s["changed"] for s in again["steps"]}["clone"] is False
        assert lesson.read_text() == "my edits" and not (nb / "course22" / "01-new.ipynb").exists()
        assert not list(nb.glob(".*padlab-clone"))
    finally:
        padlab(home, "down", check=False)


def test_existing_folder_of_that_name_is_never_replaced(tmp_path):
    home, nb = tmp_path / "home", tmp_path / "nb"
    url = course_repo(tmp_path / "course22")
    (nb / "course22").mkdir(parents=True)
    (nb / "course22" / "mine.txt").write_text("keep me")
    padlab(
        home,
        "init",
        "c",
        "--provider",
        "local",
        "--port",
        str(free_port()),
        "--root-dir",
        str(nb),
        "--clone",
        url,
    )
    try:
        report = padlab_json(home, "up", "--password-stdin", input=PASSWORD + "\n")
        steps = {s["name"]: s["changed"] for s in report["steps"]}
        assert steps.get("clone") is False, report["steps"]
        assert sorted(p.name for p in (nb / "course22").iterdir()) == ["mine.txt"]
    finally:
        padlab(home, "down", check=False)


def test_clone_needs_a_git_url(tmp_path):
    proc = padlab(tmp_path / "h", "init", "c", "--provider", "local", "--clone", "course22", check=False)
    assert "--clone" in one_line_error(proc)
