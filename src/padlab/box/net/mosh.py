"""mosh on the box: mosh-server from the package manager, and a UTF-8 locale it can start in.

The client asks for a narrow UDP range (request.MOSH_PORTS: ``mosh -p 60001:60010``),
which the firewall step opens; mosh-server itself needs no configuration.

mosh-server refuses to start unless the session's locale is UTF-8. It first
tries the box's default, then the one the client names, which a minimal image
may lack. So when the box sets no default at all, it becomes C.UTF-8, which
every current glibc ships.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from .. import packages
from ..report import Report
from ..system import Host

LOCALE_FILE = "/etc/default/locale"
SSHD_PAM = "/etc/pam.d/sshd"


def ensure(host: Host, spec: dict, report: Report) -> None:
    lo, hi = spec["ports"]
    installed = False
    if not shutil.which("mosh-server"):
        packages.install(host, ["mosh"], report, "mosh")
        installed = True
    locale_changed = _ensure_utf8_default(host, report)
    detail = "mosh-server %s, UDP %d-%d" % (_version(), lo, hi)
    if locale_changed:
        detail += ", default locale C.UTF-8"
    report.step("mosh", installed or locale_changed, detail)


def _version() -> str:
    proc = subprocess.run(["mosh-server", "--version"], capture_output=True, text=True)
    match = re.search(r"mosh-server \(mosh ([\d.]+)\)", proc.stdout + proc.stderr)
    return match.group(1) if match else "installed"


def _utf8(value: str) -> bool:
    return bool(re.search(r"utf-?8", value, re.I))


def _has_c_utf8() -> bool:
    proc = subprocess.run(["locale", "-a"], capture_output=True, text=True)
    return any(name.lower().replace("-", "") == "c.utf8" for name in proc.stdout.split())


def _ensure_utf8_default(host: Host, report: Report) -> bool:
    """Give ssh sessions LANG=C.UTF-8 when the box sets no default locale (minimal images)."""
    pam = host.read(SSHD_PAM) or b""
    if LOCALE_FILE.encode() not in pam:
        return False  # not a Debian-style box; its own locale.conf decides
    existing = (host.read(LOCALE_FILE) or b"").decode()
    match = re.search(r"^\s*LANG=(\S*)", existing, re.M)
    if match:
        if not _utf8(match.group(1)):
            report.warn("%s sets LANG=%s; mosh needs a UTF-8 locale" % (LOCALE_FILE, match.group(1)))
        return False
    if not _has_c_utf8():
        report.warn("the box has no C.UTF-8 locale, so mosh may refuse to start: generate a UTF-8 one")
        return False
    return host.write(LOCALE_FILE, existing + "LANG=C.UTF-8\n", mode=0o644, root=True)
