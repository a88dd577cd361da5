"""padlab.ssh, padlab.sshconfig and the ssh flags of `init`, without a remote machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from padlab import ssh, sshconfig
from padlab.errors import PadlabError
from padlab.profiles import Profile
from padlab.providers.remote import check_cidr, configure
from tests.helpers import one_line_error, padlab


def opts(target: ssh.Target) -> dict[str, str]:
    argv = ssh.options(target, batch=True)
    return dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-o")


def test_options_pin_padlab_known_hosts_and_share_one_connection(home: Path) -> None:
    o = opts(ssh.Target("box.example", "me", 22, None))
    assert o["UserKnownHostsFile"] == f'"{home / "ssh" / "known_hosts"}"'
    assert o["StrictHostKeyChecking"] == "accept-new"
    assert o["ControlMaster"] == "auto" and o["ControlPersist"] == "10m"
    assert o["ControlPath"].strip('"').endswith("/%C")
    argv = ssh.options(ssh.Target("box.example", "me", 22, None), batch=True)
    assert "-p" not in argv and argv[-2:] == ["-l", "me"]


def test_port_and_identity_only_when_given(home: Path, tmp_path: Path) -> None:
    argv = ssh.options(ssh.Target("h", None, 2222, str(tmp_path / "key")), batch=True)
    assert argv[argv.index("-p") + 1] == "2222"
    assert argv[argv.index("-i") + 1] == str(tmp_path / "key")
    assert "IdentitiesOnly=yes" in argv and "-l" not in argv


def test_control_path_stays_short_under_a_long_home(tmp_path: Path, monkeypatch) -> None:
    long_home = tmp_path / ("x" * 80)
    monkeypatch.setenv("PADLAB_HOME", str(long_home))
    directory = ssh.control_dir()
    assert len(str(directory / ("f" * 40))) + 17 < 104
    assert directory.stat().st_mode & 0o777 == 0o700
    assert ssh.control_dir() == directory


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("me@host", ("me", "host")), ("host", (None, "host")), ("a@b@c", ("a@b", "c"))],
)
def test_split_user_host(spec: str, expected: tuple) -> None:
    assert ssh.split_user_host(spec) == expected


def test_failures_become_one_clear_line() -> None:
    target = ssh.Target("203.0.113.9", "me")
    changed = [
        "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
        "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
        "Host key verification failed.",
    ]
    assert isinstance(ssh.explain_failure(target, 255, changed), ssh.HostKeyChanged)
    missing = ssh.explain_failure(target, 127, ["bash: line 1: exec: python3: not found"])
    assert missing is not None and "python3 is not installed" in str(missing)
    denied = ssh.explain_failure(target, 255, ["me@203.0.113.9: Permission denied (publickey)."])
    assert denied is not None and "refused the login" in str(denied)
    refused = ssh.explain_failure(
        target, 255, ["ssh: connect to host 203.0.113.9 port 22: Connection refused"]
    )
    assert refused is not None and "cannot reach" in str(refused)
    assert ssh.explain_failure(target, 1, ["anything"]) is None


def test_forget_host_removes_only_that_host(home: Path, tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    key = (tmp_path / "k.pub").read_text().split()[:2]
    ssh.known_hosts().write_text(f"[198.18.0.9]:2222 {' '.join(key)}\n198.18.0.10 {' '.join(key)}\n")
    assert ssh.forget_host("198.18.0.9", 2222) is True
    assert ssh.known_hosts().read_text().startswith("198.18.0.10 ")
    assert ssh.forget_host("198.18.0.9", 2222) is False
    assert not Path(str(ssh.known_hosts()) + ".old").exists()


def test_ssh_config_has_one_entry_per_existing_profile(home: Path) -> None:
    from padlab import profiles

    for name in ("a", "b"):
        profiles.save(Profile(name=name, provider="ssh", host="h"))
    sshconfig.write_entry("a", sshconfig.entry("a", "198.18.0.1", "me", 22, None, None))
    sshconfig.write_entry("b", sshconfig.entry("b", "198.18.0.2", None, 2200, None, "jump"))
    sshconfig.write_entry("a", sshconfig.entry("a", "198.18.0.3", "me", 22, None, None))
    text = sshconfig.path().read_text()
    assert text.count("Host a\n") == 1 and "HostName 198.18.0.3" in text and "198.18.0.1" not in text
    assert "Port 2200" in text and "ProxyJump jump" in text
    profiles.remove("b")
    assert "Host b" not in sshconfig.rebuild().read_text()


def test_include_goes_on_top_once_and_keeps_the_rest(home: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    config = tmp_path / "user" / ".ssh" / "config"
    config.parent.mkdir(parents=True)
    config.write_text("Host work\n  User me\n")
    config.chmod(0o644)
    assert not sshconfig.include_installed()
    assert sshconfig.install_include() is True
    assert sshconfig.install_include() is False
    lines = config.read_text().splitlines()
    assert lines[1] == sshconfig.include_line() and lines[-2:] == ["Host work", "  User me"]
    assert config.stat().st_mode & 0o777 == 0o644


def test_mosh_argv_uses_padlab_entry_without_the_shared_connection(home: Path) -> None:
    argv = sshconfig.mosh_argv("box", ["tmux"], (60001, 60010))
    assert argv[:3] == ["mosh", "-p", "60001:60010"]
    assert argv[3] == f"--ssh=ssh -F {sshconfig.path()} -o ControlPath=none"
    assert argv[4:] == ["box", "--", "tmux"]


def test_configure_checks_flags(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text("k")
    profile = Profile(name="b", provider="ssh")
    configure(profile, "me@gpu.example", 2222, str(key), "203.0.113.7", "on")
    assert (profile.user, profile.host, profile.ssh_port) == ("me", "gpu.example", 2222)
    assert profile.options == {"allow_from": "203.0.113.7/32", "firewall": "on"}
    assert check_cidr("auto") == "auto" and check_cidr("2001:db8::1/64") == "2001:db8::/64"
    with pytest.raises(PadlabError, match="not a CIDR"):
        check_cidr("my-laptop")
    with pytest.raises(PadlabError, match="no key file"):
        configure(profile, None, None, str(tmp_path / "missing"), None, None)


def test_cli_bad_ssh_input_gives_one_line(home: Path) -> None:
    line = one_line_error(
        padlab(home, "init", "b", "--provider", "ssh", "--host", "h", "--allow-from", "x", check=False)
    )
    assert "--allow-from" in line
    line = one_line_error(padlab(home, "init", "b", "--provider", "ssh", check=False))
    assert "needs a host" in line
    padlab(home, "init", "loc", "--provider", "local")
    assert "not over ssh" in one_line_error(padlab(home, "ssh", "loc", check=False))
    padlab(home, "init", "far", "--provider", "ssh", "--host", "me@198.18.0.1")
    assert "padlab up far" in one_line_error(padlab(home, "mosh", "far", check=False))


@pytest.mark.parametrize("command", ["ssh", "mosh", "ssh-config", "forget-host-key"])
def test_remote_commands_have_help_with_an_example(home: Path, command: str) -> None:
    out = padlab(home, command, "--help").stdout
    assert "Example" in out


def _short_dir(tmp_path: Path, monkeypatch) -> Path:
    import hashlib
    import os
    import tempfile

    long_home = tmp_path / ("x" * 80)
    monkeypatch.setenv("PADLAB_HOME", str(long_home))
    preferred = long_home.resolve() / "ssh" / "cm"
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"padlab-{os.getuid()}-{digest}"


def test_socket_folder_made_by_another_user_is_one_line_and_left_alone(tmp_path: Path, monkeypatch) -> None:
    import os
    import shutil

    if os.geteuid() != 0:
        pytest.skip("needs root to make a folder owned by another user")
    short = _short_dir(tmp_path, monkeypatch)
    shutil.rmtree(short, ignore_errors=True)
    short.mkdir(mode=0o755)
    os.chown(short, 65534, 65534)  # nobody's, as another user on a shared machine would leave it
    try:
        with pytest.raises(PadlabError, match="not a directory of yours") as info:
            ssh.control_dir()
        assert "PADLAB_HOME" in info.value.fix
        assert short.stat().st_mode & 0o777 == 0o755 and short.stat().st_uid == 65534
    finally:
        short.rmdir()
    short.symlink_to(tmp_path)
    try:
        with pytest.raises(PadlabError, match="not a directory of yours"):
            ssh.control_dir()
    finally:
        short.unlink()


def _user_config(tmp_path: Path, monkeypatch, text: str) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    dotfiles = tmp_path / "user" / "dotfiles"
    dotfiles.mkdir(parents=True)
    real = dotfiles / "ssh_config"
    real.write_text(text)
    (tmp_path / "user" / ".ssh").mkdir(mode=0o700)
    (tmp_path / "user" / ".ssh" / "config").symlink_to(real)
    return real


def test_install_writes_through_a_symlinked_config(home: Path, tmp_path: Path, monkeypatch) -> None:
    real = _user_config(tmp_path, monkeypatch, "Host work\n  User me\n")
    assert sshconfig.install_include() is True
    link = tmp_path / "user" / ".ssh" / "config"
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text().splitlines()[1] == sshconfig.include_line()
    assert real.read_text().endswith("Host work\n  User me\n")
    assert sshconfig.install_include() is False


def test_padlab_never_overrides_the_users_own_host(home: Path, tmp_path: Path, monkeypatch) -> None:
    """With the Include on top, padlab's `Host lab` would win over the user's: it becomes padlab-lab."""
    from padlab import profiles

    _user_config(tmp_path, monkeypatch, "Host lab gpu-old\n  HostName 192.0.2.50\n  User me\n")
    for name in ("lab", "gpu"):
        profiles.save(Profile(name=name, provider="ssh", host="h"))
        sshconfig.write_entry(name, sshconfig.entry(name, "198.18.0.7", "ubuntu", 22, None, None))
    sshconfig.install_include()
    text = sshconfig.path().read_text()
    assert "Host padlab-lab\n" in text and "Host gpu\n" in text and "Host lab\n" not in text
    config = str(tmp_path / "user" / ".ssh" / "config")

    def seen(host: str) -> dict[str, str]:
        out = subprocess.run(["ssh", "-G", "-F", config, host], capture_output=True, text=True, check=True)
        return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)

    assert seen("lab")["hostname"] == "192.0.2.50", "the user's own host is untouched"
    assert seen("padlab-lab")["hostname"] == "198.18.0.7" and seen("gpu")["hostname"] == "198.18.0.7"
    assert sshconfig.mosh_argv("lab", [], (60001, 60010))[-1] == "padlab-lab"


def test_host_keys_are_kept_per_profile_not_per_address(home: Path, tmp_path: Path) -> None:
    """A cloud machine gets a new address on each start: its key is checked, not trusted afresh."""
    target = ssh.Target("198.18.0.9", "me", 2222, None, ssh.key_alias("gpu"))
    assert opts(target)["HostKeyAlias"] == "padlab-gpu"
    assert "  HostKeyAlias padlab-gpu\n" in sshconfig.entry("gpu", "198.18.0.9", None, 22, None, None)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    key = " ".join((tmp_path / "k.pub").read_text().split()[:2])
    # Recorded by an earlier padlab under the address: carried over to the alias once, then used.
    ssh.known_hosts().write_text(f"[198.18.0.9]:2222 {key}\n198.18.0.10 {key}\n")
    assert ssh.adopt_known_key(target) is True
    assert ssh.adopt_known_key(target) is False
    found = subprocess.run(
        ["ssh-keygen", "-F", "padlab-gpu", "-f", str(ssh.known_hosts())], capture_output=True, text=True
    ).stdout
    assert key in found
    assert ssh.forget_host("198.18.0.9", 2222, "padlab-gpu") is True
    assert ssh.known_hosts().read_text() == f"198.18.0.10 {key}\n"


def test_a_stale_master_socket_is_no_master_and_a_stranger_is_asked_of_ssh(tmp_path: Path) -> None:
    """mux_alive: no socket or one nobody listens on (a master that died) is False at once; a socket
    that does not speak OpenSSH's mux protocol is None, so master_alive asks `ssh -O check`."""
    import socket
    import threading

    assert ssh.mux_alive(str(tmp_path / "none")) is False
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "stale"))
    stale.close()
    assert ssh.mux_alive(str(tmp_path / "stale")) is False
    with socket.socket(socket.AF_UNIX) as stranger:
        stranger.bind(str(tmp_path / "stranger"))
        stranger.listen(1)

        def answer() -> None:
            conn, _ = stranger.accept()
            with conn:
                conn.sendall(b"\x00\x00\x00\x04HTTP")

        thread = threading.Thread(target=answer)
        thread.start()
        assert ssh.mux_alive(str(tmp_path / "stranger")) is None
        thread.join()


def test_the_box_program_runs_isolated_from_the_login_users_python_settings(tmp_path: Path) -> None:
    """A `json.py` on PYTHONPATH (or in the user's site-packages, or the current folder) would run
    inside the box program, as root where padlab logs in as root: python3 -I ignores all three."""
    planted = tmp_path / "planted"
    planted.mkdir()
    (planted / "json.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(planted)}
    proc = subprocess.run(
        ["sh", "-c", ssh.remote_python("import json")], cwd=planted, env=env, capture_output=True
    )
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "ran").exists()
