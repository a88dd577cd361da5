"""Throughput of `padlab get` against curl on the same testbed box, for the same file (goal: >= 90 %).

The file is served from memory by tests/rangeserver.py on the host side of the
box's network; curl and padlab's job write to the same disk on the box. Figures:
curl's own time (also with an fsync of its file after, as padlab's job does before
its rename), the padlab job's time (its start to its rename), and
the whole `padlab get` command (ssh, starting the job, following it) as the
user waits for it. Each is the median of --runs rounds, alternating.

Run as root from the repository root: python benchmarks/get.py [--mb 300] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.rangeserver import RangeServer  # noqa: E402
from tests.testbed import Testbed  # noqa: E402

# curl on the box, timed there: to its exit, and to its file being on disk (padlab's job fsyncs
# before it renames, so "curl + fsync" is the like-for-like figure).
CURL = (
    "import os,subprocess,sys,time;p=os.path.expanduser('~/curl.bin');t=time.time();"
    "subprocess.run(['curl','-sS','-o',p,sys.argv[1]],check=True);t1=time.time();"
    "fd=os.open(p,os.O_RDONLY);os.fsync(fd);print(t1-t,time.time()-t)"
)


def padlab(home: str, *args: str) -> str:
    env = dict(os.environ, PADLAB_HOME=home)
    proc = subprocess.run([sys.executable, "-m", "padlab", *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"padlab {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=300, help="file size in MB")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.mb * 1_000_000
    curl, synced, job, wall = [], [], [], []
    with Testbed() as bed, tempfile.TemporaryDirectory() as home:
        machine = bed.machine(f"getb{os.getpid() % 10000}")
        padlab(home, "init", "bench", "--provider", "ssh", "--host", f"{machine.user}@{machine.ip}",
               "--identity", str(machine.identity))  # fmt: skip
        with RangeServer(host=machine.net.host_ip) as server:
            url = server.add("/bench.bin", os.urandom(size))
            padlab(
                home, "get", "bench", "--list"
            )  # opens the shared ssh connection, as any earlier command would
            for i in range(args.runs):
                out = machine.ssh(f"python3 -c {CURL!r} {url} && rm ~/curl.bin").stdout.split()
                curl.append(float(out[0]))
                synced.append(float(out[1]))
                t0 = time.perf_counter()
                result = json.loads(
                    padlab(home, "get", "bench", url, "--to", f"run{i}", "--json").splitlines()[-1]
                )
                wall.append(time.perf_counter() - t0)
                dl = result["download"]
                assert dl["bytes"] == size, dl
                job.append(float(dl["finished"]) - float(dl["started"]))
                machine.ssh(f"rm -rf ~/notebooks/run{i}")
    mbs = lambda s: size / s / 1e6  # noqa: E731
    c, j, w = statistics.median(curl), statistics.median(job), statistics.median(wall)
    print(f"file: {args.mb} MB, {args.runs} runs, medians")
    print(f"curl on the box:        {c:6.2f} s  {mbs(c):7.1f} MB/s")
    cs = statistics.median(synced)
    print(
        f"curl + fsync:           {cs:6.2f} s  {mbs(cs):7.1f} MB/s  (the job = {100 * cs / j:.0f} % of this)"
    )
    print(
        f"padlab get (the job):   {j:6.2f} s  {mbs(j):7.1f} MB/s  = {100 * c / j:.0f} % of curl (goal >= 90 %)"
    )
    print(
        f"padlab get (the command, ssh and start included): {w:6.2f} s  {mbs(w):7.1f} MB/s  = {100 * c / w:.0f} % of curl"
    )


if __name__ == "__main__":
    main()
