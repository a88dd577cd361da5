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
        "LAMBDA_API_KEY",
        "PADLAB_LAMBDA_API_URL",
        "RUNPOD_API_KEY",
        "PADLAB_RUNPOD_API_URL",
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


@pytest.fixture
def ssh_key(tmp_path: Path) -> Path:
    """An ed25519 key pair where padlab looks by default (~/.ssh, under the test's HOME)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    ssh = tmp_path / "user-home" / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    (ssh / "id_ed25519.pub").write_bytes(public + b" tester@padlab\n")
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    (ssh / "id_ed25519").write_bytes(private)
    (ssh / "id_ed25519").chmod(0o600)
    return ssh / "id_ed25519.pub"
