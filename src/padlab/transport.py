"""Run the box program here or over ssh, with the same request/report interface.

The program is padlab.box packed as a zip (``padlab_box``) and sent on
stdin together with the request, so one process (or one ssh session) does a
whole action and nothing needs to be installed on the box first.
"""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import sys
import threading
from functools import lru_cache
from typing import Any, Callable, Protocol

from padlab.errors import PadlabError

# Called with each event the box streams; for a question (event "ask", box/report.Report.ask) what it
# returns is the answer, sent back on the box's stdin.
EventHandler = Callable[[dict], "dict | None"]
# Turns a run that produced no report (exit code, stderr lines) into a clear error, or None.
Explain = Callable[[int, list], "PadlabError | None"]

# Runs on the box. Root's compiled copy of this very program (box/bootstrap.compiled_program, named
# by its hash) is imported when root owns it and every folder above it: compiling the sources
# would take half of a no-op `up`. Else the zip goes to a temporary file and compiles there.
# (binascii, not base64: base64 imports re.)
LOADER = (
    "import sys,os,stat,binascii,json,hashlib\n"
    "z=binascii.a2b_base64(sys.stdin.buffer.readline())\n"
    "r=json.loads(sys.stdin.buffer.readline())\n"
    # The client's answers (box/report.Report.ask) come on the pipe, now sys.stdin; the commands the
    # program runs read /dev/null, never the pipe, so none waits on it or takes an answer.
    "f=os.dup(0);n=os.open(os.devnull,os.O_RDONLY);os.dup2(n,0);os.close(n);sys.stdin=os.fdopen(f)\n"
    "d='/var/lib/padlab/program'\n"  # box/system.PROGRAM_DIR
    "c='%s/%s-%s.pyz'%(d,hashlib.sha256(z).hexdigest(),sys.implementation.cache_tag)\n"
    "def o(q):\n"
    " s=os.stat(q)\n"
    " return s.st_uid==0 and not s.st_mode&0o022\n"
    "try:\n"
    " p=None if stat.S_ISREG(os.lstat(c).st_mode) and all(map(o,(c,d,os.path.dirname(d),'/var/lib','/var'))) else 1\n"
    "except OSError:\n"
    " p=1\n"
    "if p:\n"
    " import tempfile\n"
    " f,p=tempfile.mkstemp(suffix='.pyz')\n"
    " os.write(f,z);os.close(f)\n"
    " c=p\n"
    "sys.path.insert(0,c)\n"
    "try:\n"
    " from padlab_box.__main__ import run\n"
    " x=run(r,z)\n"
    "finally:\n"
    " p and os.unlink(p)\n"
    # The report is out and every file closed (the program's one thread, bootstrap.Alongside, is
    # joined): the interpreter's teardown of its modules would only add ~5 ms of CPU to each call.
    "sys.stdout.flush();sys.stderr.flush()\n"
    "os._exit(x)\n"
)


@lru_cache(maxsize=1)
def program() -> bytes:
    """padlab.box as a reproducible zip: same bytes for the same code, so re-runs see no change.

    Kept in padlab's data folder under a name made of the files' names, sizes and times:
    compressing it takes a no-op `up` 9 ms, reading it back 0.1 ms."""
    from pathlib import Path

    folder: Any = Path(__file__).with_name("box")
    if not folder.is_dir():  # padlab in a zip: importlib.resources reads it (importing it costs ~2 ms)
        from importlib import resources

        folder = resources.files("padlab.box")
    entries = sorted(_files(folder, "padlab_box/"), key=lambda x: x[0])
    if not all(isinstance(e, Path) for _, e in entries):
        return _zip(entries)
    import hashlib

    from padlab import paths

    stats = [(name, e.stat().st_size, e.stat().st_mtime_ns) for name, e in entries]
    key = hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:32]
    cache = paths.data_dir() / "cache"
    kept = cache / f"box-program-{key}.zip"
    try:
        return kept.read_bytes()
    except OSError:
        pass
    data = _zip(entries)
    with contextlib.suppress(OSError):  # a cache: a read-only home only makes padlab slower
        from padlab import fileio

        paths.ensure_private_dir(cache)
        for old in cache.glob("box-program-*.zip"):
            old.unlink()
        fileio.write_atomic(kept, data)
    return data


def _files(folder: Any, prefix: str) -> list:
    """(name in the zip, entry): the code and the locks, subpackages included, no caches."""
    out = []
    for entry in folder.iterdir():
        if entry.is_dir():
            if entry.name != "__pycache__":
                out += _files(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith((".py", ".txt")):
            out.append((prefix + entry.name, entry))
    return out


def _zip(entries: list) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, entry in entries:  # the code and its locks
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, entry.read_bytes())
    return buf.getvalue()


