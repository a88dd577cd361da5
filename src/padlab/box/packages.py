"""Install distribution packages with the box's own package manager (apt-get or dnf), through sudo."""

from __future__ import annotations

import shutil

from .report import BoxError, Report
from .system import Host

# apt waits for a dpkg lock held by cloud-init or unattended-upgrades instead of failing at once.
APT = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=300"]


def manager() -> str | None:
    for name in ("apt-get", "dnf", "yum"):
        if shutil.which(name):
            return name
    return None


def install(host: Host, names: list, report: Report, why: str) -> None:
    """Install packages; apt's lists are refreshed once when a package is not found (fresh images)."""
    tool = manager()
    if tool is None:
        raise BoxError(
            "no apt-get or dnf on the box to install %s (%s)" % (" ".join(names), why),
            "install %s by hand, then run `padlab up` again" % " ".join(names),
        )
    report.stage("installing %s with %s" % (" ".join(names), tool))
    if tool == "apt-get":
        argv = APT + ["install", "--no-install-recommends"] + list(names)
        if host.run(argv, root=True, check=False).returncode != 0:
            host.run(APT + ["update"], root=True, timeout=600)
            host.run(argv, root=True, timeout=900)
    else:
        host.run([tool, "-y", "-q", "install"] + list(names), root=True, timeout=900)
