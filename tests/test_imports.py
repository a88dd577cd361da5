"""No import cycle among padlab's modules, and no lower layer importing a higher one.

Imports inside functions count (they run too, just later); imports under
``if TYPE_CHECKING:`` do not, nor do cli/__init__.py's imports of its command
modules (click's registration: those modules import ``cli`` to register on it).
The layers, lowest first, are in LAYERS below and in docs/architecture.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. A module may import its own layer's modules and lower layers', never higher ones.
# A package name stands for all its modules.
LAYERS: list[tuple[str, ...]] = [
    ("padlab.box",),  # the program that runs on the box: standard library only, imports nothing else
    ("padlab.errors", "padlab.paths", "padlab.fileio", "padlab.registry", "padlab.passwords"),
    ("padlab.ui", "padlab.state", "padlab.autostop", "padlab.profiles", "padlab.ledger", "padlab.acme"),
    (
        "padlab.tls",
        "padlab.ssh",
        "padlab.sshconfig",
        "padlab.transport",
        "padlab.notebook_api",
        "padlab.webpush",
    ),
    ("padlab.card", "padlab.doctor"),
    ("padlab.providers",),
    (
        "padlab.workstation",
        "padlab.machines",
        "padlab.money",
        "padlab.alerts",
        "padlab.kernels",
        "padlab.files",
        "padlab.onboard",
    ),
    ("padlab.home",),  # where profiles live: this machine (the actions above) or a panel (its API)
    ("padlab.panel",),  # the web panel: a front end beside the CLI, on top of workstation
    ("padlab.cli", "padlab.__main__"),
]


# Inside the box program (layer 0): its parts, and what each may import besides box's top level (the
# entry, the request schema and the shared helpers: report, system, service, context, ...) and itself.
# The top level imports no part; a part imports no other unless named here (docs/architecture.md).
BOX_PARTS: dict[str, tuple[str, ...]] = {
    "padlab.box": (),  # the top level: __main__ names its actions as strings, imported when run
    "padlab.box.autostop": ("padlab.box.files.jobs",),  # the agent: its download probe reads the jobs
    "padlab.box.kernels": (),
    "padlab.box.files": (),
    "padlab.box.net": (),
    # `up` composes every step: the agent's install, kernels, the rsync step, the firewall, mosh.
    "padlab.box.setup": ("padlab.box.autostop", "padlab.box.kernels", "padlab.box.files", "padlab.box.net"),
}
# Copied alone, as one file, into Jupyter's venv (padlab_agent_ext.py, padlab_login_guard.py).
BOX_ALONE = ("padlab.box.autostop.agent_ext", "padlab.box.setup.login_guard")


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "padlab").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.stmt]:
    """Every import statement, at any depth, except those under `if TYPE_CHECKING:`."""
    found: list[ast.stmt] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def edges(known: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the padlab modules it imports (a `from pkg import mod` counts as pkg.mod)."""
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        is_pkg = path.name == "__init__.py"
        package = name if is_pkg else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                bases = [(alias.name, []) for alias in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                bases = [(mod, [alias.name for alias in node.names])]
            for mod, names in bases:
                subs = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in known]
                for target in subs or [mod]:
                    if target in known and target != name:
                        targets.add(target)
        if name == "padlab.cli":
            # click's registration: `from padlab.cli import core, ...` after the group exists.
            targets = {t for t in targets if not t.startswith("padlab.cli.")}
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def layer_of(module: str) -> int:
    best, level = -1, -1
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), i
    return level


def test_every_module_has_a_layer() -> None:
    assert [m for m in modules() if m != "padlab" and layer_of(m) < 0] == []


def test_no_import_cycle() -> None:
    found = cycles(edges(modules()))
    assert found == [], "import cycles (imports inside functions count): " + "; ".join(
        " <-> ".join(c) for c in found
    )


def test_no_lower_layer_imports_a_higher_one() -> None:
    graph = edges(modules())
    wrong = sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        for b in targets
        if a != "padlab" and layer_of(b) > layer_of(a)
    )
    assert wrong == [], "a lower layer imports a higher one: " + ", ".join(wrong)


@pytest.mark.parametrize(
    ("source", "cycle"),
    [
        ("def f():\n    from padlab import b\n", True),  # inside a function: counts
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from padlab import b\n", False),
    ],
)
def test_the_check_sees_imports_inside_functions_but_not_type_checking(
    tmp_path: Path, source: str, cycle: bool
) -> None:
    (tmp_path / "padlab").mkdir()
    (tmp_path / "padlab" / "__init__.py").write_text("")
    (tmp_path / "padlab" / "a.py").write_text(source)
    (tmp_path / "padlab" / "b.py").write_text("from padlab import a\n")
    known = {
        "padlab": tmp_path / "padlab" / "__init__.py",
        "padlab.a": tmp_path / "padlab" / "a.py",
        "padlab.b": tmp_path / "padlab" / "b.py",
    }
    assert bool(cycles(edges(known))) is cycle


def box_part(module: str, known: dict[str, Path]) -> str:
    """The box part a padlab.box module belongs to: its subpackage, or the top level."""
    parts = module.split(".")
    sub = ".".join(parts[:3])
    if len(parts) > 2 and known[sub].name == "__init__.py":
        return sub
    return "padlab.box"


def test_every_box_module_is_in_a_part() -> None:
    known = modules()
    parts = {box_part(m, known) for m in known if m.startswith("padlab.box")}
    assert parts == set(BOX_PARTS), "a new box subpackage needs its line in BOX_PARTS and the architecture doc"


def test_box_parts_import_only_what_they_may() -> None:
    """Top level <- every part; a part <- setup (`up`); the agent reads the download jobs, and nothing else crosses."""
    known = modules()
    graph = edges(known)
    wrong = []
    for a, targets in sorted(graph.items()):
        if not a.startswith("padlab.box"):
            continue
        here = box_part(a, known)
        for b in sorted(targets):
            there = box_part(b, known)
            allowed = there == here or (there == "padlab.box" and b != "padlab.box.__main__")
            allowed |= any(b == x or b.startswith(x + ".") for x in BOX_PARTS[here])
            if not allowed:
                wrong.append(f"{a} -> {b}")
    assert wrong == [], "box parts cross where they may not: " + ", ".join(wrong)


def test_modules_copied_alone_into_jupyters_venv_import_nothing_of_padlab() -> None:
    graph = edges(modules())
    assert {m: sorted(graph[m]) for m in BOX_ALONE if graph[m]} == {}
