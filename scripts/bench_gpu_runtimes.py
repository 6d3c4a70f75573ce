#!/usr/bin/env python
"""GPU runtimes: each shipped architecture through onnxruntime-gpu's CUDA and TensorRT providers (IO binding;
TensorRT with fp16 engines cached beside the model), fp32 and the fp16 export on CUDA, at 512x512,
1920x1080 and 3840x2160 (target: the rt network at 3840x2160 at 60 FPS or more). Needs a CUDA GPU;
the first TensorRT call of each shape builds its engine (not timed: the warm-up calls).

    .venv/bin/python scripts/bench_gpu_runtimes.py [--repeats 20]

Writes its table into docs/BENCHMARKS.md (between the gpu_runtimes markers).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from benchdocs import update_block  # noqa: E402

from percept.inference.engine import Engine, cuda_gpu_present  # noqa: E402
from percept.inference.export import export_onnx  # noqa: E402

SIZES = ((512, 512), (1920, 1080), (3840, 2160))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--style", default="starry_night")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    if not cuda_gpu_present():
        print("no CUDA GPU here: nothing to measure", file=sys.stderr)
        return 1
    import torch

    gpu = torch.cuda.get_device_name(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch, name in (("johnson", args.style), ("rt", f"{args.style}_rt")):
            half = Path(tmp) / f"{name}_fp16.onnx"
            export_onnx(name, half, fp16=True, openvino_check=False)
            engines = {"cuda fp32": Engine(name, device="cuda"), "cuda fp16": Engine(half, device="cuda"),
                       "tensorrt fp16": Engine(name, device="tensorrt")}
            for w, h in SIZES:
                x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
                row = {"arch": arch, "size": f"{w}x{h}"}
                for label, eng in engines.items():
                    for _ in range(3):
                        eng.run(x)
                    times = []
                    for _ in range(args.repeats):
                        t = time.perf_counter()
                        eng.run(x)
                        times.append(time.perf_counter() - t)
                    row[label] = statistics.median(times)
                rows.append(row)
                print(row, flush=True)
    cols = ["cuda fp32", "cuda fp16", "tensorrt fp16"]
    md = "\n".join([
        f"GPU: {gpu}; one float32 frame in and out (host memory, IO binding), median of {args.repeats} calls after "
        "3 warm-up calls (TensorRT builds its engine in those). Command: `.venv/bin/python scripts/bench_gpu_runtimes.py`.",
        "", "| network | frame | " + " | ".join(f"{c} ms (FPS)" for c in cols) + " |", "|---" * (len(cols) + 2) + "|",
        *[f"| {r['arch']} | {r['size']} | " + " | ".join(f"{1000 * r[c]:.1f} ({1 / r[c]:.0f})" for c in cols) + " |"
          for r in rows]])
    print(md)
    if not args.no_docs:
        update_block("gpu_runtimes", "GPU runtimes (CUDA, TensorRT)", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
