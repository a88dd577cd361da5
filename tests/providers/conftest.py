"""Cloud provider tests: instant polling and retries, a private PADLAB_HOME, no real credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from padlab.providers import retry


@pytest.fixture(autouse=True)
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "POLL_FIRST", 0.02)
    monkeypatch.setattr(retry, "POLL_MAX", 0.05)
    monkeypatch.setattr(retry, "RETRY_FIRST", 0.01)
    monkeypatch.setattr(retry, "RETRY_MAX", 0.02)


@pytest.fixture(autouse=True)
def no_ambient_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the developer's own shell or ~/.aws may reach a test."""
    for name in (
        "PAPERSPACE_API_KEY",
        "DIGITALOCEAN_TOKEN",
        "PADLAB_PAPERSPACE_API_URL",
        "PADLAB_DIGITALOCEAN_API_URL",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user-home" / ".config"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
