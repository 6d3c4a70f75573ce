#!/usr/bin/env python
"""What flow guidance costs in speed: the headless webcam loop at 640x480 with an rt model, per frame and with
``--temporal`` (its ``ultrafast`` flow), and video conversion (frames per second) without it, with it (the
``medium`` flow that ``percept video`` uses) and with ``--flow ultrafast``, for each engine backend (onnxruntime
and OpenVINO by default: on CPUs OpenVINO runs the rt networks faster). Runs alternate (per frame,
temporal, per frame, ...) so the machine's drift hits both alike; the median of ``--repeats`` is reported.

The "camera" is a 640x480 clip made here (a pan over scikit-image's ``astronaut`` with a crossing disc,
``percept.clips.camera_clip``) played at 30 fps through ``webcam --source``, the way a camera delivers frames.
Writes the table into docs/BENCHMARKS.md (bench_temporal markers).

    .venv/bin/python scripts/bench_temporal.py            # ~8 min on 2 cores (onnxruntime and OpenVINO)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from benchdocs import update_block  # noqa: E402

from percept.clips import camera_clip  # noqa: E402
from percept.device import cpu_description  # noqa: E402


def main() -> int:
    import cv2
    import skimage.data

    from percept.argtypes import LIVE_FLOW, VIDEO_FLOW
    from percept.inference.engine import Engine
    from percept.inference.options import VideoOptions
    from percept.inference.stylizer import Stylizer
    from percept.inference.video import stylize_video
    from percept.inference.webcam import run_webcam

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="starry_night_rt")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backends", nargs="+", default=["onnx", "openvino"],
                    help="engine backends to measure, each in the same alternating rounds (default onnx openvino)")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "cam.mp4"
        frames = camera_clip(skimage.data.astronaut(), args.frames, (640, 480), "pan", speed=1.0, seed=3)
        w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
        for f in frames:
            w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        w.release()
        # per backend: webcam FPS and dropped share (per frame, --temporal); video conversion frames/s (per frame,
        # --temporal with VIDEO_FLOW, --flow LIVE_FLOW)
        cam = {b: {False: [], True: []} for b in args.backends}
        drop = {b: {False: [], True: []} for b in args.backends}
        conv: dict = {b: {False: [], True: [], "live": []} for b in args.backends}
        engines = {b: Engine(args.model, backend=b) for b in args.backends}
        for _ in range(args.repeats):
            for b, engine in engines.items():
                for temporal in (False, True):
                    s = run_webcam([args.model], source=str(clip), size=640, headless=True, backend=b,
                                   output=Path(tmp) / "out.mp4", frames=args.frames - 10, temporal=temporal)
                    cam[b][temporal].append(s.fps)
                    drop[b][temporal].append(s.dropped / max(1, s.captured))
                    for mode in ((True, "live") if temporal else (False,)):
                        opts = VideoOptions(size=640, temporal=temporal,
                                            flow=LIVE_FLOW if mode == "live" else VIDEO_FLOW)
                        t0 = time.perf_counter()
                        r = stylize_video(clip, Path(tmp) / "conv.mp4", Stylizer(engine), opts, progress=False)
                        conv[b][mode].append(r["frames"] / (time.perf_counter() - t0))
                    print(f"{b} temporal={temporal}: webcam {s.fps:.1f} FPS ({s.dropped} of {s.captured} dropped), "
                          f"video {conv[b][temporal][-1]:.1f} frames/s", flush=True)
    md = [f"Machine: {cpu_description()}. Command: `.venv/bin/python scripts/bench_temporal.py` ({args.model}, "
          f"640x480 at 30 fps, network at 640 px; the webcam's flow DIS {LIVE_FLOW}; median of {args.repeats} "
          "alternating runs; each backend as `--backend` names it: onnx = onnxruntime, openvino = OpenVINO fp32).", "",
          "| backend | | per frame | --temporal | ratio |", "|---|---|---|---|---|"]
    for b in args.backends:
        med = {k: {t: statistics.median(v[b][t]) for t in v[b]} for k, v in (("cam", cam), ("drop", drop), ("conv", conv))}
        md += [f"| {b} | webcam loop, FPS shown (target >= 20 with --temporal) | {med['cam'][False]:.1f} | "
               f"{med['cam'][True]:.1f} | {med['cam'][True] / med['cam'][False]:.2f} |",
               f"| {b} | webcam, camera frames dropped | {med['drop'][False] * 100:.0f}% | {med['drop'][True] * 100:.0f}% | |",
               f"| {b} | video conversion, frames/s (--temporal: DIS {VIDEO_FLOW}, the default) | {med['conv'][False]:.1f} | "
               f"{med['conv'][True]:.1f} | {med['conv'][True] / med['conv'][False]:.2f} |",
               f"| {b} | video conversion, frames/s with `--flow {LIVE_FLOW}` | {med['conv'][False]:.1f} | "
               f"{med['conv']['live']:.1f} | {med['conv']['live'] / med['conv'][False]:.2f} |"]
    text = "\n".join(md)
    print(text)
    if not args.no_docs:
        update_block("bench_temporal", "Video flicker: the speed of flow guidance", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
