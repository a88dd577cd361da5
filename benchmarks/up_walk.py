"""The walk of `padlab up` through padlab's client modules: how often the call path enters each one.

A visit is a call from one padlab module into another (a call within a module is not
one); a climb is a visit whose module sits in a higher layer than the module visited
just before it: the walk had to come back up to go on. It follows the CLI's `up` in-process with sys.setprofile, on a profile that
is already set up (PADLAB_HOME and NAME, e.g. the benchmark's), so the box answers a
no-op; the box program itself runs in another process and is not counted.

Also printed: the calls workstation's own code makes into other modules, per module: what
a reader of `workstation.up` has to follow.

Run: PADLAB_HOME=... python benchmarks/up_walk.py NAME
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def layer_of(module: str) -> int:
    """The module's layer in tests/test_imports.py (a package name stands for its modules)."""
    from test_imports import LAYERS  # type: ignore[import-not-found]

    for i, names in enumerate(LAYERS):
        if any(module == name or module.startswith(name + ".") for name in names):
            return i
    return len(LAYERS)  # the CLI


def main() -> None:
    from click.testing import CliRunner

    from padlab.cli import cli

    visits: collections.Counter[str] = collections.Counter()
    walk: list[str] = []
    direct: collections.Counter[str] = collections.Counter()  # calls made by workstation's own code

    def module_of(frame) -> str:  # noqa: ANN001
        return frame.f_globals.get("__name__", "")

    def tracer(frame, event, arg) -> None:  # noqa: ANN001
        if event != "call":
            return
        callee = module_of(frame)
        caller = module_of(frame.f_back) if frame.f_back else ""
        if not callee.startswith("padlab") or callee.startswith("padlab.box") or callee == caller:
            return
        visits[callee] += 1
        walk.append(callee)
        if caller == "padlab.workstation":
            direct[callee] += 1

    runner = CliRunner()
    sys.setprofile(tracer)
    try:
        result = runner.invoke(cli, ["up", sys.argv[1], "--json"])
    finally:
        sys.setprofile(None)
    if result.exit_code != 0:
        raise SystemExit(result.output)
    climbs = sum(1 for a, b in zip(walk, walk[1:]) if layer_of(b) > layer_of(a))
    print(f"modules {len(visits)}, visits {sum(visits.values())}, climbs back up the layers {climbs}")
    for module, n in visits.most_common():
        print(f"  {module:<34} {n}")
    print(f"calls out of padlab.workstation (what `up` reads as): {sum(direct.values())}")
    for module, n in direct.most_common():
        print(f"  {module:<34} {n}")


if __name__ == "__main__":
    main()
