#!/usr/bin/env python
"""Training throughput: percept's style-training step against a straightforward reference loop.

Reference (what a first implementation does): the full-depth VGG19 (through pool5) run on the
stylised batch and on the content batch, fp32, NCHW, every layer's features kept, the losses picked
out of that dict afterwards. Ours: ``percept.training.style.train_step`` as ``train-style`` runs
it (loss network truncated at the deepest layer needed, content targets without gradients and only
as deep as the content layer; memory format and autocast from ``step_precision``).

Both run the same transformer network, batch and losses, alternating in one process; the median of
``--repeats`` timed windows is reported. Writes the table into docs/BENCHMARKS.md.

    .venv/bin/python scripts/bench_train.py [--size 256 --batch 4 --steps 3 --repeats 3 --device cpu]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from benchdocs import update_block  # noqa: E402

from percept.models.losses import PerceptualLoss, content_loss, gram_matrix, tv_loss  # noqa: E402
from percept.models.transformer import TransformerNet  # noqa: E402
from percept.models.vgg import LossNetwork  # noqa: E402
from percept.training.style import step_precision, train_step  # noqa: E402


def reference_step(model, vgg, style_grams, optimizer, x, cw, sw, tvw):
    """The straightforward loop: full-depth features for both images, NCHW, fp32."""
    optimizer.zero_grad()
    y = model(x)
    fy = vgg(y, vgg.names)
    fx = vgg(x, vgg.names)
    c = content_loss(fy["relu4_2"], fx["relu4_2"])
    s = 0
    for layer, target in style_grams.items():
        g = gram_matrix(fy[layer])
        s = s + torch.nn.functional.mse_loss(g, target.expand_as(g)) / target.pow(2).mean()
    s = s / len(style_grams)
    loss = cw * c + sw * s + tvw * tv_loss(y)
    loss.backward()
    optimizer.step()
    return loss.detach()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3, help="steps per timed window")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)
    style = torch.rand(1, 3, 256, 256, device=dev)
    x = torch.rand(args.batch, 3, args.size, args.size, device=dev)

    # ours
    mf, amp = step_precision(dev, args.batch)
    model_o = TransformerNet().to(dev).to(memory_format=mf)
    loss_o = PerceptualLoss(1.0, 20.0, 10.0).to(dev)
    loss_o.net.to(memory_format=mf)
    loss_o.set_style(style)
    opt_o = torch.optim.Adam(model_o.parameters(), 1e-3)
    x_o = x.contiguous(memory_format=mf)

    # reference
    model_r = TransformerNet().to(dev)
    vgg = LossNetwork("pool5").to(dev)
    with torch.no_grad():
        fs = vgg(style, vgg.names)
    grams = {k: gram_matrix(fs[k]) for k in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")}
    opt_r = torch.optim.Adam(model_r.parameters(), 1e-3)

    def window(fn):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(args.steps):
            fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return args.steps / (time.perf_counter() - t)

    run_o = lambda: train_step(model_o, loss_o, opt_o, x_o, amp)  # noqa: E731
    run_r = lambda: reference_step(model_r, vgg, grams, opt_r, x, 1.0, 20.0, 10.0)  # noqa: E731
    run_o(), run_r()  # warm-up
    ours, ref = [], []
    for _ in range(args.repeats):
        ref.append(window(run_r))
        ours.append(window(run_o))
    mo, mr = statistics.median(ours), statistics.median(ref)
    dev_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else \
        f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    md = "\n".join([
        f"Style-training step, TransformerNet 32-64-128 x5, batch {args.batch} at {args.size}x{args.size}, "
        f"on {dev_name}; median of {args.repeats} windows of {args.steps} steps, both loops alternating in one run.",
        f"Command: `.venv/bin/python scripts/bench_train.py --size {args.size} --batch {args.batch} "
        f"--steps {args.steps} --repeats {args.repeats} --device {args.device}`", "",
        "| loop | iterations/s | images/s | speed-up |", "|---|---|---|---|",
        f"| reference (full-depth VGG19, fp32, NCHW) | {mr:.3f} | {mr * args.batch:.2f} | 1.00x |",
        f"| percept `train_step` ({'bf16 autocast' if amp else 'fp32'}, "
        f"{'channels_last' if mf == torch.channels_last else 'NCHW'}) | {mo:.3f} | {mo * args.batch:.2f} | {mo / mr:.2f}x |"])
    print(md)
    if not args.no_docs:
        if dev.type == "cuda":
            update_block("bench_train_gpu", "Training throughput (GPU)", md)
        else:
            update_block("bench_train", "Training throughput (CPU)", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
