"""A small Jupyter client over HTTPS: log in with the password, run code in a kernel.

doctor uses it to check a workstation as the iPad would see it, and the tests
use it against real servers.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from padlab.errors import PadlabError


@dataclass
class ExecResult:
    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    error: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)


class _Socket:
    """JSON messages over a websockets connection, with a per-call timeout."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    def send_json(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def receive_json(self, timeout: float) -> dict[str, Any]:
        try:
            return json.loads(self.ws.recv(timeout=timeout))
        except TimeoutError as exc:
            raise PadlabError("the kernel did not answer in time", "check the kernel's log") from exc


# Jupyter answers the websocket handshake once a new kernel is ready: seconds, more on a busy box.
# It waits at most 60 s for the kernel to be alive and 60 s for its kernel_info reply
# (kernel_info_timeout), then answers anyway: waiting longer means it always answers first, so
# the kernel's own slowness shows up in the reply timeouts instead.
OPEN_TIMEOUT = 150.0
# The closing handshake: websockets waits this long for the server's close frame.
CLOSE_TIMEOUT = 10.0
# Past the close timeout, the connection is cut: the longest a channel outlives its own deadline.
CLOSE_GRACE = CLOSE_TIMEOUT + 5.0


def _cut(sock: socket.socket) -> None:
    """Shut the TCP connection down under every thread that uses it.

    websockets' sync client reads in a thread that sits in a blocking TLS read whenever a record
    arrived that held no data for it (TLS 1.3 session tickets, a partial record), and its close()
    and failed handshakes join that thread with no timeout: closing the descriptor does not wake
    a blocked read on Linux, shutdown() does. So a server that stops answering hung the client
    forever (doctor ran into the test's 10 minute limit).
    """
    with contextlib.suppress(OSError):  # already shut or closed
        sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """Cuts a connection when its current phase outlives its limit."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.timer: threading.Timer | None = None

    def arm(self, seconds: float) -> None:
        self.disarm()
        self.timer = threading.Timer(seconds, _cut, (self.sock,))
        self.timer.daemon = True
        self.timer.start()

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer.join()  # a cut in progress ends before the descriptor is closed


def ssl_context(ca_file: str) -> ssl.SSLContext:
    """Trust padlab's CA and nothing else: what a device with the CA profile installed does."""
    return ssl.create_default_context(cafile=ca_file)


class NotebookClient:
    def __init__(self, base_url: str, ca_file: str, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.ca_file = ca_file
        self.http = httpx.Client(base_url=self.base_url, verify=ssl_context(ca_file), timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> NotebookClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def xsrf(self) -> str:
        return self.http.cookies.get("_xsrf") or ""

    def login(self, password: str) -> bool:
        """True when Jupyter accepted the password (it then sets its login cookie)."""
        page = self.http.get("/login")
        page.raise_for_status()
        resp = self.http.post(
            "/login", data={"password": password, "_xsrf": self.xsrf}, follow_redirects=False
        )
        if resp.status_code not in (302, 303):
            return False
        return self.http.get("/api/status").status_code == 200

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        headers["X-XSRFToken"] = self.xsrf
        return self.http.request(method, "/api" + path, headers=headers, **kwargs)

    def start_kernel(self, name: str = "python3") -> str:
        resp = self.api("POST", "/kernels", json={"name": name})
        resp.raise_for_status()
        return resp.json()["id"]

    def shutdown_kernel(self, kernel_id: str) -> None:
        self.api("DELETE", f"/kernels/{kernel_id}")

    @contextmanager
    def channel(self, kernel_id: str, timeout: float = 3600.0) -> Iterator[_Socket]:
        """An open websocket to the kernel: what a notebook open in a browser or Juno holds.

        Every wait is bounded: the handshake by OPEN_TIMEOUT, the use by `timeout`, the close by
        CLOSE_GRACE. Past them the connection is cut (see _cut), so a server that goes silent
        ends in an error, never a hang.
        """
        from websockets.sync.client import connect

        ws_url = self.base_url.replace("https://", "wss://", 1)
        where = urlsplit(self.base_url)
        headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.http.cookies.items()),
            "X-XSRFToken": self.xsrf,
        }
        try:
            sock = socket.create_connection((where.hostname, where.port or 443), timeout=OPEN_TIMEOUT)
        except OSError as exc:
            raise PadlabError(
                f"cannot reach the kernel's websocket: {exc}", "check the box: padlab doctor"
            ) from exc
        guard = sock.dup()  # the same connection, for _cut; our own descriptor, never reused
        watchdog = _Watchdog(guard)
        try:
            watchdog.arm(OPEN_TIMEOUT + 5.0)  # websockets' own handshake limit, then its join
            try:
                ws = connect(
                    f"{ws_url}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}",
                    sock=sock,
                    ssl=ssl_context(self.ca_file),
                    server_hostname=where.hostname,
                    additional_headers=headers,
                    max_size=None,
                    open_timeout=OPEN_TIMEOUT,
                    close_timeout=CLOSE_TIMEOUT,
                )
            except TimeoutError as exc:
                raise PadlabError(
                    "the kernel's websocket did not open in time", "check the kernel's log"
                ) from exc
            # websockets' close() joins its reader thread, so no stray reader is left on a
            # file descriptor that the next connection may reuse (it corrupted TLS streams).
            with ws:
                watchdog.arm(timeout + CLOSE_GRACE)
                try:
                    yield _Socket(ws)
                except BaseException:
                    _cut(guard)  # the server did not answer in time: no polite close to wait for
                    raise
                finally:
                    watchdog.arm(CLOSE_GRACE)  # for the closing handshake, in the with's exit
        finally:
            watchdog.disarm()
            guard.close()

    @contextmanager
    def kernel(self, kernel_id: str, timeout: float) -> Iterator[Kernel]:
        """One websocket for several runs of code (``timeout``: for all of them together), its
        output channel live before the first (_iopub_live); one handshake, not one per run."""
        with self.channel(kernel_id, timeout) as ws:
            _iopub_live(ws, timeout)
            yield Kernel(ws)

    def start(self, kernel_id: str, code: str, timeout: float = 30.0) -> None:
        """Start code and disconnect once the kernel reports busy: the cell runs on without a client."""
        with self.channel(kernel_id, timeout) as ws:
            _iopub_live(ws, timeout)
            msg_id = _send_code(ws, code)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                msg = ws.receive_json(timeout=max(deadline - time.monotonic(), 0.1))
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if msg.get("msg_type") == "status" and msg["content"].get("execution_state") == "busy":
                    return
        raise PadlabError("the kernel did not start running the code in time", "check the kernel's log")

    def execute(self, kernel_id: str, code: str, timeout: float = 60.0) -> ExecResult:
        """Run code on its own websocket and gather its output until idle."""
        with self.kernel(kernel_id, timeout) as kernel:
            return kernel.execute(code, timeout)


