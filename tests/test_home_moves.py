"""home/moves.py: what a moved profile may make the receiving home trust."""

from __future__ import annotations

import subprocess
from pathlib import Path

from padlab.home.moves import _names_only

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOk0o1ZzK6wQ3xTq3C0cHq8Ugm8k8o4Fv5mJ4oW4Jmnb"


def test_a_bundle_brings_host_keys_only_for_its_own_profiles_alias(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"padlab-gpu {KEY}\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(known)], check=True, capture_output=True)
    hashed = known.read_text().splitlines()[0]
    assert hashed.startswith("|1|")
    assert _names_only(f"padlab-gpu {KEY}", "padlab-gpu") and _names_only(hashed, "padlab-gpu")
    for line in (
        hashed,  # hashed for gpu, offered as another profile's
        f"padlab-other {KEY}",
        f"padlab-gpu,github.com {KEY}",
        f"@cert-authority padlab-gpu {KEY}",
        f"padlab-gpu {KEY}\ngithub.com {KEY}",
        "padlab-gpu",
        None,
    ):
        assert not _names_only(line, "padlab-other" if line == hashed else "padlab-gpu"), line
