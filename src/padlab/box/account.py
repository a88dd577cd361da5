"""Who Jupyter runs as: never root on a remote box.

A system box (one padlab reaches over ssh) whose image logs in as root, such as
DigitalOcean's, gets an unprivileged user of padlab's own, ``padlab-jupyter``,
which owns the notebooks and runs Jupyter. It has no sudo and no password, so
notebook code cannot read root's files (the autostop tokens) nor plant code in
the login user's ``~/.bashrc`` or ``~/.ssh/rc`` for padlab's next ssh call to
run as root. Elsewhere Jupyter runs as the login user (see README's security model).
"""

from __future__ import annotations

import grp
import json
import os
import pwd

from .report import BoxError, Report
from .service import Layout
from .system import Host, expand_user, login_user

JUPYTER_USER = "padlab-jupyter"
# Device groups a notebook needs for the GPU where the image restricts /dev/dri or /dev/nvidia*.
DEVICE_GROUPS = ("video", "render")


def resolve(requested: str | None, system: bool) -> str:
    """The user Jupyter runs as: the request's, else the login user unless that is root on a system box."""
    if requested:
        return requested
    if system and os.geteuid() == 0:
        return JUPYTER_USER
    return login_user()


def ensure(host: Host, user: str, report: Report) -> None:
    """Create padlab's own Jupyter user when it is the one chosen and missing; any other must exist."""
    try:
        pwd.getpwnam(user)
    except KeyError:
        if user != JUPYTER_USER:
            raise BoxError(
                "the user %r that Jupyter should run as does not exist on the box" % user,
                "create it, or log in as another user: padlab init NAME --user USER --force",
            ) from None
    else:
        if user == JUPYTER_USER:
            report.step("jupyter-user", False, "%s (unprivileged, no sudo)" % user)
        return
    groups = [g for g in DEVICE_GROUPS if _group_exists(g)]
    argv = ["useradd", "--create-home", "--shell", "/bin/bash", "--user-group"]
    if groups:
        argv += ["--groups", ",".join(groups)]
    host.run(argv + [user], root=True)
    report.step("jupyter-user", True, "created %s: runs Jupyter, owns the notebooks, no sudo" % user)


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def adopt(host: Host, layout: Layout, root_dir: str, report: Report) -> None:
    """A box whose Jupyter ran as root (before padlab-jupyter): hand its files to Jupyter's user.

    The prefix and etc become that user's, and the notebooks move from root's
    notebook folder to the user's (when the new one does not exist yet: nothing is
    overwritten). Recognised by Jupyter's config still being root's.
    """
    try:
        owner = os.stat(layout.config).st_uid
    except OSError:
        return  # a new box, or one already set up as this user (its etc is closed to us)
    if owner != 0 or layout.user == "root":
        return
    try:
        with open(layout.config) as fh:
            old_root = json.load(fh)["ServerApp"]["root_dir"]
    except (OSError, ValueError, KeyError):
        old_root = None
    new_root = expand_user(root_dir, layout.user)
    moved = ""
    if old_root and old_root != new_root and os.path.isdir(old_root) and not os.path.exists(new_root):
        host.run(["mkdir", "-p", os.path.dirname(new_root)], root=True)
        host.run(["mv", old_root, new_root], root=True)
        moved = "; notebooks moved from %s to %s" % (old_root, new_root)
    owned = [p for p in (layout.prefix, layout.etc, new_root) if os.path.exists(p)]
    host.run(["chown", "-R", "%s:" % layout.user] + owned, root=True)
    report.step(
        "jupyter-files",
        True,
        "Jupyter ran as root here: %s now belong to %s%s" % (", ".join(owned), layout.user, moved),
    )
