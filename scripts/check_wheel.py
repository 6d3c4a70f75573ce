#!/usr/bin/env python
"""Checks a built wheel: at most 100 MB (the package indexes' file limit), every shipped model of
checkpoints/ inside as package data (``percept/checkpoints/``) with its verified ``.onnx`` (each ``.onnx``
records the SHA-256 of the ``.pt`` weights it was exported and checked from: it must be the ``.pt`` beside
it in the wheel), ``py.typed`` inside, no training state.

The ``.onnx`` files are not in git: ``make wheel`` runs ``make models`` first, which exports them.

    .venv/bin/python scripts/check_wheel.py dist/percept-*.whl
    .venv/bin/python scripts/check_wheel.py WHEEL --checkpoints DIR    # another folder of shipped models
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
LIMIT = 100 * 1000 * 1000
INSIDE = "percept/checkpoints/"


def expected_files(folder: Path) -> list[str]:
    """The files of ``folder``'s shipped models that the wheel must carry: each ``.pt`` and ``.json``, and
    the ``.onnx`` of each model that comes with one (made by ``make models`` when missing)."""
    from percept.checkpoint import load_checkpoint
    from percept.inference.shipped import PT_ONLY, wants_onnx

    names = {p.name for p in folder.iterdir()
             if p.suffix in (".pt", ".json") and not p.name.endswith(".train.pt")}
    for pt in folder.glob("*.pt"):
        if pt.name.endswith(".train.pt") or pt.stem in PT_ONLY:
            continue
        if wants_onnx(pt.stem, load_checkpoint(pt)["kind"]):
            names.add(f"{pt.stem}.onnx")
    return sorted(names)


def unverified_onnx(wheel: zipfile.ZipFile, names: set[str]) -> list[str]:
    """The ``.onnx`` in the wheel's checkpoints that were not exported from the ``.pt`` beside them."""
    import torch

    from percept.checkpoint import weights_digest
    from percept.inference.shipped import onnx_digest

    bad = []
    for name in sorted(n for n in names if n.startswith(INSIDE) and n.endswith(".onnx")):
        pt = name.removesuffix(".onnx") + ".pt"
        if pt not in names:
            continue
        state = torch.load(io.BytesIO(wheel.read(pt)), map_location="cpu", weights_only=True)["state_dict"]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            path.write_bytes(wheel.read(name))
            recorded = onnx_digest(path)
        if recorded != weights_digest(state):
            why = "records no weights digest" if recorded is None else "records other weights"
            bad.append(f"{Path(name).name} ({why}: re-export it with `make models`)")
    return bad


def check(wheel_path: Path, folder: Path) -> list[str]:
    """The problems of a wheel (none: it is fine); prints its one summary line."""
    with zipfile.ZipFile(wheel_path) as wheel:
        names = set(wheel.namelist())
        shipped = expected_files(folder)
        problems = []
        missing = [n for n in shipped if f"{INSIDE}{n}" not in names]
        if missing:
            onnx = " (the .onnx are made by `make models`)" if any(n.endswith(".onnx") for n in missing) else ""
            problems.append(f"shipped model files missing from the wheel: {', '.join(missing)}{onnx}")
        bad = unverified_onnx(wheel, names)
        if bad:
            problems.append(f"an .onnx not exported from the .pt beside it: {', '.join(bad)}")
    if "percept/py.typed" not in names:
        problems.append("percept/py.typed is missing")
    if any(n.endswith(".train.pt") for n in names):
        problems.append("training state (.train.pt) inside the wheel")
    size = wheel_path.stat().st_size
    if size > LIMIT:
        problems.append(f"{size / 1e6:.1f} MB is over the 100 MB limit")
    models = len({Path(n).stem for n in shipped})
    onnx_count = sum(n.endswith(".onnx") for n in shipped)
    print(f"{wheel_path.name}: {size / 1e6:.1f} MB, {len(names)} files, {models} shipped models "
          f"({len(shipped)} files, {onnx_count} verified .onnx) inside")
    return problems


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel")
    ap.add_argument("--checkpoints", default=str(REPO / "checkpoints"), help="the folder of shipped models")
    args = ap.parse_args(argv)
    problems = check(Path(args.wheel), Path(args.checkpoints))
    for p in problems:
        print(f"check_wheel: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