def _send(ws: _Socket, msg_type: str, content: dict[str, Any]) -> str:
    """Send one request on the shell channel; returns its msg_id."""
    msg_id = uuid.uuid4().hex
    ws.send_json(
        {
            "header": {
                "msg_id": msg_id,
                "username": "padlab",
                "session": uuid.uuid4().hex,
                "msg_type": msg_type,
                "version": "5.3",
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": "shell",
            "buffers": [],
        }
    )
    return msg_id


def _send_code(ws: _Socket, code: str) -> str:
    content = {
        "code": code,
        "silent": False,
        "store_history": False,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    return _send(ws, "execute_request", content)


IOPUB_ASK_S = 1.0  # how long one kernel_info_request waits for output before another is sent


def _iopub_live(ws: _Socket, timeout: float) -> None:
    """Wait until this websocket gets the kernel's output (iopub), asking kernel_info (no side effect)
    until a message comes: a new websocket is a new iopub subscription, which jupyter_server checks
    ("nudge") only while it counts the kernel idle; code sent before the subscription is live loses
    its output, and the wait for it runs out (seen in CI on freshly started kernels)."""
    deadline = time.monotonic() + timeout
    while True:
        _send(ws, "kernel_info_request", {})
        until = min(time.monotonic() + IOPUB_ASK_S, deadline)
        while (left := until - time.monotonic()) > 0:
            try:
                msg = ws.receive_json(timeout=left)
            except PadlabError:
                break  # this ask got no output: ask again
            if msg.get("channel") == "iopub":
                return
        if time.monotonic() >= deadline:
            raise PadlabError("the kernel's output never reached padlab in time", "check the kernel's log")


class Kernel:
    """A kernel's open websocket (NotebookClient.kernel): runs code, one piece after another."""

    def __init__(self, ws: _Socket) -> None:
        self.ws = ws

    def execute(self, code: str, timeout: float = 60.0) -> ExecResult:
        """Send the code and gather its output until the kernel is idle again."""
        result = ExecResult()
        msg_id = _send_code(self.ws, code)
        deadline = time.monotonic() + timeout  # for the code: the handshake has its own limit
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PadlabError("the kernel did not finish running the code in time", "check the kernel's log")
            msg = self.ws.receive_json(timeout=remaining)
            if msg.get("parent_header", {}).get("msg_id") != msg_id or msg.get("channel") != "iopub":
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind in ("execute_result", "display_data"):
                result.outputs.append(content.get("data", {}))
                if kind == "execute_result":
                    result.result = content.get("data", {}).get("text/plain")
            elif kind == "error":
                result.error = f"{content.get('ename')}: {content.get('evalue')}"
            elif kind == "status" and content.get("execution_state") == "idle":
                return result