class Transport(Protocol):
    def call(self, request: dict[str, Any], on_event: EventHandler | None = None) -> dict[str, Any]: ...


def run_program(
    argv: list[str],
    request: dict[str, Any],
    on_event: EventHandler | None,
    where: str,
    explain: Explain | None = None,
    env: dict[str, str] | None = None,
) -> dict:
    """Feed program + request to argv; stream stage events and answer the box's questions; return
    the box's report or raise. stdin stays open until the box exits: answers go there."""
    payload = base64.b64encode(program()) + b"\n" + json.dumps(request).encode() + b"\n"
    # Its own session and process group: an interrupt ends the program and its children (venv,
    # pip, apt) together, and only through padlab, which then records the interruption.
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    other: list[str] = []
    failed: list[BaseException] = []  # raised by on_event in the pump: raised again after the box ends

    def pump() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            # An event can follow what a command the box ran left without a newline on the same
            # stream: an ask missed there would leave the box waiting for its answer.
            at = line.find('{"event"')
            if at >= 0:
                if line[:at].strip():
                    other.append(line[:at])
                try:
                    event = json.loads(line[at:])
                except ValueError:
                    other.append(line)
                    continue
                answer = None
                try:
                    answer = on_event(event) if on_event and not failed else None
                except BaseException as exc:  # noqa: BLE001 (the box still gets an answer: {})
                    failed.append(exc)
                if event.get("event") == "ask":
                    answer_box(json.dumps(answer or {}).encode() + b"\n")
            elif line:
                other.append(line)

    def answer_box(line: bytes) -> None:
        assert proc.stdin is not None
        with contextlib.suppress(OSError, ValueError):  # the box went (closed pipe): its report says why
            proc.stdin.write(line)
            proc.stdin.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    assert proc.stdin is not None and proc.stdout is not None
    try:
        # Not communicate(): it would also read stderr, racing the event pump.
        # The box reads its two lines before it writes, so this cannot deadlock.
        answer_box(payload)
        out = proc.stdout.read()
        proc.wait()
    except KeyboardInterrupt:
        end_group(proc)
        raise
    finally:
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()
    reader.join(timeout=5)
    if failed:
        raise failed[0]
    return parse_report(out, proc.returncode, other, where, explain)


def end_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGINT to the program's whole process group (it reports the interruption and removes its
    temporary copy), then SIGTERM and SIGKILL to what is left, `grace` seconds apart."""
    import os
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; children that ignored SIGTERM still share its group id.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return


def parse_report(
    out: bytes, code: int, stderr_lines: list[str], where: str, explain: Explain | None = None
) -> dict:
    lines = out.decode(errors="replace").strip().splitlines()
    if lines:
        try:
            report = json.loads(lines[-1])
        except ValueError:
            report = None
        if isinstance(report, dict):
            if not report.get("ok"):
                raise BoxFailure(report)
            return report
    known = explain(code, stderr_lines) if explain else None
    if known is not None:
        raise known
    tail = stderr_lines[-1] if stderr_lines else f"exit code {code}"
    raise PadlabError(
        f"the padlab program on {where} failed: {tail}",
        "run the command again; if it repeats, see `padlab logs`",
    )


class BoxFailure(PadlabError):
    """The box program's own clear error, with its machine-readable code."""

    def __init__(self, report: dict) -> None:
        super().__init__(report.get("error", "failed"), report.get("fix", ""))
        self.code = report.get("code", "error")


class LocalTransport:
    """This machine: the box program runs as a child process of padlab."""

    def call(self, request: dict[str, Any], on_event: EventHandler | None = None) -> dict[str, Any]:
        import os

        # uv ships with padlab; put it on the PATH of the box program for fast installs.
        bindir = os.path.dirname(sys.executable)
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
        return run_program([sys.executable, "-c", LOADER], request, on_event, "this machine", env=env)


class SshTransport:
    """A machine reached with the system's OpenSSH client: one ssh session per action.

    The shared connection is opened first (``padlab.ssh.ensure_master``), so host
    key, login and reachability problems come out as one clear line; the action
    then rides on it with ``python3 -c LOADER`` on the box.
    """

    def __init__(self, target: Any) -> None:
        self.target = target  # padlab.ssh.Target

    def call(self, request: dict[str, Any], on_event: EventHandler | None = None) -> dict[str, Any]:
        from padlab import ssh

        ssh.ensure_master(self.target)
        argv = ssh.command(self.target, ssh.remote_python(LOADER), master="no")

        def explain(code: int, lines: list) -> PadlabError | None:
            return ssh.explain_failure(self.target, code, lines)

        return run_program(argv, request, on_event, self.target.display, explain)
