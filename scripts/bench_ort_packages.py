#!/usr/bin/env python
"""onnxruntime-gpu against plain onnxruntime on the CPU, in one run.

percept depends on onnxruntime-gpu on Linux x86_64 (CUDA and TensorRT where there is a GPU). Both
packages install the same ``onnxruntime`` module, so they never share an environment: this script
puts plain onnxruntime of the *same version* into its own folder (``out/bench/ort-cpu``, ``pip
install --no-deps --target``; ``PYTHONPATH`` puts it first) and times the shipped models' ONNX files
on the CPU execution provider with percept's session options in child processes, alternating the
two packages round by round so that a drifting machine treats both alike. Median of every timed call.

Writes the table into docs/BENCHMARKS.md (between the bench_ort_packages markers).

    .venv/bin/python scripts/bench_ort_packages.py            # ~3 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from benchdocs import update_block  # noqa: E402

from percept.device import cpu_description  # noqa: E402

CHILD = r"""
import json, sys, time
import numpy as np
import onnxruntime as ort
from percept.inference.runtime import session_options
models, sizes, reps = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
out = {"file": ort.__file__, "version": ort.__version__, "providers": ort.get_available_providers(), "times": {}}
for name, path in models.items():
    sess = ort.InferenceSession(path, session_options(), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0].name
    for s in sizes:
        x = np.random.default_rng(0).random((1, 3, s, s), dtype=np.float32)
        sess.run(None, {inp: x})
        ts = []
        for _ in range(reps):
            t = time.perf_counter(); sess.run(None, {inp: x}); ts.append(time.perf_counter() - t)
        out["times"][f"{name}@{s}"] = ts
print(json.dumps(out))
"""


def installed(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=["starry_night", "starry_night_rt"])
    ap.add_argument("--sizes", nargs="*", type=int, default=[256, 512])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--reps", type=int, default=5, help="timed calls per model and size in each round")
    ap.add_argument("--target", default=str(REPO / "out" / "bench" / "ort-cpu"))
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()
    gpu_version = installed("onnxruntime-gpu")
    if gpu_version is None:
        print("bench_ort_packages: onnxruntime-gpu is not installed in this environment (make install)", file=sys.stderr)
        return 2
    if installed("onnxruntime") is not None:
        print("bench_ort_packages: plain onnxruntime is installed beside onnxruntime-gpu; they overwrite each "
              "other's module (make install removes it)", file=sys.stderr)
        return 2
    target = Path(args.target)
    marker = target / f"onnxruntime-{gpu_version}.dist-info"
    if not marker.is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade", "--target",
                        str(target), f"onnxruntime=={gpu_version}"], check=True)
    from percept.registry import find_model

    models = {m: str(find_model(m).onnx) for m in args.models}
    env_plain = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(REPO)])}
    env_gpu = {**os.environ, "PYTHONPATH": str(REPO)}
    times: dict[str, dict[str, list[float]]] = {"onnxruntime": {}, "onnxruntime-gpu": {}}
    info = {}
    for r in range(args.rounds):
        order = [("onnxruntime", env_plain), ("onnxruntime-gpu", env_gpu)]
        for pkg, env in order if r % 2 == 0 else order[::-1]:
            res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(models), json.dumps(args.sizes),
                                  str(args.reps)], env=env, capture_output=True, text=True, check=True)
            out = json.loads(res.stdout.strip().splitlines()[-1])
            info[pkg] = out
            for k, ts in out["times"].items():
                times[pkg].setdefault(k, []).extend(ts)
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    for pkg in times:
        print(f"{pkg}: {info[pkg]['version']} from {info[pkg]['file']}; providers {info[pkg]['providers']}")
    md = [f"Machine: {cpu_description()}. Command: `.venv/bin/python scripts/bench_ort_packages.py` "
          f"(both packages version {gpu_version}, CPUExecutionProvider, percept's session options, "
          f"{args.rounds} alternating rounds x {args.reps} timed calls; median ms per 1-image call).", "",
          f"onnxruntime-gpu lists {', '.join(info['onnxruntime-gpu']['providers'])} here (no GPU): "
          "`--device auto` asks the CUDA driver before it picks a GPU provider.", "",
          "| model @ size | onnxruntime (ms) | onnxruntime-gpu (ms) | gpu / plain |", "|---|---|---|---|"]
    for k in times["onnxruntime"]:
        a, b = statistics.median(times["onnxruntime"][k]), statistics.median(times["onnxruntime-gpu"][k])
        md.append(f"| {k.replace('@', ' @ ')} px | {a * 1e3:.1f} | {b * 1e3:.1f} | {b / a:.2f} |")
    text = "\n".join(md)
    print(text)
    if not args.no_docs:
        update_block("bench_ort_packages", "onnxruntime-gpu vs onnxruntime on the CPU", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
