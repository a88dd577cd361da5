"""A real panel process over HTTPS in front of a real local workstation, for the browser tests."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.helpers import PASSWORD, free_port, padlab, padlab_env

IPAD = {
    "width": 820,
    "height": 1180,
    "user_agent": "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
}


def ipad_context(browser, **extra: Any):
    """A Playwright context that is an iPad: its viewport, touch screen and user agent, dark (the
    panel's screenshots show its dark theme; Jupyter's pages ignore it)."""
    options = {
        "viewport": {"width": IPAD["width"], "height": IPAD["height"]},
        "device_scale_factor": 1,
        "is_mobile": True,
        "has_touch": True,
        "user_agent": IPAD["user_agent"],
        "color_scheme": "dark",
    }
    return browser.new_context(**{**options, **extra})


def stopped_workstation(base: Path) -> dict[str, Any]:
    """A local workstation set up once by the CLI (its Jupyter password set), then stopped."""
    home = base / "padlab-home"
    port = free_port()
    padlab(home, "init", "lab", "--provider", "local", "--port", str(port), "--root-dir", str(base / "nb"))
    padlab(home, "up", "--password-stdin", input=PASSWORD + "\n")
    padlab(home, "down")
    return {"home": home, "port": port}


def jupyter_log(home: Path, lines: int = 40) -> str:
    """The tail of the workstation's Jupyter log, for a failure message about a notebook that did nothing."""
    proc = padlab(home, "logs", "lab", "--lines", str(lines), check=False)
    return (proc.stdout or proc.stderr).strip()


def wait_listening(home: Path, port: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Until the panel answers a TLS handshake padlab's CA verifies (event-driven, not a sleep)."""
    import socket
    import ssl

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"padlab panel exited: {proc.stderr.read() if proc.stderr else ''}")
        with (
            contextlib.suppress(OSError),
            # the panel makes padlab's CA on its first run
            socket.create_connection(("127.0.0.1", port), timeout=2) as sock,
            ssl.create_default_context(cafile=str(home / "ca" / "padlab-ca.pem")).wrap_socket(
                sock, server_hostname="127.0.0.1"
            ),
        ):
            return
        time.sleep(0.2)
    raise AssertionError("padlab panel did not start listening")


@contextlib.contextmanager
def panel_server(
    ws: dict[str, Any], *names: str, allow_api_urls: tuple[str, ...] = ()
) -> Iterator[dict[str, Any]]:
    """`padlab panel` in the foreground, as a user runs it; stopped (and its workstation) at the end.

    allow_api_urls: a fake cloud's URL, which the panel otherwise refuses to send a key to."""
    home = ws["home"]
    port = free_port()
    argv = [sys.executable, "-m", "padlab", "panel", "--listen", "127.0.0.1", "--port", str(port)]
    for name in names:
        argv += ["--name", name]
    for url in allow_api_urls:
        argv += ["--allow-api-url", url]
    proc = subprocess.Popen(
        [*argv, "--password-stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=padlab_env(home),
    )
    proc.stdin.write(PASSWORD + "\n")
    proc.stdin.close()
    try:
        wait_listening(home, port, proc)
        yield {
            "home": home,
            "port": port,
            "url": f"https://127.0.0.1:{port}/",
            "ca": str(home / "ca" / "padlab-ca.pem"),
        }
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        padlab(home, "down", check=False)
