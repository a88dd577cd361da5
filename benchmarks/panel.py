"""The panel's main page with 10 profiles: median time per request, and the panel's resident memory.

Goal: median at most 50 ms. It runs the real `padlab panel` (uvicorn, HTTPS) on loopback with
10 local profiles that are not running, signs in, then loads `/` over one kept-alive connection:
first each load right after the 5 s status cache expired (every profile's status computed), then
steady reloads (cached). Memory is VmRSS of the panel process after the loads.
Run: python benchmarks/panel.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PASSWORD = "violet-harbor-lantern-quartz"
PROFILES = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_up(ca: Path, port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("padlab panel exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                ssl.create_default_context(cafile=str(ca)).wrap_socket(
                    sock, server_hostname="127.0.0.1"
                ).close()
                return
        except OSError:
            time.sleep(0.2)
    sys.exit("padlab panel did not start")


def rss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = dict(os.environ, PADLAB_HOME=str(home))
        for i in range(PROFILES):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "padlab",
                    "init",
                    f"ws-{i}",
                    "--provider",
                    "local",
                    "--port",
                    str(9000 + i),
                ],
                env=env,
                check=True,
                capture_output=True,
            )
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "padlab",
                "panel",
                "--listen",
                "127.0.0.1",
                "--port",
                str(port),
                "--password-stdin",
            ],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        proc.stdin.write(PASSWORD + "\n")
        proc.stdin.close()
        try:
            wait_up(home / "ca" / "padlab-ca.pem", port, proc)
            url = f"https://127.0.0.1:{port}/"
            rss_idle = rss_mib(proc.pid)
            verify = ssl.create_default_context(cafile=str(home / "ca" / "padlab-ca.pem"))
            with httpx.Client(verify=verify, base_url=url) as client:
                login = client.get("/login")
                csrf = re.search(r'name="csrf" value="([^"]+)"', login.text).group(1)
                client.post("/login", data={"csrf": csrf, "password": PASSWORD, "next": "/"})
                assert client.get("/").text.count('<article class="card"') == PROFILES
                cold, warm = [], []
                for _ in range(max(3, args.runs // 10)):
                    time.sleep(5.1)  # past the status cache
                    t0 = time.perf_counter()
                    client.get("/").raise_for_status()
                    cold.append(time.perf_counter() - t0)
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    client.get("/").raise_for_status()
                    warm.append(time.perf_counter() - t0)
            rss = rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(
        f"main page, {PROFILES} profiles, cached status (steady reloads): median {statistics.median(warm) * 1000:.1f} ms "
        f"over {len(warm)} loads (goal <= 50 ms)"
    )
    print(
        f"main page, {PROFILES} profiles, status recomputed:              median {statistics.median(cold) * 1000:.1f} ms "
        f"over {len(cold)} loads"
    )
    print(f"panel resident memory: {rss_idle:.0f} MiB at start, {rss:.0f} MiB after the loads")


if __name__ == "__main__":
    main()
