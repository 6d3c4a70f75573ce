#!/usr/bin/env python
"""Store the shipped models compactly: float16 weights in every ``.pt`` and ``.onnx`` of checkpoints/.

The wheel carries every shipped model and must stay under the package indexes' 100 MB file limit;
in float32 the twelve models take 140 MB. This script, run once on the repository's checkpoints/,

* rounds each ``.pt`` checkpoint's floating-point tensors to float16 (``load_state_dict`` casts them
  back to float32 when a model loads: the arithmetic stays float32);
* re-exports each ``.onnx`` from that rounded checkpoint with ``--fp16-weights`` (float16
  initializers, each cast to float32 inside the graph; onnxruntime folds the casts when a session
  starts, so inference speed is unchanged) and re-runs the export's check against PyTorch.

What the rounding costs in pixels and in the style/content losses is measured by
``scripts/eval_storage.py`` (before/after tables in docs/BENCHMARKS.md). Running this script again
is harmless: float16 weights round to themselves.

    .venv/bin/python scripts/pack_checkpoints.py                # every shipped model (~6 min on 2 cores)
    .venv/bin/python scripts/pack_checkpoints.py --only wave_rt
"""

from __future__ import annotations

import argparse
import sys
import time
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", default=str(REPO / "checkpoints"))
    ap.add_argument("--only", nargs="*", help="model names (default: every .pt in the folder)")
    args = ap.parse_args()
    folder = Path(args.checkpoints)
    pts = sorted(folder.glob("*.pt"))
    if args.only:
        pts = [p for p in pts if p.stem in set(args.only)]
    for pt in pts:
        t0 = time.perf_counter()
        before = pt.stat().st_size + (pt.with_suffix(".onnx").stat().st_size if pt.with_suffix(".onnx").exists() else 0)
        changed = halve_checkpoint(pt)
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
