#!/usr/bin/env python
"""Store the shipped models compactly: float16 weights in every ``.pt`` and ``.onnx`` of checkpoints/.

The wheel carries every shipped model and must stay under the package indexes' 100 MB file limit;
in float32 the twelve models take 140 MB. This script, run once on the repository's checkpoints/,

* rounds each ``.pt`` checkpoint's floating-point tensors to float16 (``load_state_dict`` casts them
  back to float32 when a model loads: the arithmetic stays float32);
* re-exports each ``.onnx`` from that rounded checkpoint with ``--fp16-weights`` (float16
  initializers, each cast to float32 inside the graph; onnxruntime folds the casts when a session
  starts, so inference speed is unchanged) and re-runs the export's check against PyTorch.

* stores each large ``.pt`` (over :data:`DEFLATE_OVER` bytes) as a deflated zip: torch.save writes its zip
  uncompressed, and float16 weights still deflate by about 8% (4.3 MB over the five largest models, what keeps
  the tracked tree under 55 MB, small enough to travel to the GPU machine with data beside it). ``torch.load``
  reads it as before; the weights (and their SHA-256, which the ``.onnx`` records) are unchanged.

What the rounding costs in pixels and in the style/content losses is measured by
``scripts/eval_storage.py`` (before/after tables in docs/BENCHMARKS.md). Running this script again
is harmless: float16 weights round to themselves.

    .venv/bin/python scripts/pack_checkpoints.py                # every shipped model (~6 min on 2 cores)
    .venv/bin/python scripts/pack_checkpoints.py --only wave_rt
    .venv/bin/python scripts/pack_checkpoints.py --deflate-only   # only re-store the large .pt files deflated
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from percept.checkpoint import read_torch_file, save_atomic  # noqa: E402
from percept.inference.export import FP16_WEIGHTS_MIN_ELEMENTS, export_onnx  # noqa: E402
from percept.inference.shipped import PT_ONLY  # noqa: E402


def halve_checkpoint(path: Path) -> int:
    """Rewrite a ``.pt`` with float16 floating-point tensors (those of at least 64 elements: the same
    ones the ONNX file stores in float16); returns how many tensors changed dtype."""
    ckpt = read_torch_file(path)
    changed = 0
    state = {}
    for k, v in ckpt["state_dict"].items():
        if v.is_floating_point() and v.dtype != torch.float16 and v.numel() >= FP16_WEIGHTS_MIN_ELEMENTS:
            v = v.to(torch.float16)
            changed += 1
        state[k] = v
    if changed:
        save_atomic({**ckpt, "state_dict": state}, path)
    return changed


DEFLATE_OVER = 5_000_000
"""A ``.pt`` larger than this is stored deflated (:func:`deflate_checkpoint`)."""


def deflate_checkpoint(path: Path) -> tuple[int, int]:
    """Re-store a ``.pt`` (a zip) with every entry deflated, after checking that ``torch.load`` gives the same
    tensors and card; returns (bytes before, bytes after). An already deflated file stays as it is."""
    before = path.stat().st_size
    with zipfile.ZipFile(path) as zin:
        if all(i.compress_type == zipfile.ZIP_DEFLATED for i in zin.infolist()):
            return before, before
        fd, tmp = tempfile.mkstemp(suffix=".pt", dir=path.parent)
        os.close(fd)
        with zipfile.ZipFile(tmp, "w") as zout:
            for info in zin.infolist():
                entry = zipfile.ZipInfo(info.filename, date_time=info.date_time)
                entry.compress_type = zipfile.ZIP_DEFLATED
                zout.writestr(entry, zin.read(info.filename), compresslevel=9)
    old, new = (torch.load(p, map_location="cpu", weights_only=True) for p in (path, Path(tmp)))
    same = old.keys() == new.keys() and old.get("card") == new.get("card") and all(
        torch.equal(v, new["state_dict"][k]) for k, v in old["state_dict"].items())
    if not same:
        os.unlink(tmp)
        raise SystemExit(f"{path}: the deflated copy does not load the same weights; left as it was")
    os.replace(tmp, path)
    return before, path.stat().st_size


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", default=str(REPO / "checkpoints"))
    ap.add_argument("--only", nargs="*", help="model names (default: every .pt in the folder)")
    ap.add_argument("--deflate-only", action="store_true", help="only store the large .pt files deflated")
    args = ap.parse_args()
    folder = Path(args.checkpoints)
    pts = sorted(folder.glob("*.pt"))
    if args.only:
        pts = [p for p in pts if p.stem in set(args.only)]
    for pt in pts:
        if args.deflate_only:
            if pt.stat().st_size > DEFLATE_OVER:
                a, b = deflate_checkpoint(pt)
                print(f"{pt.stem}: {a / 1e6:.2f} -> {b / 1e6:.2f} MB (deflated)", flush=True)
            continue
        t0 = time.perf_counter()
        before = pt.stat().st_size + (pt.with_suffix(".onnx").stat().st_size if pt.with_suffix(".onnx").exists() else 0)
        changed = halve_checkpoint(pt)
        if pt.stat().st_size > DEFLATE_OVER:
            deflate_checkpoint(pt)
        if pt.stem in PT_ONLY:  # no .onnx for this one (percept.inference.shipped)
            print(f"{pt.stem}: {changed} tensors to float16 (.pt only)", flush=True)
            continue
        report = export_onnx(pt, pt.with_suffix(".onnx"), fp16_weights=True)
        after = pt.stat().st_size + report.bytes
        print(f"{pt.stem}: {changed} tensors to float16; .pt + .onnx {before / 1e6:.1f} -> {after / 1e6:.1f} MB; "
              f"onnxruntime vs PyTorch max abs diff {report.max_abs_diff:.2e} ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
