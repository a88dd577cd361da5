"""PADLAB_HOME/ssh_config: one Host entry per remote profile, so `ssh NAME` and `mosh NAME` work.

Each entry is kept in its own file (PADLAB_HOME/ssh/entries/NAME) and the
ssh_config is rebuilt from them, so one profile's `up` never rewrites another's
entry by accident. ``~/.ssh/config`` is only ever changed on request: one
``Include`` line at its top (:func:`install_include`), written through a symlink.

An Include at the top makes padlab's entries win over what follows, so a profile
whose name is also a ``Host`` of the user's own ~/.ssh/config gets the entry
``padlab-NAME`` instead: padlab never changes where the user's ``ssh NAME`` goes.
"""

from __future__ import annotations

import os
from pathlib import Path

from padlab import paths, ssh
from padlab.errors import PadlabError
from padlab.fileio import write_atomic

HEADER = "# Written by padlab on every `padlab up`; edits are overwritten. One Host entry per profile.\n"


def path() -> Path:
    return paths.data_dir() / "ssh_config"


def _entries_dir() -> Path:
    return paths.ensure_private_dir(ssh.ssh_dir() / "entries")


def entry(
    name: str, hostname: str, user: str | None, port: int, identity: str | None, jump: str | None
) -> str:
    """The Host block for one profile: padlab's known_hosts (under the profile's key alias) and shared connection."""
    lines = [f"Host {name}", f"  HostName {hostname}", f"  HostKeyAlias {ssh.key_alias(name)}"]
    if user:
        lines.append(f"  User {user}")
    lines.append(f"  Port {port}")
    if identity:
        lines += [f'  IdentityFile "{Path(identity).expanduser()}"', "  IdentitiesOnly yes"]
    if jump:
        lines.append(f"  ProxyJump {jump}")
    lines += [
        f'  UserKnownHostsFile "{ssh.known_hosts()}"',
        "  StrictHostKeyChecking accept-new",
        "  ControlMaster auto",
        f'  ControlPath "{ssh.control_dir() / "%C"}"',
        "  ControlPersist 10m",
    ]
    return "\n".join(lines) + "\n"


def write_entry(name: str, block: str) -> Path:
    """Record one profile's entry (HostName updated on every `up`) and rebuild ssh_config."""
    _write_if_changed(_entries_dir() / name, block)
    return rebuild()


def _write_if_changed(target: Path, text: str) -> None:
    """A no-op `up` rewrites nothing: an fsync'd write per file is most of what it would cost."""
    try:
        if target.read_text() == text and (target.stat().st_mode & 0o777) == 0o600:
            return
    except OSError:
        pass
    write_atomic(target, text, mode=0o600)


def has_entry(name: str) -> bool:
    return (_entries_dir() / name).is_file() and path().is_file()


def mosh_argv(name: str, command: list[str], ports: tuple[int, int]) -> list[str]:
    """mosh through padlab's entry; no shared connection, so mosh's ProxyCommand learns the address."""
    import shlex

    ssh_cmd = f"ssh -F {shlex.quote(str(path()))} -o ControlPath=none"
    argv = ["mosh", "-p", f"{ports[0]}:{ports[1]}", f"--ssh={ssh_cmd}", host_name(name)]
    return argv + ["--", *command] if command else argv


def user_hosts() -> set[str]:
    """The names the user's own ~/.ssh/config gives in its Host lines (patterns as written)."""
    try:
        text = user_config().read_text()
    except OSError:
        return set()
    names: set[str] = set()
    for line in text.splitlines():
        words = line.strip().replace("=", " ", 1).split()
        if len(words) > 1 and words[0].lower() == "host":
            names.update(w.strip('"') for w in words[1:])
    return names


def host_name(name: str, taken: set[str] | None = None) -> str:
    """The Host name of a profile's entry: NAME, or padlab-NAME when the user already has a Host NAME."""
    taken = user_hosts() if taken is None else taken
    return f"padlab-{name}" if name in taken else name


def rebuild() -> Path:
    from padlab import profiles

    known = set(profiles.names())
    taken = user_hosts()
    blocks = []
    for p in sorted(_entries_dir().iterdir()):
        if p.is_file() and p.name in known:
            first, _, rest = p.read_text().partition("\n")
            blocks.append(f"Host {host_name(p.name, taken)}\n{rest}")
    target = path()
    _write_if_changed(target, HEADER + "\n".join(blocks))
    return target


def user_config() -> Path:
    return Path.home() / ".ssh" / "config"


def include_line() -> str:
    return f'Include "{path()}"'


def include_installed() -> bool:
    try:
        text = user_config().read_text()
    except FileNotFoundError:
        return False
    return any(line.strip() == include_line() for line in text.splitlines())


def install_include() -> bool:
    """Put padlab's Include line at the top of ~/.ssh/config (where it applies to every host).

    Returns False when it was already there. Called only after the user said yes.
    """
    if include_installed():
        return False
    link = user_config()
    paths.ensure_private_dir(link.parent)
    # A dotfiles setup links ~/.ssh/config elsewhere: change the file it points to, keep the link.
    config = Path(os.path.realpath(link))
    try:
        old = config.read_text()
        mode = os.stat(config).st_mode & 0o777
    except FileNotFoundError:
        old, mode = "", 0o600
    except OSError as exc:
        raise PadlabError(f"cannot read {config}: {exc}", "fix its permissions and run again") from exc
    note = "# Added by `padlab ssh-config --install`: padlab's workstations (ssh NAME, mosh NAME).\n"
    write_atomic(config, note + include_line() + "\n\n" + old, mode=mode)
    rebuild()  # names the user's config already has become padlab-NAME
    return True
