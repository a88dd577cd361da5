"""`padlab panel install`'s systemd user unit, and its refusal before a password exists."""

from __future__ import annotations

from tests.helpers import one_line_error, padlab


def test_unit_runs_the_panel_as_the_user_and_keeps_started_jupyters_alive(home):
    from padlab.panel import service

    text = service.unit_text("0.0.0.0", 8443, ["gpu-home.lan"])
    assert "-m padlab panel --listen 0.0.0.0 --port 8443 --name gpu-home.lan" in text
    assert f"Environment=PADLAB_HOME={home}" in text
    assert "KillMode=process" in text and "NoNewPrivileges=yes" in text
    assert "WantedBy=default.target" in text and "User=" not in text


def test_install_before_any_password_says_how_to_set_one(home):
    line = one_line_error(padlab(home, "panel", "install", check=False))
    assert "padlab panel passwd" in line


def test_passwd_refuses_a_weak_password_and_keeps_nothing(home):
    line = one_line_error(padlab(home, "panel", "passwd", "--password-stdin", input="short\n", check=False))
    assert "too short" in line
    assert not (home / "panel" / "password.json").exists()
    padlab(home, "panel", "passwd", "--generate-password")
    assert (home / "panel" / "password.json").stat().st_mode & 0o777 == 0o600
