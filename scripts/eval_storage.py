#!/usr/bin/env python
"""What storing the shipped models' weights in float16 costs: before/after on held-out photos.

Compares a folder of float32 models (``--before``, e.g. the checkpoints/ of a commit before
``scripts/pack_checkpoints.py`` ran: ``git archive 74991f8 checkpoints | tar -x -C /tmp/fp32``) with the
float16-stored ones (``--after``, default checkpoints/), on the held-out photos (every 10th of
../shared/data/content):

* style networks at ``--size`` px: max abs difference and PSNR of the output (what onnxruntime gives,
  the form percept runs by default; images in [0, 1]), and the style and content losses
  (:class:`percept.evaluation.StyleMetric`) before and after;
* feature decoders at 256 px: the image-space error of the reconstruction before and after;
* bytes on disk (``.pt`` + ``.onnx``) before and after, and the wheel's share.

Writes the table into docs/BENCHMARKS.md (between the eval_storage markers).

    .venv/bin/python scripts/eval_storage.py --before /tmp/fp32/checkpoints     # ~4 min on 2 cores
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from benchdocs import update_block  # noqa: E402

from percept.device import cpu_description  # noqa: E402
from percept.evaluation import StyleMetric  # noqa: E402
from percept.images import list_images, load_image, resize_long_side, to_tensor  # noqa: E402
from percept.inference.engine import Engine, session_options  # noqa: E402
from percept.inference.invert import Inverter  # noqa: E402
from percept.models.decoder import crop_to_stride  # noqa: E402
from percept.models.losses import PerceptualLoss  # noqa: E402
from percept.registry import read_card  # noqa: E402
from percept.training.data import split_holdout  # noqa: E402


def size_of(folder: Path, name: str) -> int:
    return sum((folder / f"{name}{s}").stat().st_size for s in (".pt", ".onnx") if (folder / f"{name}{s}").exists())


def run(engine: Engine, photo) -> np.ndarray:
    x = np.asarray(photo, dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
    return engine.run(x)[0]


def to_pil(y: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(y, 0, 1).transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8), "RGB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="folder of the float32 models")
    ap.add_argument("--after", default=str(REPO / "checkpoints"))
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    before, after, data = Path(args.before), Path(args.after), Path(args.data)
    torch.manual_seed(0)
    _, held = split_holdout(list_images(data / "content"))
    photos = {h.name: load_image(h) for h in held}
    loss = PerceptualLoss()
    rows, dec_rows = [], []
    total_before = total_after = 0
    for card_path in sorted(after.glob("*.json")):
        name = card_path.stem
        card = read_card(card_path)
        total_before += size_of(before, name)
        total_after += size_of(after, name)
        if card.get("kind") == "style-transformer":
            painting = load_image(data / "styles" / card.get("style", {}).get("file", f"{name}.jpg"))
            metric = StyleMetric(painting, args.size, loss)
            e0 = Engine(before / f"{name}.onnx", backend="onnx", device="cpu")
            e1 = Engine(after / f"{name}.onnx", backend="onnx", device="cpu")
            t1 = Engine(after / f"{name}.pt", backend="torch", device="cpu")
            diffs, psnrs, parity, s0, s1, c0, c1 = [], [], [], [], [], [], []
            for photo in photos.values():
                photo = resize_long_side(photo, args.size)
                y0, y1, yt = run(e0, photo), run(e1, photo), run(t1, photo)
                diffs.append(float(np.abs(y1 - y0).max()))
                psnrs.append(10 * np.log10(1.0 / max(float(np.mean((y1 - y0) ** 2)), 1e-12)))
                parity.append(float(np.abs(y1 - yt).max()))
                sa, sb = metric(to_pil(y0), photo), metric(to_pil(y1), photo)
                s0.append(sa.style), s1.append(sb.style), c0.append(sa.content), c1.append(sb.content)
            rows.append((name, max(diffs), min(psnrs), max(parity), statistics.fmean(s0), statistics.fmean(s1),
                         statistics.fmean(c0), statistics.fmean(c1), size_of(before, name), size_of(after, name)))
            print(rows[-1], flush=True)
        elif card.get("kind") == "feature-decoder":
            layer = card["layer"]
            i0 = Inverter(layer, before / f"{name}.pt", device="cpu")
            i1 = Inverter(layer, after / f"{name}.pt", device="cpu", net=i0.net)
            err0 = [i0(p, 256).image_error for p in photos.values()]
            err1 = [i1(p, 256).image_error for p in photos.values()]
            o0, o1 = (ort.InferenceSession(str(f / f"{name}.onnx"), session_options(), providers=["CPUExecutionProvider"])
                      for f in (before, after))
            onnx_diff = 0.0
            for p in photos.values():
                x = crop_to_stride(to_tensor(resize_long_side(p, 256)), i0.decoder.stride)
                feats = {"features": i0.features(x).numpy()}
                onnx_diff = max(onnx_diff, float(np.abs(o0.run(None, feats)[0] - o1.run(None, feats)[0]).max()))
            dec_rows.append((name, statistics.fmean(err0), statistics.fmean(err1), size_of(before, name),
                             size_of(after, name), onnx_diff))
            print(dec_rows[-1], flush=True)
    md = [f"Machine: {cpu_description()}. Command: `.venv/bin/python scripts/eval_storage.py --before DIR` "
          f"(DIR: the float32 checkpoints/, e.g. `git archive 74991f8 checkpoints | tar -x -C /tmp/fp32`). "
          f"{len(photos)} held-out photos ({', '.join(photos)}); style networks at {args.size} px through "
          "onnxruntime (the default backend), decoders at 256 px. Images in [0, 1]; 1/255 = 3.9e-3.",
          "", "| style model | max abs diff fp16 vs fp32 | worst PSNR (dB) | onnx vs torch (fp16 weights) | "
          "style loss fp32 | style loss fp16 | content loss fp32 | content loss fp16 | MB before | MB after |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r[0]} | {r[1]:.2e} | {r[2]:.1f} | {r[3]:.2e} | {r[4]:.4f} | {r[5]:.4f} | {r[6]:.4f} | "
                  f"{r[7]:.4f} | {r[8] / 1e6:.1f} | {r[9] / 1e6:.1f} |")
    md += ["", "The decoders' `.pt` weights were already stored in float16 when they were trained (a44cba6), so only "
           "their `.onnx` changed: its max abs diff is onnxruntime before vs after on the photos' features.", "",
           "| decoder | image-space error before (torch) | after (torch) | onnx max abs diff before vs after | "
           "MB before | MB after |", "|---|---|---|---|---|---|"]
    for r in dec_rows:
        md.append(f"| {r[0]} | {r[1]:.4f} | {r[2]:.4f} | {r[5]:.2e} | {r[3] / 1e6:.1f} | {r[4] / 1e6:.1f} |")
    md += ["", f"All shipped models: {total_before / 1e6:.1f} MB before, {total_after / 1e6:.1f} MB after."]
    text = "\n".join(md)
    print(text)
    if not args.no_docs:
        update_block("eval_storage", "Shipped-model storage: float16 weights (cost on held-out photos)", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
