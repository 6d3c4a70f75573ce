#!/usr/bin/env python
"""Checks a built wheel: at most 100 MB (the package indexes' file limit), every shipped model of
checkpoints/ inside as package data (``percept/checkpoints/``), ``py.typed`` inside, no training state.

    .venv/bin/python scripts/check_wheel.py dist/percept-*.whl
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT = 100 * 1000 * 1000


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: check_wheel.py WHEEL", file=sys.stderr)
        return 2
    wheel = Path(argv[0])
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(p.name for p in (REPO / "checkpoints").iterdir()
                     if p.suffix in (".pt", ".onnx", ".json") and not p.name.endswith(".train.pt"))
    missing = [n for n in shipped if f"percept/checkpoints/{n}" not in names]
    problems = []
    if missing:
        problems.append(f"shipped model files missing from the wheel: {', '.join(missing)}")
    if "percept/py.typed" not in names:
        problems.append("percept/py.typed is missing")
    if any(n.endswith(".train.pt") for n in names):
        problems.append("training state (.train.pt) inside the wheel")
    size = wheel.stat().st_size
    if size > LIMIT:
        problems.append(f"{size / 1e6:.1f} MB is over the 100 MB limit")
    models = len({Path(n).stem for n in shipped})
    print(f"{wheel.name}: {size / 1e6:.1f} MB, {len(names)} files, {models} shipped models "
          f"({len(shipped)} files) inside")
    for p in problems:
        print(f"check_wheel: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
