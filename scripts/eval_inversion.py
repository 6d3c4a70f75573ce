#!/usr/bin/env python
"""Held-out evaluation of feature inversion: the shipped decoders (Dosovitskiy & Brox 2016) against
the Mahendran & Vedaldi optimisation (percept.visualize.inversion), per VGG19 layer.

On the held-out photos (every 10th of ../shared/data/content, never seen in training), resized to
``--size`` px long side and cropped to a multiple of 16 (so every layer sees the same pixels):

* image-space normalised error ``||x_hat - x|| / ||x - mean(x)||`` (Dosovitskiy & Brox's measure),
* feature-space relative error ``||phi(x_hat) - phi(x)|| / ||phi(x)||`` at the inverted layer,
* PSNR and SSIM (scikit-image), and seconds per image (decoder: median of ``--repeats`` warm runs,
  with and without computing the features; optimisation: one run).

The decoder runs on every held-out photo; the optimisation (minutes per image on 2 cores) on the
first ``--opt-photos``; the table gives both the decoder's mean over all photos and over the
photos the optimisation saw. Targets: the decoder's image-space error below the optimisation's at
every layer; the decoder >= 1000x faster; >= 24 dB PSNR at relu2_1.

Writes out/eval_inversion/eval_inversion.json, the figure docs/inversion.jpg (photo | decoder per
layer | optimisation per layer) and the table into docs/BENCHMARKS.md (eval_inversion markers).

    .venv/bin/python scripts/eval_inversion.py                  # ~25 min on 2 cores
    .venv/bin/python scripts/eval_inversion.py --opt-photos 0   # decoders only, seconds
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from benchdocs import update_block  # noqa: E402

from percept.demo import contact_sheet  # noqa: E402
from percept.device import cpu_description  # noqa: E402
from percept.images import load_image, resize_long_side, to_image, to_tensor  # noqa: E402
from percept.inference.invert import Inverter, crop_to_stride  # noqa: E402
from percept.models.decoder import shipped_decoder  # noqa: E402
from percept.models.vgg import LossNetwork, layer_names  # noqa: E402
from percept.registry import list_models  # noqa: E402
from percept.training.data import list_images, split_holdout  # noqa: E402
from percept.visualize.inversion import MV_DEFAULTS, feature_space_error, image_space_error, invert_optimize  # noqa: E402


def metrics(net: LossNetwork, y: torch.Tensor, x: torch.Tensor, layer: str) -> dict:
    from skimage.metrics import structural_similarity

    mse = float((y - x).pow(2).mean())
    a = y[0].permute(1, 2, 0).numpy().astype(np.float64)
    b = x[0].permute(1, 2, 0).numpy().astype(np.float64)
    return {"image_error": image_space_error(y, x), "feature_error": feature_space_error(net, y, x, layer),
            "psnr": 10 * math.log10(1.0 / max(mse, 1e-12)),
            "ssim": float(structural_similarity(a, b, channel_axis=2, data_range=1.0))}


def mean(rows: list[dict], key: str) -> float:
    return float(statistics.fmean(r[key] for r in rows)) if rows else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "content"))
    ap.add_argument("--layers", nargs="*", help="default: every layer with a shipped decoder")
    ap.add_argument("--size", type=int, default=192, help="long side of the photos (default 192)")
    ap.add_argument("--opt-photos", type=int, default=2, help="held-out photos the optimisation inverts (default 2)")
    ap.add_argument("--iterations", type=int, help=f"optimisation steps (default {MV_DEFAULTS['iterations']} "
                                                   f"+ {MV_DEFAULTS['fine_iterations']} fine)")
    ap.add_argument("--repeats", type=int, default=5, help="decoder timing runs (median)")
    ap.add_argument("--out", default=str(REPO / "out" / "eval_inversion"))
    ap.add_argument("--figure", default=str(REPO / "docs" / "inversion.jpg"))
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/BENCHMARKS.md or the figure")
    args = ap.parse_args()

    torch.manual_seed(0)
    _, held = split_holdout(list_images(args.data))
    # the reconstruction decoder of each layer (not AdaIN's decoder_relu4_1_adain, trained for style, not inversion)
    decoders = {layer: shipped_decoder(layer) for layer in {m.card["layer"] for m in list_models("feature-decoder")}}
    order = layer_names()
    layers = sorted(args.layers or decoders, key=order.index)
    net = LossNetwork(layers[-1])
    photos = [crop_to_stride(to_tensor(resize_long_side(load_image(h), args.size)), 16) for h in held]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"machine": f"{cpu_description()}, {torch.get_num_threads()} threads", "size": args.size,
               "held_out": [h.name for h in held], "layers": {}}
    fig_rows = [[("photo", to_image(x))] for x in photos[: max(1, args.opt_photos)]]
    fig_opt = [[] for _ in fig_rows]

    for layer in layers:
        inv = Inverter(layer, decoders[layer], device="cpu", net=net)
        dec_rows, opt_rows = [], []
        for i, (h, x) in enumerate(zip(held, photos)):
            inv.decode(inv.features(x))  # warm-up
            full, dec_only = [], []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                phi = inv.features(x)
                t1 = time.perf_counter()
                y = inv.decode(phi)
                t2 = time.perf_counter()
                full.append(t2 - t0)
                dec_only.append(t2 - t1)
            dec_rows.append({"photo": h.name, **metrics(net, y, x, layer),
                             "seconds": statistics.median(full), "seconds_decode_only": statistics.median(dec_only)})
            if i < len(fig_rows):
                fig_rows[i].append((f"decoder {layer}", to_image(y)))
            if i < args.opt_photos:
                r = invert_optimize(x, layer, net=net, iterations=args.iterations, device="cpu", progress=False)
                opt_rows.append({"photo": h.name, **metrics(net, r.tensor, x, layer), "seconds": r.seconds})
                fig_opt[i].append((f"optimisation {layer}", r.image))
                print(f"{layer} {h.name}: decoder {dec_rows[-1]}, optimisation {opt_rows[-1]}", flush=True)
        results["layers"][layer] = {"decoder": dec_rows, "optimize": opt_rows}
        (out / "eval_inversion.json").write_text(json.dumps(results, indent=2))

    md = render(results, args)
    print(md)
    if not args.no_docs:
        figure = contact_sheet([r + o for r, o in zip(fig_rows, fig_opt)], tile=args.size)
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        figure.save(args.figure, quality=90)
        update_block("eval_inversion", "Feature inversion (held-out photos)", md)
    return 0


def render(res: dict, args) -> str:
    n_opt = max((len(r["optimize"]) for r in res["layers"].values()), default=0)
    lines = [
        f"Held-out photos ({len(res['held_out'])}: {', '.join(res['held_out'])}) at {res['size']} px long side "
        f"(cropped to a multiple of 16); machine: {res['machine']}. Command: "
        f"`.venv/bin/python scripts/eval_inversion.py` (optimisation on the first {n_opt} photos: "
        f"{MV_DEFAULTS['iterations']} + {MV_DEFAULTS['fine_iterations']} steps, `percept.visualize.inversion` defaults).",
        "",
        "Image error = `||x_hat - x|| / ||x - mean(x)||`; feature error = `||phi(x_hat) - phi(x)|| / ||phi(x)||` at "
        "the layer. Decoder columns: mean over all held-out photos (in brackets: over the photos the optimisation "
        "inverted). Seconds: decoder = VGG features + decoder (decoder alone in brackets), median of "
        f"{args.repeats} warm runs; optimisation = one run. For reference, Dosovitskiy & Brox report image errors "
        "of 0.35 (conv5) to 0.58 (fc8) for their AlexNet decoders against 0.71-0.84 for Mahendran & Vedaldi.",
        "",
        "| layer | decoder image err | optimisation image err | decoder < optimisation | decoder feature err | "
        "optimisation feature err | decoder PSNR | optimisation PSNR | decoder SSIM | optimisation SSIM | "
        "decoder s | optimisation s | speed-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for layer, r in res["layers"].items():
        d, o = r["decoder"], r["optimize"]
        d_same = d[: len(o)]
        both = bool(o)

        def cell(key, fmt):
            main = format(mean(d, key), fmt)
            return f"{main} ({format(mean(d_same, key), fmt)})" if both else main

        ok = ("yes" if mean(d_same, "image_error") < mean(o, "image_error") else "**no**") if both else "-"
        speed = mean(o, "seconds") / mean(d_same, "seconds") if both else float("nan")
        speed_dec = mean(o, "seconds") / mean(d_same, "seconds_decode_only") if both else float("nan")
        lines.append(
            f"| {layer} | {cell('image_error', '.3f')} | " + (f"{mean(o, 'image_error'):.3f}" if both else "-")
            + f" | {ok} | {cell('feature_error', '.3f')} | " + (f"{mean(o, 'feature_error'):.3f}" if both else "-")
            + f" | {cell('psnr', '.1f')} | " + (f"{mean(o, 'psnr'):.1f}" if both else "-")
            + f" | {cell('ssim', '.3f')} | " + (f"{mean(o, 'ssim'):.3f}" if both else "-")
            + f" | {mean(d, 'seconds'):.3f} ({mean(d, 'seconds_decode_only'):.3f}) | "
            + (f"{mean(o, 'seconds'):.1f} | {speed:.0f}x ({speed_dec:.0f}x) |" if both else "- | - |"))
    lines += ["", "Figure (`docs/inversion.jpg`): photo | decoder at each layer | optimisation at each layer.", "",
              "![feature inversion](inversion.jpg)"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
