#!/usr/bin/env python
"""Score candidate style models on the held-out photos, without the peer or the baseline.

The quick half of ``scripts/eval_style.py``: for each ``.pt`` given, the style and content loss
(``percept.evaluation.StyleMetric``, 512 px long side) averaged over the held-out photos (every
10th of the data folder), with the painting its model card names. Use it to choose between
training runs (say, a sweep of style weights on a GPU) before the full evaluation; with
``--peer`` (an ``eval_style.json``) it also prints the ratios to the peer's numbers.

    .venv/bin/python scripts/score_style.py out/train/*.pt --data ../shared/data [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from percept.evaluation import StyleMetric  # noqa: E402
from percept.images import load_image  # noqa: E402
from percept.inference.stylizer import open_stylizer  # noqa: E402
from percept.training.data import list_images, split_holdout  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="style model .pt files")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"),
                    help="folder with content/ and styles/ (default ../shared/data)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--peer", help="eval_style.json with the peer's numbers, for the ratios")
    ap.add_argument("--json", help="also write the scores here")
    args = ap.parse_args()

    data = Path(args.data)
    _, held = split_holdout(list_images(data / "content"))
    photos = {p.name: load_image(p) for p in held}
    peer = {}
    if args.peer:
        for style, r in json.loads(Path(args.peer).read_text()).get("styles", {}).items():  # eval_style.json
            peer[style] = {k: statistics.fmean(x[k] for x in r["per_photo"]["peer"]) for k in ("style", "content")}
    results, metrics = {}, {}
    for path in args.models:
        net = open_stylizer(path, device=args.device)
        style_file = net.card["style"]["file"]
        if style_file not in metrics:
            metrics[style_file] = StyleMetric(load_image(data / "styles" / style_file), args.size,
                                              device=net.device)
        scores = [metrics[style_file](net(photo, size=args.size), photo) for photo in photos.values()]
        s = statistics.fmean(x.style for x in scores)
        c = statistics.fmean(x.content for x in scores)
        style = Path(style_file).stem
        results[path] = {"style_name": style, "style": s, "content": c}
        line = f"{path}: style {s:.4f}  content {c:.4f}"
        if style in peer:
            line += f"  (x peer: style {s / peer[style]['style']:.2f}, content {c / peer[style]['content']:.2f})"
        print(line, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
