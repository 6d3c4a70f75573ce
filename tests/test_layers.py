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
