"""padlab.box.account: who Jupyter runs as, and a box whose Jupyter ran as root handed over."""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest

from padlab.box import account
from padlab.box.report import Report
from padlab.box.service import Layout
from padlab.box.system import Host


def test_root_on_a_system_box_means_padlabs_own_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert account.resolve(None, system=True) == account.JUPYTER_USER
    assert account.resolve("ubuntu", system=True) == "ubuntu"
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert account.resolve(None, system=True) == pwd.getpwuid(os.getuid()).pw_name


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand files to another user")
def test_a_box_whose_jupyter_ran_as_root_is_handed_to_jupyters_user(tmp_path: Path) -> None:
    layout = Layout("w", str(tmp_path / "opt"), str(tmp_path / "etc"), "nobody", True)
    old_notebooks, new_notebooks = tmp_path / "root-notebooks", tmp_path / "home" / "notebooks"
    os.makedirs(layout.jupyter_dir)
    os.makedirs(layout.run_dir)
    Path(layout.config).write_text(json.dumps({"ServerApp": {"root_dir": str(old_notebooks)}}))
    (old_notebooks / "work").mkdir(parents=True)
    (old_notebooks / "work" / "train.ipynb").write_text("{}")

    report = Report()
    account.adopt(Host(sudo=False), layout, str(new_notebooks), report)
    nobody = pwd.getpwnam("nobody").pw_uid
    assert (new_notebooks / "work" / "train.ipynb").read_text() == "{}" and not old_notebooks.exists()
    for path in (layout.config, layout.run_dir, new_notebooks / "work" / "train.ipynb"):
        assert os.stat(path).st_uid == nobody, path
    assert [s["name"] for s in report.as_dict()["steps"]] == ["jupyter-files"]

    again = Report()  # handed over once: the config is now the user's
    account.adopt(Host(sudo=False), layout, str(new_notebooks), again)
    assert again.as_dict()["steps"] == []
