#!/usr/bin/env python3
"""Start Chromium (PADLAB_TEST_CHROMIUM: its path) unable to open netlink sockets, so it ignores the host's address changes.

Chromium's NetworkChangeNotifierLinux (net/base/address_tracker_linux.cc) listens on a netlink
route socket; any address added or removed on any host interface is an "IP address change",
and Chromium then fails every connection still being set up with net::ERR_NETWORK_CHANGED.
The testbed (tests/testbed/network.py) adds and removes host-side veth addresses whenever another
xdist worker makes or destroys a machine, so a page load could fail at random. Where the
netlink socket cannot be created, Chromium logs it and stays "online" without tracking
(AddressTrackerLinux::AbortAndForceOnline): a seccomp filter makes socket(AF_NETLINK, ...)
fail with EAFNOSUPPORT, in Chromium and the processes it starts, and nothing else changes.
Reproduction: tests/test_chromium_steady.py. Standard library only; used by tests/test_browser.py's launch.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys

AF_NETLINK = 16
EAFNOSUPPORT = 97
# (AUDIT_ARCH_*, the socket syscall's number) per machine: seccomp_data's arch and nr.
ARCHES = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


def filter_program(arch: int, socket_nr: int) -> bytes:
    """BPF: socket(AF_NETLINK, ...) returns EAFNOSUPPORT; every other call (and other arches) is allowed."""
    return b"".join(
        [
            _insn(LD_W_ABS, 4),  # seccomp_data.arch
            _insn(JEQ_K, arch, 0, 5),
            _insn(LD_W_ABS, 0),  # seccomp_data.nr
            _insn(JEQ_K, socket_nr, 0, 3),
            _insn(LD_W_ABS, 16),  # seccomp_data.args[0], its low 32 bits: the address family
            _insn(JEQ_K, AF_NETLINK, 0, 1),
            _insn(RET_K, RET_ERRNO | EAFNOSUPPORT),
            _insn(RET_K, RET_ALLOW),
        ]
    )


def deny_netlink() -> None:
    """Install the filter on this process (inherited across exec and by children)."""
    arch = ARCHES.get(platform.machine())
    if arch is None or not sys.platform.startswith("linux"):
        return  # nothing to filter with: Chromium runs as it would
    code = ctypes.create_string_buffer(filter_program(*arch))
    prog = _Prog(len(code.raw) // 8, ctypes.addressof(code))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) or libc.prctl(
        PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0
    ):
        sys.exit("chromium_steady: seccomp: " + os.strerror(ctypes.get_errno()))


if __name__ == "__main__":
    real = os.environ.get("PADLAB_TEST_CHROMIUM")
    if not real:
        sys.exit("chromium_steady: set PADLAB_TEST_CHROMIUM to the Chromium to start")
    deny_netlink()
    os.execv(real, [real, *sys.argv[1:]])
