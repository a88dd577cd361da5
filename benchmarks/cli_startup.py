"""Wall time of `padlab --help` and `padlab status` next to a bare `python -c pass`.

Target: at most 2x the bare interpreter. Run: python benchmarks/cli_startup.py [--runs N]
The status figure is for a local profile that is not running (no network involved).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed(argv: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        samples.append(time.perf_counter() - t0)
    return min(samples), statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, PADLAB_HOME=home)
        # An installed padlab has compiled bytecode (pip writes it); measure that, not recompiling.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        py = sys.executable
        subprocess.run(
            [py, "-m", "padlab", "init", "bench", "--provider", "local"],
            env=env,
            check=True,
            capture_output=True,
        )
        rows = [
            ("python -c pass", [py, "-c", "pass"]),
            ("padlab --help", [py, "-m", "padlab", "--help"]),
            ("padlab status", [py, "-m", "padlab", "status"]),
        ]
        for _, argv in rows:
            timed(argv, env, 1)  # warm-up: writes bytecode, fills the page cache
        results = {label: timed(argv, env, args.runs) for label, argv in rows}
    base = results["python -c pass"][0]
    print(f"{'command':<16} {'best ms':>8} {'median ms':>10} {'x bare':>7}")
    for label, (best, median) in results.items():
        print(f"{label:<16} {best * 1000:8.1f} {median * 1000:10.1f} {best / base:7.2f}")


if __name__ == "__main__":
    main()
