"""Where a `padlab up` spends its time, client side included: one JSON line of named steps.

Runs the CLI's `up NAME --json` in this process, as `python -m padlab` would, timing padlab's
own start (the CLI's imports), the six steps of `workstation.up`, the box call inside step 4
(`transport.run_program`: ssh, the box program's start, its work), ssh's configuration and the
shared connection's check inside step 3, and the box's own time
(its report's `elapsed`, from the request parsed to the report), by wrapping those
functions; nothing in padlab is changed. The rest of the process (the interpreter's start,
printing, exit) is what the caller's wall clock adds.

Run: PADLAB_HOME=... python benchmarks/up_steps.py NAME [up's flags]
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time

T0 = time.perf_counter()

STEPS = ("check_budget", "start_machine", "set_up_box", "record_running", "up_card")


def main() -> None:
    from padlab.cli import cli

    took: dict[str, float] = {"client: padlab's imports (CLI)": time.perf_counter() - T0}
    from padlab import state, transport, workstation

    def timed(name: str, fn):  # noqa: ANN001, ANN202
        def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                took[name] = took.get(name, 0.0) + time.perf_counter() - t

        return wrapper

    for i, step in zip((1, 3, 4, 5, 6), STEPS):
        setattr(workstation, step, timed(f"{i} {step}", getattr(workstation, step)))
    from padlab import ssh

    # Inside step 3 (and 5): ssh's configuration (`ssh -G`, once per process) and the shared
    # connection's check (its socket; `ssh -O check` only where that gives no plain answer).
    ssh._resolve = timed("3a ssh -G (ssh's configuration)", ssh._resolve)
    ssh.master_alive = timed("3b shared connection's check (3a within, where first)", ssh.master_alive)
    lock = state.action

    @contextlib.contextmanager
    def action(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        t = time.perf_counter()
        with lock(*args, **kwargs) as held:
            took["2 state.action (lock, intent)"] = time.perf_counter() - t
            yield held

    workstation.state.action = action  # type: ignore[assignment]
    box: dict = {}
    run_program = transport.run_program

    def run(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        t = time.perf_counter()
        report = run_program(*args, **kwargs)
        took["4a box call (ssh, box program start and work)"] = time.perf_counter() - t
        box.update(report)
        return report

    transport.run_program = run
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            cli.main(["up", *sys.argv[1:], "--json"], prog_name="padlab", standalone_mode=False)
        finally:
            sys.stdout = sys.__stdout__
    took["4b box: its own work (report elapsed)"] = float(box.get("elapsed") or 0.0)
    took["in process, all"] = time.perf_counter() - T0
    print(json.dumps({"took": took, "steps": box.get("steps", [])}))


if __name__ == "__main__":
    main()
