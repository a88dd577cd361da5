"""Time `padlab up` over ssh on a testbed machine: bare box to a working password login, then a no-op re-run.

Targets: bare box <= 20 s excluding apt, no-op re-run <= 3 s (ssh included).
mosh is installed with apt before the clock starts and timed on its own, so
the bare figure is padlab's own work (Python env, Jupyter, TLS, service...).

Run as root from the repository root: python benchmarks/bootstrap.py [--image bookworm] [--runs 5]
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

from padlab.notebook_api import NotebookClient  # noqa: E402
from tests.testbed import Testbed  # noqa: E402

PASSWORD = "violet-harbor-lantern-quartz"


def padlab(home: str, *args: str, stdin: str | None = None) -> dict:
    env = dict(os.environ, PADLAB_HOME=home)
    proc = subprocess.run(
        [sys.executable, "-m", "padlab", *args], input=stdin, capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise SystemExit(f"padlab {' '.join(args)} failed:\n{proc.stderr}")
    return json.loads(proc.stdout) if "--json" in args else {}


def login_works(card: dict) -> bool:
    with NotebookClient(card["url"], card["ca_cert"]) as client:
        return client.login(PASSWORD)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image", default="bookworm")
    parser.add_argument("--runs", type=int, default=5, help="no-op re-runs to take the median of")
    args = parser.parse_args()
    with Testbed() as bed, tempfile.TemporaryDirectory() as home:
        machine = bed.machine(f"bench{os.getpid() % 10000}", image=args.image)
        t0 = time.perf_counter()
        machine.exec(
            "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -q -y mosh", timeout=600
        )
        apt = time.perf_counter() - t0
        padlab(home, "init", "bench", "--provider", "ssh", "--host", f"{machine.user}@{machine.ip}",
               "--identity", str(machine.identity))  # fmt: skip
        t0 = time.perf_counter()
        card = padlab(home, "up", "--json", "--password-stdin", stdin=PASSWORD + "\n")
        ok = login_works(card)
        bare = time.perf_counter() - t0
        noop = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            again = padlab(home, "up", "--json")
            noop.append(time.perf_counter() - t0)
            assert not again["changed"], [s for s in again["steps"] if s["changed"]]
    print(f"image {args.image}, {os.cpu_count()} cores")
    print(f"{'what':<44} {'seconds':>8}  target")
    print(f"{'apt-get update + install mosh (excluded)':<44} {apt:8.1f}")
    print(f"{'bare box -> password login works':<44} {bare:8.1f}  <= 20   login {'ok' if ok else 'FAILED'}")
    print(f"{f'no-op re-run, median of {args.runs}':<44} {statistics.median(noop):8.2f}  <= 3")
    print(f"{'no-op re-run, slowest':<44} {max(noop):8.2f}")


if __name__ == "__main__":
    main()
