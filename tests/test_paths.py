"""Where padlab keeps its files: private from PADLAB_HOME down."""

from __future__ import annotations

import stat
from pathlib import Path

from padlab import paths


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_padlab_home_and_every_folder_down_to_a_private_one_are_0700(home: Path) -> None:
    (home.parent).chmod(0o755)
    paths.ensure_private_dir(home / "boxes" / "lab")
    assert [mode(p) for p in (home, home / "boxes", home / "boxes" / "lab")] == [0o700] * 3
    assert mode(home.parent) == 0o755, "nothing above PADLAB_HOME is padlab's to change"
    (home / "boxes").chmod(0o755)
    paths.ensure_private_dir(home / "boxes" / "lab")
    assert mode(home / "boxes") == 0o700, "an existing folder is made private again"
