"""padlab get, push and pull on a real systemd Debian box over ssh (tests/testbed).

One box is set up once (`padlab up` over ssh, which also installs rsync) and
shared; the HTTP server runs in this process on the host side of the box's
network, where it records every request and drops or holds connections on
purpose. The reboot test comes last because it disturbs the box.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import PASSWORD, one_line_error, padlab, padlab_env, padlab_json
from tests.rangeserver import RangeServer
from tests.test_ssh_provider import close_connection, init

pytestmark = [pytest.mark.testbed, pytest.mark.timeout(900)]

MB = 1_000_000
NB = "/home/padlab/notebooks"


@pytest.fixture(scope="module")
def box(testbed, tmp_path_factory) -> Iterator[dict]:
    machine = testbed.machine(f"fl{os.getpid() % 100000}")
    home = tmp_path_factory.mktemp("files") / "home"
    init(home, "box", machine)
    padlab_json(home, "up", "box", "--password-stdin", input=PASSWORD + "\n")
    with RangeServer(host=machine.net.host_ip) as server:
        yield {"machine": machine, "home": home, "server": server}
    machine.destroy()


def start_get(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "padlab", "get", "box", *args, "--json"],
        stdout=subprocess.PIPE,
        text=True,
        env=padlab_env(home),
        start_new_session=True,
    )


def wait_for_bytes(proc: subprocess.Popen) -> dict:
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event.get("bytes", 0) > 0:
            return event
    raise AssertionError("the client ended before any bytes arrived")


def box_sha256(machine, path: str) -> str:
    return machine.exec(["sha256sum", path]).stdout.split()[0]


def listing(machine, folder: str) -> list[str]:
    return sorted(machine.exec(["ls", "-A", folder]).stdout.split())


def test_dropped_connection_resumes_with_if_range(box) -> None:
    machine, server = box["machine"], box["server"]
    data = os.urandom(6 * MB)
    url = server.add("/drop.bin", data)
    server.drop_after["/drop.bin"] = 2 * MB
    sha = hashlib.sha256(data).hexdigest()
    result = json.loads(
        padlab(box["home"], "get", "box", url, "--sha256", sha, "--json").stdout.splitlines()[-1]
    )
    assert result["dest"] == f"{NB}/datasets/drop.bin" and result["bytes"] == len(data)
    first, second = server.requests_for("/drop.bin")
    assert (first["range"], second["range"]) == (None, f"bytes={2 * MB}-")
    assert second["if_range"] == server.etags["/drop.bin"] and second["status"] == 206
    assert server.sent["/drop.bin"] == len(data)
    assert box_sha256(machine, result["dest"]) == sha
    assert machine.exec(["stat", "-c", "%U", result["dest"]]).stdout.strip() == "padlab"


def test_killed_client_job_goes_on_as_a_unit_and_rerun_reattaches(box) -> None:
    machine, server, home = box["machine"], box["server"], box["home"]
    data = os.urandom(4 * MB)
    url = server.add("/kill.bin", data)
    server.rate = 1 * MB
    try:
        first = start_get(home, url)
        wait_for_bytes(first)
        server.flowing.clear()  # hold the job mid-file while the client is gone
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        units = machine.exec("systemctl list-units --no-legend --plain 'padlab-get-*'").stdout.split()
        assert units and units[0].startswith("padlab-get-") and "running" in units
        user = machine.exec(["systemctl", "show", units[0], "-p", "User", "--value"]).stdout.strip()
        assert user == "padlab"  # the user Jupyter runs as, not root
        again = start_get(home, url)
        wait_for_bytes(again)
        server.flowing.set()
        out, _ = again.communicate(timeout=300)
    finally:
        server.rate = None
        server.flowing.set()
    result = json.loads(out.splitlines()[-1])
    assert result["attached"] is True
    assert len(server.requests_for("/kill.bin")) == 1
    assert box_sha256(machine, result["dest"]) == hashlib.sha256(data).hexdigest()


def test_wrong_checksum_leaves_nothing(box) -> None:
    url = box["server"].add("/bad.bin", os.urandom(MB))
    proc = padlab(box["home"], "get", "box", url, "--to", "checked", "--sha256", "1" * 64, check=False)
    assert "SHA-256 mismatch" in one_line_error(proc)
    assert listing(box["machine"], f"{NB}/checked") == []


def test_full_disk_is_refused_and_leaves_nothing(box) -> None:
    machine, server = box["machine"], box["server"]
    small = f"{NB}/small"
    machine.exec(f"mkdir -p {small} && mount -t tmpfs -o size=1m,uid=padlab,gid=padlab tmpfs {small}")
    try:
        sized = server.add("/big.bin", os.urandom(3 * MB))
        proc = padlab(box["home"], "get", "box", sized, "--to", "small", check=False)
        assert "not enough space on the box" in one_line_error(proc)
        assert listing(machine, small) == []
        server.no_length.add("/unsized.bin")  # no size up front: the disk fills mid-download
        unsized = server.add("/unsized.bin", os.urandom(3 * MB))
        proc = padlab(box["home"], "get", "box", unsized, "--to", "small", check=False)
        assert "disk filled up" in one_line_error(proc)
        assert listing(machine, small) == []
    finally:
        machine.exec(f"umount {small}")


def test_unsafe_archive_is_refused(box) -> None:
    machine = box["machine"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name in ("data/ok.txt", "../../escaped.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tf.addfile(info, io.BytesIO(b"hi"))
    url = box["server"].add("/evil.tar.gz", buf.getvalue())
    proc = padlab(box["home"], "get", "box", url, "--to", "archives", "--unpack", check=False)
    assert "refused to unpack evil.tar.gz" in one_line_error(proc)
    assert listing(machine, f"{NB}/archives") == ["evil.tar.gz"]  # kept, nothing unpacked
    assert machine.exec("ls /home/escaped.txt /home/padlab/escaped.txt", check=False).returncode != 0
    jobs = json.loads(padlab(box["home"], "get", "box", "--list", "--json").stdout)
    (job,) = [j for j in jobs if j["url"] == url]
    assert job["state"] == "failed" and job["code"] == "unsafe_archive"


def test_push_pull_round_trip_resumes_a_partial(box, tmp_path) -> None:
    machine, home = box["machine"], box["home"]
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(24 * MB))
    want = hashlib.sha256(src.read_bytes()).hexdigest()
    slow = subprocess.Popen(
        [sys.executable, "-m", "padlab", "push", "box", str(src), "up/", "--bwlimit", "2000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=padlab_env(home),
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # rsync's temporary file on the box passes 3 MB
        sizes = machine.exec(f"find {NB}/up -type f -printf '%s\\n'", check=False).stdout.split()
        if any(int(s) > 3 * MB for s in sizes):
            break
        time.sleep(0.3)
    os.killpg(slow.pid, signal.SIGINT)  # Ctrl-C
    slow.wait(timeout=60)
    partial = int(machine.exec(f"stat -c %s {NB}/up/.rsync-partial/big.bin").stdout)
    assert 0 < partial < src.stat().st_size
    assert machine.exec(f"test -e {NB}/up/big.bin", check=False).returncode != 0  # not under its name yet
    out = json.loads(padlab(home, "push", "box", str(src), "up/", "--json").stdout)
    assert out["literal_bytes"] < src.stat().st_size - partial // 2  # the partial was reused
    assert box_sha256(machine, f"{NB}/up/big.bin") == want
    back = tmp_path / "back"
    back.mkdir()
    padlab(home, "pull", "box", "up/big.bin", str(back))
    assert hashlib.sha256((back / "big.bin").read_bytes()).hexdigest() == want
    assert "must stay inside" in one_line_error(padlab(home, "push", "box", str(src), "../x", check=False))


def test_reboot_mid_download_resumes_on_the_next_get(box) -> None:
    machine, server, home = box["machine"], box["server"], box["home"]
    data = os.urandom(4 * MB)
    url = server.add("/reboot.bin", data)
    server.rate = 1 * MB
    try:
        first = start_get(home, url)
        wait_for_bytes(first)
        server.flowing.clear()
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        machine.reboot()
        close_connection(home, machine)
        server.flowing.set()
        jobs = json.loads(padlab(home, "get", "box", "--list", "--json").stdout)
        assert [j["state"] for j in jobs if j["url"] == url] == ["interrupted"]
    finally:
        server.rate = None
        server.flowing.set()
    result = json.loads(padlab(home, "get", "box", url, "--json").stdout.splitlines()[-1])
    last = server.requests_for("/reboot.bin")[-1]
    assert last["range"] and last["status"] == 206 and last["start"] > 0  # resumed, not from zero
    assert box_sha256(machine, result["dest"]) == hashlib.sha256(data).hexdigest()
