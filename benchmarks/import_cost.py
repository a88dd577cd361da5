"""Import cost of `padlab status` (python -X importtime) and the modules `autostop.policy()` loads.

Run: python benchmarks/import_cost.py [--runs N]. Prints the best of N runs (a loaded machine
only adds time), the number of modules imported, and how many of them are padlab's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

POLICY = (
    "import sys; from padlab import autostop, profiles; "
    "autostop.policy(profiles.Profile(name='x', provider=sys.argv[1])); "
    "new = sorted(m for m in sys.modules if m.startswith('padlab')); "
    "print(len(new)); print(' '.join(new))"
)


def importtime(argv: list[str], env: dict[str, str]) -> tuple[int, int, list[str]]:
    """(sum of the self times in µs, the same for padlab's own modules, names imported) of one run."""
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    total, ours, names = 0, 0, []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line[len("import time:") :].split("|")
        total += int(self_us)
        if name.strip().startswith("padlab"):
            ours += int(self_us)
        names.append(name.strip())
    return total, ours, names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, PADLAB_HOME=home)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run(
            [py, "-m", "padlab", "init", "bench", "--provider", "local"],
            env=env,
            check=True,
            capture_output=True,
        )
        argv = [py, "-X", "importtime", "-m", "padlab", "status"]
        runs = [importtime(argv, env) for _ in range(args.runs + 1)][1:]
        best, _, names = min(runs)
        own = min(r[1] for r in runs)
        ours = [n for n in names if n.startswith("padlab")]
        print(
            f"padlab status: {best / 1000:.1f} ms of imports (best of {args.runs}), {len(names)} modules; "
            f"{len(ours)} of them padlab's, {own / 1000:.1f} ms of their own"
        )
        for provider in ("local", "digitalocean"):
            policy = subprocess.run(
                [py, "-c", POLICY, provider], env=env, capture_output=True, text=True, check=True
            )
            count, loaded = policy.stdout.splitlines()
            print(f"autostop.policy() ({provider}): {count} padlab modules loaded: {loaded}")


if __name__ == "__main__":
    main()
