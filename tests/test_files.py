"""padlab get / push / pull on this machine (local provider) against a real HTTP server on loopback.

The same box program runs here as on remote boxes (tests/test_files_testbed.py
covers those over ssh, with systemd units): the job is a detached process here.
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

from padlab.box.autostop import activity
from padlab.box.files import jobs
from tests.helpers import one_line_error, padlab, padlab_env
from tests.rangeserver import RangeServer

MB = 1_000_000


@pytest.fixture
def lab(tmp_path: Path) -> dict:
    home = tmp_path / "home"
    nb = tmp_path / "nb"
    padlab(home, "init", "lab", "--provider", "local", "--root-dir", str(nb))
    return {"home": home, "nb": nb, "jobs": home / "boxes" / "lab" / "downloads"}


@pytest.fixture
def server() -> Iterator[RangeServer]:
    with RangeServer() as srv:
        yield srv


def get_json(home: Path, *args: str, check: bool = True) -> tuple[list[dict], subprocess.CompletedProcess]:
    proc = padlab(home, "get", "lab", *args, "--json", check=check)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()], proc


def test_dropped_connection_resumes_from_where_it_stopped(lab, server) -> None:
    data = os.urandom(5 * MB)
    url = server.add("/data.bin", data)
    server.drop_after["/data.bin"] = 2 * MB
    lines, _ = get_json(lab["home"], url, "--sha256", hashlib.sha256(data).hexdigest())
    result = lines[-1]
    assert result["ok"] and result["bytes"] == len(data) and result["changed"] is True
    assert (lab["nb"] / "datasets" / "data.bin").read_bytes() == data
    assert not (lab["nb"] / "datasets" / "data.bin.part").exists()
    first, second = server.requests_for("/data.bin")
    assert first["range"] is None and first["status"] == 200
    assert second["range"] == f"bytes={2 * MB}-" and second["status"] == 206
    assert second["if_range"] == server.etags["/data.bin"]
    assert server.sent["/data.bin"] == len(data)  # not one byte fetched twice
    assert any(ev.get("note", "") and "retrying" in ev["note"] for ev in lines[:-1])


def test_a_file_changed_on_the_server_is_fetched_whole_not_spliced(lab, server) -> None:
    old, new = os.urandom(3 * MB), os.urandom(3 * MB)
    url = server.add("/f.bin", old)
    server.drop_after["/f.bin"] = MB
    home = lab["home"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "padlab", "get", "lab", url, "--json"],
        stdout=subprocess.PIPE,
        text=True,
        env=padlab_env(home),
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # the runner waits about a second before it retries
        if "retrying" in line:
            server.add("/f.bin", new)
            break
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert (lab["nb"] / "datasets" / "f.bin").read_bytes() == new
    retry = server.requests_for("/f.bin")[1]
    assert retry["if_range"] and retry["status"] == 200  # If-Range no longer matched: whole file


def change_while_it_retries(home: Path, server: RangeServer, url: str, path: str, new: bytes) -> str:
    """Run `get`; when the first connection has dropped, put `new` at path; returns get's output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "padlab", "get", "lab", url, "--json"],
        stdout=subprocess.PIPE,
        text=True,
        env=padlab_env(home),
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # the runner waits about a second before it retries
        if "retrying" in line:
            server.add(path, new)
            break
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return out


def test_without_a_validator_a_resume_starts_over_rather_than_splice(lab, server) -> None:
    """No strong ETag, no Last-Modified: nothing tells an unchanged file from a changed one."""
    old, new = os.urandom(3 * MB), os.urandom(3 * MB)
    url = server.add("/nv.bin", old)
    server.no_validators.add("/nv.bin")
    server.drop_after["/nv.bin"] = MB
    change_while_it_retries(lab["home"], server, url, "/nv.bin", new)
    assert (lab["nb"] / "datasets" / "nv.bin").read_bytes() == new
    retry = server.requests_for("/nv.bin")[1]
    assert retry["range"] is None and retry["status"] == 200


def test_a_range_of_a_file_whose_size_changed_is_refused_and_it_starts_over(lab, server) -> None:
    """A server that ignores If-Range sends 206 for a file that changed: its total gives it away."""
    old, new = os.urandom(3 * MB), os.urandom(4 * MB)
    url = server.add("/grew.bin", old)
    server.ignore_if_range.add("/grew.bin")
    server.drop_after["/grew.bin"] = MB
    change_while_it_retries(lab["home"], server, url, "/grew.bin", new)
    assert (lab["nb"] / "datasets" / "grew.bin").read_bytes() == new
    statuses = [r["status"] for r in server.requests_for("/grew.bin")]
    assert statuses[:2] == [200, 206] and statuses[-1] == 200  # the 206 was refused, then whole
    [log] = lab["jobs"].glob("*/log")
    assert "size changed on the server" in log.read_text()


def test_wrong_checksum_saves_nothing(lab, server) -> None:
    url = server.add("/w.bin", os.urandom(MB))
    proc = padlab(lab["home"], "get", "lab", url, "--sha256", "0" * 64, check=False)
    assert "SHA-256 mismatch" in one_line_error(proc)
    assert sorted(os.listdir(lab["nb"] / "datasets")) == []


