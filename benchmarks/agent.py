"""Footprint of the autostop agent: per check (wall time, CPU time, peak RSS) and per hour.

It sets up a local workstation (real Jupyter) with autostop on, then runs the
installed runner (`padlab-agent check CONFIG`) N times, idle and with a kernel
busy, each in a fresh process as the systemd timer runs it. The hourly figures
follow from the timer: a check starts agent.CHECK_S after the previous one started,
so an hour holds 3600 / CHECK_S checks (fewer when a check outlasts the tick). Memory is held only while a
check runs: the agent is not a daemon, so between checks it costs nothing.

Measured on the dev box (Python 3.11, 2 cores, loaded by other work): see
docs/autostop.md.

Run from the repository root: python benchmarks/agent.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from padlab.box.autostop.agent import CHECK_S  # noqa: E402
from padlab.notebook_api import NotebookClient  # noqa: E402
from tests.helpers import PASSWORD, free_port, padlab  # noqa: E402


def one_check(runner: str, config: str) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of one check in a fresh process, like the timer's.

    CPU time is the child's own (wait4). The peak is the child's own VmHWM, sampled every
    2 ms: rusage's maxrss would also count this (much larger) benchmark process, whose
    high-water mark a spawned child inherits.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen([runner, "check", config])
    peak = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            with open(f"/proc/{proc.pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.002)
    elapsed = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"the check failed with exit code {proc.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime, peak / 1024


def measure(label: str, runner: str, config: str, runs: int) -> dict:
    times, cpus, rss = zip(*(one_check(runner, config) for _ in range(runs)))
    wall, cpu = statistics.median(times), statistics.median(cpus)
    per_hour = 3600 / max(CHECK_S, wall)
    out = {
        "case": label,
        "runs": runs,
        "median_s": round(wall, 3),
        "max_s": round(max(times), 3),
        "cpu_s_per_check": round(cpu, 3),
        "peak_rss_mb": round(max(rss), 1),
        "checks_per_hour": round(per_hour),
        "cpu_s_per_hour": round(per_hour * cpu, 1),
        "cpu_percent_of_a_core": round(per_hour * cpu / 36, 2),
        # RSS held only while a check runs: its average over the hour
        "mean_rss_mb_over_an_hour": round(max(rss) * per_hour * wall / 3600, 2),
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
