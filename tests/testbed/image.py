"""Debian root filesystems for the testbed, built once with debootstrap and cached.

An image is what a fresh cloud VM looks like: systemd, sshd, python3, sudo and a
`padlab` user reachable with the harness key, but no jupyter and no mosh, so
padlab's bootstrap has real work to do. The cache lives outside the repo and an
image is reused while its stamp matches the recipe, host CA bundle and key.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .host import TestbedError, file_lock, read_json, run, write_json

# Bump whenever the build steps below change, so cached images are rebuilt.
RECIPE_VERSION = 1
USER = "padlab"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "libpam-systemd",
    "openssh-server",
    "python3",
    "python3-venv",
    "iproute2",
    "sudo",
    "ca-certificates",
    "procps",
    "curl",
    "iputils-ping",
)
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


@dataclass(frozen=True)
class ImageSpec:
    """A Debian release the testbed can boot."""

    name: str
    suite: str


IMAGES = {spec.name: spec for spec in (ImageSpec("bookworm", "bookworm"), ImageSpec("trixie", "trixie"))}


def _mirror() -> str:
    return os.environ.get("PADLAB_TESTBED_MIRROR", "http://deb.debian.org/debian")


class ImageStore:
    """Builds, caches and hands out image root directories and the harness SSH key."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.images = cache / "images"

    @property
    def identity(self) -> Path:
        """Private key whose public half is authorized for `padlab` in every image."""
        return self.cache / "ssh" / "id_ed25519"

    def ensure_keypair(self) -> Path:
        """Generate the test keypair once; images embed its public key."""
        with file_lock(self.cache / "ssh.lock"):
            if not self.identity.exists():
                self.identity.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                run(
                    [
                        "ssh-keygen",
                        "-q",
                        "-t",
                        "ed25519",
                        "-N",
                        "",
                        "-C",
                        "padlab-testbed",
                        "-f",
                        str(self.identity),
                    ]
                )
        return self.identity

    def root(self, image: str) -> Path:
        """Directory holding the finished root filesystem of `image`."""
        return self.images / image

    def _stamp(self, image: str) -> Path:
        return self.images / f"{image}.stamp"

    def _key(self, spec: ImageSpec) -> str:
        digest = hashlib.sha256()
        for part in (str(RECIPE_VERSION), spec.suite, _mirror(), " ".join(PACKAGES)):
            digest.update(part.encode() + b"\0")
        digest.update(HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.exists() else b"")
        digest.update(self.identity.with_suffix(".pub").read_bytes())
        return digest.hexdigest()

    def is_ready(self, image: str) -> bool:
        """True when a complete image matching today's recipe is cached."""
        spec = self._spec(image)
        stamp = read_json(self._stamp(image))
        return self.identity.exists() and stamp is not None and stamp.get("key") == self._key(spec)

    def ensure(self, image: str) -> Path:
        """Return the root of `image`, building it first if the cache lacks a matching one."""
        spec = self._spec(image)
        self.ensure_keypair()
        with file_lock(self.images / f"{image}.lock"):
            if not self.is_ready(image):
                self._build(spec)
        return self.root(image)

    def remove(self, image: str) -> None:
        """Drop a cached image (machines using it must be gone)."""
        with file_lock(self.images / f"{image}.lock"):
            self._stamp(image).unlink(missing_ok=True)
            shutil.rmtree(self.root(image), ignore_errors=True)

    def build_seconds(self, image: str) -> float | None:
        """How long the cached image took to build, for reports."""
        stamp = read_json(self._stamp(image))
        return None if stamp is None else float(stamp["seconds"])

    @staticmethod
    def _spec(image: str) -> ImageSpec:
        if image not in IMAGES:
            raise TestbedError(f"unknown image {image!r}; known: {', '.join(IMAGES)}")
        return IMAGES[image]

    def _build(self, spec: ImageSpec) -> None:
        started = time.monotonic()
        final, build = self.root(spec.name), self.images / f"{spec.name}.build"
        self._stamp(spec.name).unlink(missing_ok=True)
        _unmount_below(build)
        shutil.rmtree(build, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        build.parent.mkdir(parents=True, exist_ok=True)
        proc = run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(PACKAGES),
                spec.suite,
                str(build),
                _mirror(),
            ],
            check=False,
            timeout=1200,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise TestbedError(f"debootstrap {spec.suite} failed ({proc.returncode}):\n{tail}")
        self._configure(build, spec)
        build.rename(final)
        write_json(
            self._stamp(spec.name),
            {"key": self._key(spec), "seconds": round(time.monotonic() - started, 1), "built": time.time()},
        )

    def _configure(self, root: Path, spec: ImageSpec) -> None:
        etc = root / "etc"
        run(["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", USER])
        # '*' = no password login, but unlike useradd's '!' the account is not "locked".
        run(["chroot", str(root), "usermod", "--password", "*", USER])
        (etc / "sudoers.d" / "padlab-testbed").write_text(f"{USER} ALL=(ALL:ALL) NOPASSWD: ALL\n")
        (etc / "sudoers.d" / "padlab-testbed").chmod(0o440)

        home_ssh = root / "home" / USER / ".ssh"
        home_ssh.mkdir(mode=0o700)
        (home_ssh / "authorized_keys").write_text(self.identity.with_suffix(".pub").read_text())
        run(["chroot", str(root), "chown", "-R", f"{USER}:{USER}", f"/home/{USER}/.ssh"])

        # Every machine must get its own host keys: drop the build's and make sshd
        # generate missing ones at boot (Debian's unit only runs `sshd -t`, which fails without keys).
        for key in (etc / "ssh").glob("ssh_host_*"):
            key.unlink()
        dropin = etc / "systemd" / "system" / "ssh.service.d"
        dropin.mkdir(parents=True, exist_ok=True)
        (dropin / "padlab-testbed.conf").write_text(
            "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n"
        )
        run(["chroot", str(root), "systemctl", "enable", "ssh.service"])

        self._install_host_cas(root)

        (etc / "apt" / "sources.list").write_text(
            f"deb {_mirror()} {spec.suite} main\n"
            f"deb {_mirror()} {spec.suite}-updates main\n"
            f"deb {_mirror()}-security {spec.suite}-security main\n"
        )
        # The registry mirror serves a dated snapshot, whose Release files would look expired.
        (etc / "apt" / "apt.conf.d" / "99padlab-testbed").write_text(
            'Acquire::Check-Valid-Until "false";\nAcquire::Check-Date "false";\n'
        )
        # Per-machine identity is written when a machine's disk is made.
        (etc / "machine-id").write_text("")
        (etc / "hostname").unlink(missing_ok=True)
        run(["chroot", str(root), "apt-get", "clean"])
        shutil.rmtree(root / "var" / "lib" / "apt" / "lists", ignore_errors=True)
        (root / "var" / "lib" / "apt" / "lists" / "partial").mkdir(parents=True)

    @staticmethod
    def _install_host_cas(root: Path) -> None:
        """Trust the host's extra CAs (a TLS-intercepting proxy) the Debian way, so they survive upgrades."""
        if not HOST_CA_BUNDLE.exists():
            return
        guest = set(_PEM.findall((root / HOST_CA_BUNDLE.relative_to("/")).read_text()))
        extra = [pem for pem in _PEM.findall(HOST_CA_BUNDLE.read_text()) if pem not in guest]
        target = root / "usr" / "local" / "share" / "ca-certificates"
        target.mkdir(parents=True, exist_ok=True)
        for index, pem in enumerate(extra):
            (target / f"padlab-testbed-host-{index}.crt").write_text(pem + "\n")
        if extra:
            run(["chroot", str(root), "update-ca-certificates"])


def _unmount_below(path: Path) -> None:
    """A build killed mid-way leaves debootstrap's /proc mounted inside it, which rmtree cannot
    clear and which makes every later debootstrap there fail: unmount it first."""
    prefix = str(path) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
        run(["umount", "-l", point], check=False)
