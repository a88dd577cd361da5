"""Time `padlab up` over ssh on a testbed machine: bare box to a working password login, then no-op re-runs.

Targets (issue 20): bare box <= 6 s excluding apt; a no-op `up` <= 0.4 s and <= 2x
`padlab ssh NAME -- true` measured in the same run. mosh, rsync and nftables are installed
with apt before the clock starts and timed on their own, so the bare figure is padlab's own work (Python
env, Jupyter, TLS, service...). Each figure is printed with the steps the box ran and
the seconds each took (the report's per-step "s"; steps marked "alongside" ran in a thread
beside the others and are not added to the total); "client + ssh" is the rest: padlab's
own start, the ssh round trip, and what padlab does before and after the box call. The no-op
`up` is also split into padlab's own steps (benchmarks/up_steps.py: its imports, the six steps
of workstation.up, `ssh -G` and the shared connection's check, the box call and the box's own
work), the median of each over the runs.

Run as root from the repository root:
python benchmarks/bootstrap.py [--image bookworm] [--runs 5] [--reboot]
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


STAGES: list[str] = []  # the last command's stage lines ("[   1.2s] installing Jupyter..."), padlab's clock


def padlab_env(home: str) -> dict[str, str]:
    """padlab as installed: its modules' bytecode cached (PYTHONDONTWRITEBYTECODE would compile them
    on every run, ~30 ms, which no installed padlab does)."""
    env = dict(os.environ, PADLAB_HOME=home)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def padlab(home: str, *args: str, stdin: str | None = None) -> dict:
    env = padlab_env(home)
    proc = subprocess.run(
        [sys.executable, "-m", "padlab", *args], input=stdin, capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise SystemExit(f"padlab {' '.join(args)} failed:\n{proc.stderr}")
    STAGES[:] = [line for line in proc.stderr.splitlines() if line.startswith("[")]
    return json.loads(proc.stdout) if "--json" in args else {}


def timed(home: str, *args: str, stdin: str | None = None) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = padlab(home, *args, stdin=stdin)
    return time.perf_counter() - t0, out


def login_works(card: dict) -> bool:
    with NotebookClient(card["url"], card["ca_cert"]) as client:
        return client.login(PASSWORD)


def steps_line(total: float, card: dict) -> list[str]:
    """The box's steps with their seconds (the slow ones first), and what the client and ssh took."""
    steps = [s for s in card.get("steps", []) if "s" in s]
    box = sum(s["s"] for s in steps if not s.get("alongside"))
    lines = [
        f"    {s['name']:<40} {s['s']:8.3f}{'  changed' if s['changed'] else ''}"
        f"{'  (alongside: not in the total)' if s.get('alongside') else ''}"
        for s in steps
    ]
    lines.append(f"    {'(box program, all steps)':<40} {box:8.3f}")
    lines.append(f"    {'(client + ssh: the rest)':<40} {total - box:8.3f}")
    return lines


def own_steps(home: str, runs: int) -> list[str]:
    """benchmarks/up_steps.py's split of a no-op `up`, the median of each step over `runs`."""
    env = padlab_env(home)
    script = str(Path(__file__).with_name("up_steps.py"))
    took: dict[str, list[float]] = {}
    for _ in range(runs):
        proc = subprocess.run([sys.executable, script, "bench"], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            return [f"    (benchmarks/up_steps.py failed: {proc.stderr.strip()[-200:]})"]
        for name, value in json.loads(proc.stdout.splitlines()[-1])["took"].items():
            took.setdefault(name, []).append(value)
    return [f"    {name:<48} {statistics.median(values):8.3f}" for name, values in took.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--image", default="bookworm")
    parser.add_argument("--runs", type=int, default=5, help="no-op re-runs to take the median of")
    parser.add_argument("--reboot", action="store_true", help="also time the first no-op up after a reboot")
    parser.add_argument("--walk", action="store_true", help="also count the module visits of a no-op up")
    args = parser.parse_args()
    load = os.getloadavg()
    rows: list[tuple[str, float, str]] = []
    details: dict[str, list[str]] = {}
    with Testbed() as bed, tempfile.TemporaryDirectory() as home:
        machine = bed.machine(f"bench{os.getpid() % 10000}", image=args.image)
        t0 = time.perf_counter()
        machine.exec(
            "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -q -y mosh rsync nftables",
            timeout=600,
        )
        rows.append(("apt-get: mosh, rsync, nftables (excluded)", time.perf_counter() - t0, ""))
        padlab(home, "init", "bench", "--provider", "ssh", "--host", f"{machine.user}@{machine.ip}",
               "--identity", str(machine.identity))  # fmt: skip
        t0 = time.perf_counter()
        card = padlab(home, "up", "--json", "--password-stdin", stdin=PASSWORD + "\n")
        up_s = time.perf_counter() - t0
        ok = login_works(card)
        bare = time.perf_counter() - t0
        rows.append(("bare box -> password login works", bare, f"<= 6   login {'ok' if ok else 'FAILED'}"))
        details["bare box"] = steps_line(up_s, card)
        # The certificate's round trip shows between "signing" and the second "checking the TLS" line.
        details["bare box: stages as padlab printed them"] = [f"    {line}" for line in STAGES]
        ssh_true, noop, last = [], [], {}
        for _ in range(args.runs):  # alternated: a load that comes and goes weighs on both alike
            ssh_true.append(timed(home, "ssh", "bench", "--", "true")[0])
            took, last = timed(home, "up", "--json")
            noop.append(took)
            assert not last["changed"], [s for s in last["steps"] if s["changed"]]
        ssh_med, noop_med = statistics.median(ssh_true), statistics.median(noop)
        rows.append((f"padlab ssh bench -- true, median of {args.runs}", ssh_med, ""))
        rows.append((f"no-op up, median of {args.runs}", noop_med, "<= 0.4"))
        rows.append(("no-op up, first", noop[0], ""))
        rows.append(("no-op up, slowest", max(noop), ""))
        rows.append(("no-op up / ssh -- true", noop_med / ssh_med, "<= 2 (ratio)"))
        details["no-op up (last run)"] = steps_line(noop[-1], last)
        details[f"no-op up, padlab's own steps (median of {args.runs})"] = own_steps(home, args.runs)
        try:
            took, checked = timed(home, "up", "--check", "--json")
            rows.append(("up --check (every check runs)", took, ""))
            details["up --check"] = steps_line(took, checked)
        except SystemExit:
            pass  # a padlab without --check
        if args.walk:
            walk = subprocess.run(
                [sys.executable, str(Path(__file__).with_name("up_walk.py")), "bench"],
                env=padlab_env(home),
                capture_output=True,
                text=True,
            )
            details["walk of a no-op up (benchmarks/up_walk.py)"] = (walk.stdout + walk.stderr).splitlines()
        if args.reboot:
            machine.reboot()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # Jupyter comes back by itself; up then has nothing to do
                try:
                    if login_works(card):
                        break
                except Exception:  # noqa: BLE001 (not up yet: refused, reset, 502...)
                    time.sleep(0.5)
            took, after = timed(home, "up", "--json")
            rows.append(("no-op up, first after a reboot of the box", took, ""))
            details["first up after a reboot"] = steps_line(took, after)
    print(f"image {args.image}, {os.cpu_count()} cores, load average at start {load[0]:.2f} {load[1]:.2f}")
    print(f"{'what':<44} {'seconds':>8}  target")
    for what, value, target in rows:
        print(f"{what:<44} {value:8.2f}  {target}")
    for what, lines in details.items():
        print(f"\n{what}: steps (seconds)")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
