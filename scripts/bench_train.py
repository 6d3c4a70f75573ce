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
import statistics
import sys
import tempfile
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
from percept.training.style import cpu_has_bf16, step_precision, train_step  # noqa: E402


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


def _ours(dev, style, mf):
    """percept's step as train-style sets it up: (network, loss, optimiser), seeded."""
    torch.manual_seed(0)
    model = TransformerNet().to(dev).to(memory_format=mf)
    loss = PerceptualLoss(1.0, 20.0, 10.0).to(dev)
    loss.net.to(memory_format=mf)
    loss.set_style(style)
    return model, loss, torch.optim.Adam(model.parameters(), 1e-3)


def _photo_batches(n: int, batch: int, size: int, seed: int = 0) -> list[torch.Tensor]:
    """``n`` batches of random crops of scikit-image's sample photos (the same for every contender)."""
    from percept.inference.export import calibration_images
    from percept.training.data import RandomCropDataset

    with tempfile.TemporaryDirectory() as tmp:
        from PIL import Image

        files = []
        for i, im in enumerate(calibration_images(None, 2 * size)):
            f = Path(tmp) / f"{i}.png"
            Image.fromarray((im[0].transpose(1, 2, 0) * 255).astype("uint8")).save(f)
            files.append(f)
        ds = RandomCropDataset(files, size, n * batch, seed=seed)
        return [torch.stack([ds[i * batch + j] for j in range(batch)]) for i in range(n)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=192, help="crop size (default 192: train-style's CPU default)")
    ap.add_argument("--batch", type=int, default=2, help="batch (default 2: train-style's CPU default)")
    ap.add_argument("--steps", type=int, default=3, help="steps per timed window")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--curve", type=int, default=0,
                    help="also train this many steps with each precision from one start on the same photo "
                         "batches and plot the loss curves (docs/train_precision_curve.png)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.manual_seed(0)
    style = torch.rand(1, 3, 256, 256, device=dev)
    x = torch.rand(args.batch, 3, args.size, args.size, device=dev)

    mf, amp = step_precision(dev, args.batch)
    bf16_ok = dev.type == "cuda" or cpu_has_bf16()
    contenders = {"percept fp32": False}
    if bf16_ok:
        contenders["percept bf16 autocast"] = True

    def ours(use_amp: bool):
        model, loss, opt = _ours(dev, style, mf)
        return lambda: train_step(model, loss, opt, x.contiguous(memory_format=mf), use_amp)

    runs = {label: ours(a) for label, a in contenders.items()}

    # reference
    model_r = TransformerNet().to(dev)
    vgg = LossNetwork("pool5").to(dev)
    with torch.no_grad():
        fs = vgg(style, vgg.names)
    grams = {k: gram_matrix(fs[k]) for k in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")}
    opt_r = torch.optim.Adam(model_r.parameters(), 1e-3)
    runs = {"reference": lambda: reference_step(model_r, vgg, grams, opt_r, x, 1.0, 20.0, 10.0), **runs}

    def window(fn):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(args.steps):
            fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return args.steps / (time.perf_counter() - t)

    for fn in runs.values():  # warm-up
        fn()
    speeds: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):
        for k, fn in runs.items():
            speeds[k].append(window(fn))
    med = {k: statistics.median(v) for k, v in speeds.items()}
    from percept.device import cpu_description

    dev_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else \
        f"{cpu_description()}, {torch.get_num_threads()} threads"
    layout = "channels_last" if mf == torch.channels_last else "NCHW"
    lines = [
        f"Style-training step, TransformerNet 32-64-128 x5, batch {args.batch} at {args.size}x{args.size}, "
        f"on {dev_name}; median of {args.repeats} windows of {args.steps} steps, every loop in turn in one run. "
        f"`train-style` on this device uses {'bf16 autocast' if amp else 'fp32'} ({layout}).",
        f"Command: `.venv/bin/python scripts/bench_train.py --size {args.size} --batch {args.batch} "
        f"--steps {args.steps} --repeats {args.repeats} --device {args.device}`", "",
        "| loop | iterations/s | images/s | speed-up |", "|---|---|---|---|",
        f"| reference (full-depth VGG19, fp32, NCHW) | {med['reference']:.3f} | {med['reference'] * args.batch:.2f} | 1.00x |"]
    for k in contenders:
        lines.append(f"| {k} `train_step` ({layout}) | {med[k]:.3f} | {med[k] * args.batch:.2f} | "
                     f"{med[k] / med['reference']:.2f}x |")
    if args.curve and bf16_ok:
        lines += ["", curve(args, dev, style, mf)]
    md = "\n".join(lines)
    print(md)
    if not args.no_docs:
        if dev.type == "cuda":
            update_block("bench_train_gpu", "Training throughput (GPU)", md)
        else:
            update_block("bench_train", "Training throughput (CPU)", md)
    return 0


def curve(args, dev, style, mf) -> str:
    """fp32 and bf16 autocast trained from one start on the same photo batches: both loss curves in one plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = _photo_batches(args.curve, args.batch, args.size)
    hist = {}
    for label, use_amp in (("fp32", False), ("bf16 autocast", True)):
        model, loss, opt = _ours(dev, style, mf)
        hist[label] = [float(train_step(model, loss, opt, b.to(dev).contiguous(memory_format=mf), use_amp)["total"])
                       for b in batches]
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=110)
    for label, ys in hist.items():
        ax.plot(range(1, len(ys) + 1), ys, label=label, lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("total loss")
    ax.set_title(f"train_step, batch {args.batch} at {args.size} px: fp32 vs bf16 autocast, same start and photos")
    ax.legend()
    fig.tight_layout()
    out = REPO / "docs" / "train_precision_curve.png"
    fig.savefig(out)
    tail = max(1, len(batches) // 5)
    a, b = (statistics.mean(h[-tail:]) for h in hist.values())
    return (f"Loss curves ({args.curve} steps, `--curve {args.curve}`): `docs/train_precision_curve.png`. Mean total loss "
            f"over the last {tail} steps: fp32 {a:.4f}, bf16 autocast {b:.4f} ({100 * (b - a) / a:+.1f}%).")


if __name__ == "__main__":
    sys.exit(main())
