"""Footprint of one autostop check: wall time and peak RSS of the agent process, as the timer runs it.

It sets up a local workstation (real Jupyter) with autostop on, then runs the
installed runner (`padlab-agent check CONFIG`) N times, idle and with a kernel
busy. Measured on the dev box (Python 3.11): about 0.09 s and 22 MB per check.

Run from the repository root: python benchmarks/agent.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from padlab.notebook_api import NotebookClient  # noqa: E402
from tests.helpers import PASSWORD, free_port, padlab  # noqa: E402


def one_check(runner: str, config: str) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one check in a fresh process, like the systemd timer's.

    The peak is the child's own VmHWM, sampled every 2 ms: getrusage() would also count
    this (much larger) benchmark process, whose high-water mark a spawned child inherits.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen([runner, "check", config])
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.002)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"the check failed with exit code {proc.returncode}")
    return elapsed, peak / 1024


def measure(label: str, runner: str, config: str, runs: int) -> dict:
    times, rss = zip(*(one_check(runner, config) for _ in range(runs)))
    out = {
        "case": label,
        "runs": runs,
        "median_s": round(statistics.median(times), 3),
        "max_s": round(max(times), 3),
        "peak_rss_mb": round(max(rss), 1),
    }
    print(json.dumps(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        port = free_port()
        padlab(
            home,
            "init",
            "bench",
            "--provider",
            "local",
            "--port",
            str(port),
            "--root-dir",
            f"{tmp}/nb",
            "--autostop",
            "1h",
        )
        card = json.loads(padlab(home, "up", "--password-stdin", "--json", input=PASSWORD + "\n").stdout)
        agent_dir = home / "boxes" / "bench" / "agent-bench"
        runner, config = str(agent_dir / "padlab-agent"), str(agent_dir / "config.json")
        try:
            measure("idle", runner, config, args.runs)
            with NotebookClient(f"https://127.0.0.1:{port}", card["ca_cert"]) as client:
                assert client.login(PASSWORD)
                kernel = client.start_kernel()
                code = f"import time; time.sleep({args.runs * 2 + 10})"
                threading.Thread(
                    target=client.execute, args=(kernel, code), kwargs={"timeout": 600}, daemon=True
                ).start()
                time.sleep(2)
                measure("kernel busy", runner, config, args.runs)
        finally:
            padlab(home, "down", check=False)


if __name__ == "__main__":
    main()