def test_killed_client_leaves_the_job_running_and_a_rerun_reattaches(lab, server) -> None:
    data = os.urandom(4 * MB)
    url = server.add("/slow.bin", data)
    server.rate = 1 * MB
    first = start_get(lab["home"], url)
    wait_for_bytes(first)
    server.flowing.clear()  # the job stays mid-file until the re-run has attached
    os.killpg(first.pid, signal.SIGKILL)  # the client and its box program, as a closed terminal would
    first.wait()
    (job,) = jobs.all_jobs(str(lab["jobs"]))
    assert job["state"] == "running"
    again = start_get(lab["home"], url)
    wait_for_bytes(again)
    server.flowing.set()
    out, _ = again.communicate(timeout=120)
    result = json.loads(out.splitlines()[-1])
    assert result["attached"] is True and result["changed"] is False
    assert (lab["nb"] / "datasets" / "slow.bin").read_bytes() == data
    assert len(server.requests_for("/slow.bin")) == 1  # one request: it never started again


def start_get(home: Path, url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "padlab", "get", "lab", url, "--json"],
        stdout=subprocess.PIPE,
        text=True,
        env=padlab_env(home),
        start_new_session=True,
    )


def wait_for_bytes(proc: subprocess.Popen) -> None:
    """Read the client's JSON lines until the download has bytes."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if json.loads(line).get("bytes", 0) > 0:
            return
    raise AssertionError("the client ended before any bytes arrived")


def test_a_running_download_is_activity_for_autostop(lab, server) -> None:
    url = server.add("/act.bin", os.urandom(3 * MB))
    server.rate = 1 * MB
    proc = subprocess.Popen(
        [sys.executable, "-m", "padlab", "get", "lab", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=padlab_env(lab["home"]),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = jobs.all_jobs(str(lab["jobs"]))
        if found and found[0]["state"] == "running" and found[0].get("bytes"):
            break
        time.sleep(0.1)
    (signal_now,) = activity.downloads(str(lab["jobs"]), time.time())
    assert signal_now.active and "act.bin running" in signal_now.detail
    assert proc.wait(timeout=120) == 0
    (after,) = activity.downloads(str(lab["jobs"]), time.time())
    assert not after.active and after.at and after.at <= time.time()


def test_unpack_then_rerun_changes_nothing(lab, server) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        info = tarfile.TarInfo("pets/a.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"cat"))
    url = server.add("/pets.tgz", buf.getvalue())
    lines, _ = get_json(lab["home"], url, "--unpack")
    assert lines[-1]["unpacked"] == ["pets"]
    assert (lab["nb"] / "datasets" / "pets" / "a.txt").read_text() == "cat"
    again, _ = get_json(lab["home"], url, "--unpack")
    assert again[-1]["changed"] is False and len(server.requests_for("/pets.tgz")) == 1


def test_never_overwrites_a_file_already_there(lab, server) -> None:
    url = server.add("/mine.csv", b"theirs")
    (lab["nb"] / "datasets").mkdir(parents=True)
    (lab["nb"] / "datasets" / "mine.csv").write_text("mine")
    _, proc = get_json(lab["home"], url, check=False)
    assert "already exists" in one_line_error(proc)
    assert (lab["nb"] / "datasets" / "mine.csv").read_text() == "mine"


def test_list_shows_finished_and_failed_downloads(lab, server) -> None:
    good = server.add("/good.bin", b"x" * 1000)
    get_json(lab["home"], good)
    get_json(lab["home"], server.url("/missing.bin"), check=False)
    proc = padlab(lab["home"], "get", "lab", "--list", "--json")
    states = {Path(j["dest"]).name: j["state"] for j in json.loads(proc.stdout)}
    assert states == {"good.bin": "done", "missing.bin": "failed"}
    assert "good.bin" in padlab(lab["home"], "get", "lab", "--list").stdout


@pytest.mark.parametrize(
    "args,words",
    [
        (["ftp://example.com/x.bin"], "not an http(s) URL"),
        (["http://127.0.0.1:9/dir/"], "does not end with a file name"),
        (["http://127.0.0.1:9/x.bin", "--to", "../up"], "must stay inside the notebook folder"),
        (["http://127.0.0.1:9/x.bin", "--to", "/etc"], "must stay inside the notebook folder"),
        (["http://127.0.0.1:9/x.bin", "--sha256", "abc"], "64 hexadecimal digits"),
        (["http://127.0.0.1:9/x.bin", "--unpack"], "--unpack knows"),
    ],
)
def test_bad_arguments_are_one_line_errors(lab, args, words) -> None:
    proc = padlab(lab["home"], "get", "lab", *args, check=False)
    assert words in one_line_error(proc)


def test_push_and_pull_copy_on_this_machine(lab, tmp_path) -> None:
    src = tmp_path / "local" / "notes.txt"
    src.parent.mkdir()
    src.write_text("hello")
    padlab(lab["home"], "push", "lab", str(src), "inbox/")
    assert (lab["nb"] / "inbox" / "notes.txt").read_text() == "hello"
    back = tmp_path / "back"
    back.mkdir()
    out = json.loads(padlab(lab["home"], "pull", "lab", "inbox/notes.txt", str(back), "--json").stdout)
    assert (back / "notes.txt").read_text() == "hello" and out["to"] == str(back / "notes.txt")
    proc = padlab(lab["home"], "pull", "lab", "../escape", str(back), check=False)
    assert "must stay inside the notebook folder" in one_line_error(proc)
