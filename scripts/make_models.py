#!/usr/bin/env python
"""``make models``: export the verified ``.onnx`` of every shipped model in checkpoints/ that lacks it or
whose ``.onnx`` was not exported from its ``.pt`` (:func:`percept.inference.shipped.export_missing`).

The ``.onnx`` files are derived from the ``.pt`` and not committed (.gitignore); ``make install``, ``make
test``, ``make demo`` and ``make wheel`` run this first. With every file current it only reads them (~2 s).

    .venv/bin/python scripts/make_models.py                    # what is missing or stale
    .venv/bin/python scripts/make_models.py --only wave_rt --force
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from percept.errors import PerceptError  # noqa: E402
from percept.inference.shipped import export_missing  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", default=str(REPO / "checkpoints"), help="the folder of shipped models")
    ap.add_argument("--only", nargs="*", help="model names (default: every shipped model)")
    ap.add_argument("--force", action="store_true", help="re-export even the current ones")
    args = ap.parse_args()
    t0 = time.perf_counter()
    try:
        done = export_missing(args.checkpoints, args.only, args.force, log=lambda line: print(line, flush=True))
    except PerceptError as exc:
        print(f"make_models: {exc}", file=sys.stderr)
        return 2
    if done:
        print(f"make_models: {len(done)} .onnx exported and verified in {time.perf_counter() - t0:.0f} s")
    else:
        print(f"make_models: every shipped .onnx in {args.checkpoints} is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
