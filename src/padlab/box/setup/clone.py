"""The course repository in the notebook folder: cloned once at `up`, never over the user's work."""

from __future__ import annotations

import os
import re
import shutil

from .. import packages
from ..kernels.kernels import as_user
from ..report import BoxError, Report
from ..service import Layout
from ..system import Host, expand_user


def target(url: str) -> str:
    """The folder git itself would pick: the repository's name without .git."""
    name = re.sub(r"\.git$", "", url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1])
    if not name or name in (".", ".."):
        raise BoxError(
            "cannot tell the repository's name from %r" % url,
            "pass a URL like https://github.com/fastai/course22",
        )
    return name


def ensure(host: Host, layout: Layout, spec: dict, report: Report) -> None:
    """Clone into ROOT/NAME when it is missing; an existing folder is the user's and stays as it is."""
    url = spec["url"]
    root = expand_user(spec["root_dir"], layout.user)
    dest = os.path.join(root, target(url))
    if os.path.exists(dest):
        report.step("clone", False, "%s is there (padlab never clones over it)" % dest)
        return
    if shutil.which("git") is None:
        packages.install(host, ["git"], report, "to clone %s" % url)
    report.stage("cloning %s into %s" % (url, dest))
    # Into a hidden folder first, renamed once complete: an interrupted clone leaves no half folder.
    tmp = os.path.join(root, ".%s.padlab-clone" % os.path.basename(dest))
    run_as = as_user(layout.user)
    host.run(run_as + ["rm", "-rf", "--", tmp])
    proc = host.run(run_as + ["git", "clone", "--quiet", "--", url, tmp], check=False, timeout=1800)
    if proc.returncode != 0:
        host.run(run_as + ["rm", "-rf", "--", tmp])
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["exit %d" % proc.returncode]
        raise BoxError(
            "cloning %s failed: %s" % (url, tail[0]),
            "check the URL (padlab init NAME --force --clone URL), then run `padlab up` again",
        )
    host.run(run_as + ["mv", "-T", "--", tmp, dest])
    report.step("clone", True, "cloned %s into %s" % (url, dest))
