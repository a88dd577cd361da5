"""Every command has a full --help with an example."""

from __future__ import annotations

import click
import pytest

from padlab.cli import cli
from tests.helpers import padlab


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out += all_commands(cmd, prefix + (name,))
        else:
            out.append(prefix + (name,))
    return out


@pytest.mark.parametrize("path", all_commands(cli), ids=lambda p: " ".join(p))
def test_help_has_an_example(path, tmp_path):
    proc = padlab(tmp_path, *path, "--help")
    assert "Example" in proc.stdout, proc.stdout
    assert f"padlab {' '.join(path)}" in proc.stdout


def test_top_level_help_and_version(tmp_path):
    assert "Quick start" in padlab(tmp_path, "--help").stdout
    assert padlab(tmp_path, "--version").stdout.startswith("padlab, version")


def test_help_imports_nothing_heavy():
    """--help and status stay instant: no SDKs, no rich, no cryptography at start-up."""
    import subprocess
    import sys

    code = (
        "import sys; from padlab.cli import cli\n"
        "heavy = [m for m in ('rich', 'cryptography', 'httpx', 'boto3', 'pydo', 'segno', 'zxcvbn') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
