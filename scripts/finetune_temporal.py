#!/usr/bin/env python
"""Fine-tune shipped style models with the compound temporal regulariser (``--temporal-weight``), from their
current weights (``--init``), each for ``--minutes``, with the hyper-parameters in its card. The results go
to ``--out`` (default out/temporal/), named like the shipped ones, so ``scripts/eval_video.py --models DIR``
measures them beside the shipped ones (and ``percept models`` never confuses them with the shipped files).

    .venv/bin/python scripts/finetune_temporal.py --minutes 3             # the four rt models, ~13 min on 2 cores
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from percept.cli import main as percept  # noqa: E402
from percept.registry import find_model, list_models  # noqa: E402

STYLES = REPO.parent / "shared" / "data" / "styles"
DATA = REPO.parent / "shared" / "data" / "content"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--weight", type=float, default=4.0, help="--temporal-weight (default 4)")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--all-models", action="store_true", help="the full-size models too (default: the rt ones)")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "temporal")
    args = ap.parse_args()
    names = [m.name for m in list_models("style-transformer", source="shipped")]
    if not args.all_models:
        names = [n for n in names if n.endswith("_rt")]
    for name in names:
        card = find_model(name).card or {}
        hp = card.get("hyperparameters", {})
        style = STYLES / Path(card.get("style", {}).get("file", f"{name}.jpg")).name
        argv = ["train-style", "--style", str(style), "--data", str(DATA), "--out", str(args.out), "--name", name,
                "--arch", str(card.get("architecture", {}).get("arch", "rt")), "--init", name,
                "--temporal-weight", str(args.weight), "--lr", str(args.lr), "--batch-size", str(args.batch_size),
                "--image-size", str(hp.get("image_size", 256)), "--iterations", "100000",
                "--time-limit", str(args.minutes), "--quiet"]
        for key in ("content_weight", "style_weight", "tv_weight", "style_size"):
            if key in hp:
                argv += [f"--{key.replace('_', '-')}", str(hp[key])]
        print(" ".join(argv), flush=True)
        rc = percept(argv)
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
