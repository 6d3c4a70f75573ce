#!/usr/bin/env python
"""What the deploy form (percept/models/deploy.py) buys in onnxruntime: the same trained network
exported as trained and in its deploy form, timed on the same frames in one run.

For each architecture (``johnson``: the full-size network, ``rt``: the real-time one) and frame size,
both ONNX files run in onnxruntime on the CPU (all cores, ORT_ENABLE_ALL, as ``Engine`` sets it up);
each number is the median of ``--repeats`` timed calls, each right after an untimed call of the same
file, the two files taken in turn (so a change in the machine's load hits both alike). The two
files' outputs are compared too (max abs difference, images in [0, 1]).

    .venv/bin/python scripts/bench_deploy.py          # ~2 min on 2 cores

Writes its table into docs/BENCHMARKS.md (between the bench_deploy markers).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from benchdocs import update_block  # noqa: E402


def session(data: bytes):
    import onnxruntime as ort

    from percept.inference.runtime import session_options

    return ort.InferenceSession(data, session_options(), providers=["CPUExecutionProvider"])


def main() -> int:
    from percept.inference.export import _to_onnx_bytes
    from percept.models.transformer import load_style_network as load_style_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--style", default="starry_night")
    ap.add_argument("--sizes", nargs="*", type=int, default=[256, 512, 1024])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()

    rows = []
    for arch, name in (("johnson", args.style), ("rt", f"{args.style}_rt")):
        net, _ = load_style_model(name)
        net = net.float().eval()
        trained, deployed = session(_to_onnx_bytes(net, 18, deploy=False)), session(_to_onnx_bytes(net, 18))
        for size in args.sizes:
            x = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
            times: dict = {"trained": [], "deploy": []}
            outs = {}
            for _ in range(args.repeats):
                for label, sess in (("trained", trained), ("deploy", deployed)):
                    sess.run(None, {"image": x})
                    t = time.perf_counter()
                    outs[label] = sess.run(None, {"image": x})[0]
                    times[label].append(time.perf_counter() - t)
            a, b = (statistics.median(times[k]) for k in ("trained", "deploy"))
            diff = float(np.abs(outs["trained"] - outs["deploy"]).max())
            rows.append((arch, size, a, b, diff))
            print(f"{arch} {size}: as trained {1000 * a:.1f} ms, deploy form {1000 * b:.1f} ms "
                  f"(time saved {100 * (1 - b / a):.0f}%), max diff {diff:.1e}", flush=True)
    md = "\n".join([
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; style {args.style}; onnxruntime on the CPU; median "
        f"of {args.repeats} timed calls, each right after an untimed one, the two files in turn. Command: "
        "`.venv/bin/python scripts/bench_deploy.py`.", "",
        "| network | frame | as trained (ms) | deploy form (ms) | time saved | max abs diff |",
        "|---|---|---|---|---|---|",
        *[f"| {arch} | {s}x{s} | {1000 * a:.1f} | {1000 * b:.1f} | {100 * (1 - b / a):.0f}% | {d:.1e} |"
          for arch, s, a, b, d in rows]])
    print(md)
    if not args.no_docs:
        update_block("bench_deploy", "Deploy form (ONNX graph rewrites)", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
