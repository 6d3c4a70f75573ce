"""The package's layers (DESIGN.md): a small core below ``models``, and ``training``, ``inference`` and
``visualize`` above it, each importing only downward. Read from the source with ``ast``, imports inside
functions included, so a cycle cannot hide in a function body."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "percept"
CORE = {"errors", "device", "images", "checkpoint", "registry", "argtypes", "version", "flow", "clips"}
APPS = {"cli", "demo", "compare", "__init__", "__main__"}
# what each layer may import from percept (besides itself)
ALLOWED = {
    "core": {"core"},
    "models": {"core"},
    "evaluation": {"core", "models"},
    "training": {"core", "models", "evaluation"},
    "inference": {"core", "models", "evaluation"},
    "visualize": {"core", "models", "evaluation"},
    "apps": {"core", "models", "evaluation", "training", "inference", "visualize", "apps"},
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    assert parts[0] == "percept", module
    if len(parts) == 1:
        return "apps"
    head = parts[1]
    if head in CORE:
        return "core"
    if head in APPS:
        return "apps"
    if head == "evaluation":
        return "evaluation"
    return head


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("percept"):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("percept")]
    return found


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    return ".".join(rel.parts)


SOURCES = sorted(PKG.rglob("*.py"))


def test_no_module_imports_upward_or_sideways():
    bad = []
    for path in SOURCES:
        mine = layer_of(module_name(path))
        for line, target in imports_of(path):
            theirs = layer_of(target)
            if theirs != mine and theirs not in ALLOWED[mine]:
                bad.append(f"{path.relative_to(PKG.parent)}:{line}: {mine} imports {target} ({theirs})")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_sideways_import(tmp_path):
    fake = tmp_path / "percept" / "inference" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from percept.training.data import split_holdout\n")
    (line, target), = imports_of(fake)
    assert (line, target) == (2, "percept.training.data")
    assert layer_of(target) not in ALLOWED["inference"]


@pytest.mark.parametrize("sub", ["models", "training", "inference", "visualize"])
def test_each_subpackage_says_what_is_public(sub):
    mod = importlib.import_module(f"percept.{sub}")
    assert isinstance(getattr(mod, "__all__", None), list) and mod.__all__, f"percept.{sub} has no __all__"
    for name in mod.__all__:
        assert hasattr(mod, name), f"percept.{sub}.__all__ names {name}, which it does not have"


def test_importing_inference_loads_neither_training_nor_visualize():
    import subprocess

    code = ("import sys, percept.inference.engine, percept.inference.stylizer, percept.inference.video; "
            "print(sorted(m for m in sys.modules if m.startswith(('percept.training', 'percept.visualize'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_py_typed_is_shipped():
    assert (PKG / "py.typed").is_file()


def test_the_command_line_parser_needs_no_torch():
    """`percept --help` and every argument error answer without importing torch (seconds at start-up):
    the options are built from torch-free config dataclasses."""
    import subprocess

    code = "import sys, percept.cli; percept.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def import_graph(sources: list[Path], pkg: Path) -> dict[str, set[str]]:
    """module -> the percept modules it imports (inside functions too; ``from a import b`` counts ``a.b`` when that
    is a module). A module's import of its own package (``percept.x`` importing ``percept``) is not an edge."""
    names = {}
    for path in sources:
        name = ".".join(path.relative_to(pkg.parent).with_suffix("").parts)
        names[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("percept"):
                deps.add(node.module)
                deps |= {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("percept")}
        graph[name] = {d for d in deps if d in names and d != name and not name.startswith(d + ".")}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan): files that import each other in a loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles():
    """No files import each other in a loop, imports inside functions included (DESIGN.md: "No circles")."""
    assert circles(import_graph(SOURCES, PKG)) == []


def test_the_circle_check_sees_a_loop_through_a_function(tmp_path):
    pkg = tmp_path / "percept"
    (pkg / "inference").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "inference" / "__init__.py").write_text("")
    (pkg / "inference" / "a.py").write_text("from percept.inference import b\n")
    (pkg / "inference" / "b.py").write_text("def f():\n    from percept.inference.c import g\n")
    (pkg / "inference" / "c.py").write_text("import percept.inference.a\n")
    sources = sorted(pkg.rglob("*.py"))
    assert circles(import_graph(sources, pkg)) == [["percept.inference.a", "percept.inference.b", "percept.inference.c"]]
