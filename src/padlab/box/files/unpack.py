"""Unpack a downloaded archive (.tar.gz, .tgz, .tar.xz, .zip) so that nothing lands outside its folder.

Every member is checked against the real paths on disk just before it is
written, so a symlink the archive made earlier cannot carry a later member out.
Refused: absolute names, '..' components, symlinks or hard links resolving
outside, device files and FIFOs. Members go to a fresh hidden folder first and
only its top-level entries are moved into place, so a refused archive leaves
nothing behind, and nothing the user already has is overwritten.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile

SUFFIXES = (".tar.gz", ".tgz", ".tar.xz", ".zip")


class Unsafe(Exception):
    """A member would land outside the folder, or is not a plain file, folder or safe link."""


class Clash(Exception):
    """A top-level entry of the archive already exists in the folder."""


def supported(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def extract(archive: str, into: str) -> list:
    """Unpack archive into the folder `into`; returns the top-level names it added."""
    tmp = tempfile.mkdtemp(prefix=".padlab-unpack-", dir=into)
    try:
        if archive.lower().endswith(".zip"):
            _zip(archive, os.path.realpath(tmp))
        else:
            _tar(archive, os.path.realpath(tmp))
        names = sorted(os.listdir(tmp))
        taken = [n for n in names if os.path.lexists(os.path.join(into, n))]
        if taken:
            raise Clash(", ".join(taken))
        for name in names:
            os.rename(os.path.join(tmp, name), os.path.join(into, name))
        return names
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _inside(root: str, name: str) -> str:
    """The path `name` would be written at under root, after resolving links already on disk."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise Unsafe("member %r has an absolute path" % name)
    if ".." in parts:
        raise Unsafe("member %r goes up with '..'" % name)
    path = os.path.join(root, *[p for p in parts if p not in ("", ".")])
    if path == root:
        return root
    real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    if not _under(root, real):
        raise Unsafe("member %r would be written outside the folder, through a link" % name)
    return real


def _link_ok(root: str, member: str, link: str) -> None:
    """A symlink stored at `member` pointing to `link` must resolve inside root."""
    if os.path.isabs(link):
        raise Unsafe("link %r points to the absolute path %r" % (member, link))
    where = os.path.dirname(_inside(root, member))
    if not _under(root, os.path.realpath(os.path.join(where, link))):
        raise Unsafe("link %r points outside the folder (%r)" % (member, link))


def _under(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _tar(archive: str, root: str) -> None:
    data_filter = hasattr(tarfile, "data_filter")  # Python 3.12, and 3.8.17+ security releases
    with tarfile.open(archive, "r:*") as tf:
        for member in tf:
            _inside(root, member.name)
            if member.issym():
                _link_ok(root, member.name, member.linkname)
            elif member.islnk():
                target = _inside(root, member.linkname)
                if not os.path.isfile(target) or os.path.islink(target):
                    raise Unsafe(
                        "hard link %r points to %r, not a file unpacked before it"
                        % (member.name, member.linkname)
                    )
            elif not (member.isfile() or member.isdir()):
                raise Unsafe("member %r is a device file or FIFO" % member.name)
            member.mode = (member.mode & 0o755) | (0o700 if member.isdir() else 0o600)
            try:
                if data_filter:
                    tf.extract(member, root, filter="data")
                else:
                    tf.extract(member, root)
            except tarfile.TarError as exc:  # the data filter's own refusals
                raise Unsafe(str(exc)) from exc


def _zip(archive: str, root: str) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = _inside(root, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                link = zf.read(info).decode("utf-8", "replace")
                _link_ok(root, info.filename, link)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.symlink(link, target)
                continue
            zf.extract(info, root)
