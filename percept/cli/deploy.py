"""``percept export``, ``serve-web`` and ``check-web``: taking a trained network elsewhere (ONNX, the browser).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from percept.argtypes import nonneg_int as _nonneg_int
from percept.argtypes import positive_float as _positive_float
from percept.argtypes import positive_int as _positive_int
from percept.errors import PerceptError


def cmd_export(args: argparse.Namespace) -> int:
    from percept.inference.export import export_onnx
    from percept.registry import find_model

    if args.web:
        return _export_web(args)
    if args.ort_web:
        raise PerceptError("--ort-web is for --web exports")
    if len(args.model) > 1:
        raise PerceptError(f"one model per .onnx export ({len(args.model)} given); --web DIR takes several")
    args.model = args.model[0]
    out = Path(args.output) if args.output else find_model(args.model).require_pt(
        "export starts from the PyTorch weights").with_suffix(".onnx")
    report = export_onnx(args.model, out, opset=args.opset, fp16=args.fp16, int8=args.int8,
                         calibration=args.calibration, fp16_weights=args.fp16_weights)
    head = f"wrote {report.path} ({report.precision}, opset {report.opset}, {report.bytes / 1e6:.1f} MB); "
    if report.psnr is not None:
        print(head + f"onnxruntime vs PyTorch: PSNR {report.psnr:.1f} dB (worst of {report.photos} photos the "
              f"calibration did not see), max abs diff {report.max_abs_diff:.2f}")
        return 0
    sizes = ", ".join(f"{n}x{report.channels}x{h}x{w}" for n, h, w in report.sizes)
    rounding = (f"; rounding the weights to float16 moved PyTorch's output by at most {report.rounding_diff:.2e}"
                if report.weights == "fp16" and report.precision == "fp32" else "")
    print(head + f"onnxruntime vs PyTorch max abs diff {report.max_abs_diff:.2e} on {sizes}{rounding}")
    if report.bf16 is not None:
        c = report.bf16
        verdict = "passes: --backend openvino --precision auto runs it in bf16" if c.passed else \
            f"below {c.min_psnr:g} dB: --precision auto keeps fp32"
        print(f"OpenVINO bf16 vs fp32: PSNR {c.psnr:.1f} dB (worst of {c.photos} photos), max abs diff "
              f"{c.max_abs:.3f}; {verdict}")
    return 0


def _export_web(args: argparse.Namespace) -> int:
    from percept.inference.web import export_web

    if args.output:
        raise PerceptError("give either -o OUT.onnx or --web DIR")
    if args.fp16 or args.int8 or args.fp16_weights or args.calibration or args.opset != 18:
        raise PerceptError("--web writes its own models (fp16 weights, fp32 arithmetic, opset 18); "
                           "drop --fp16, --fp16-weights, --int8, --calibration and --opset")
    r = export_web(args.model, args.web, ort_web=args.ort_web, progress=not args.quiet)
    names = ", ".join(m["name"] for m in r.models)
    print(f"wrote {r.folder}/ ({names}; onnxruntime-web {r.ort_web}; {r.bytes / 1e6:.1f} MB); onnxruntime vs "
          f"PyTorch max abs diff {r.max_abs_diff:.2e}")
    print(f"serve it: percept serve-web {r.folder}   (then open the printed address; ?selftest checks it)")
    return 0


def cmd_serve_web(args: argparse.Namespace) -> int:
    from percept.inference.web import serve

    server = serve(args.folder, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"serving {args.folder} at http://{host}:{port}/ (cross-origin isolated: WebAssembly threads on); "
          f"self-test: http://{host}:{port}/index.html?selftest ; Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_check_web(args: argparse.Namespace) -> int:
    from percept.inference.browser import find_chromium
    from percept.inference.web import check_web, serve

    serve(args.folder, port=0).server_close()  # not a site: one line before the browser starts
    if find_chromium() is None:
        raise PerceptError("check-web needs Chromium (apt-get install chromium, or set PERCEPT_CHROMIUM)")
    r = check_web(args.folder, camera=not args.no_camera, frames=args.frames, backend=args.backend,
                  timeout=args.timeout, screenshots=args.screenshots, model=args.model)
    print(f"selftest: {r.selftest}")
    if r.camera:
        print(f"camera (Chromium's fake camera, 640x480): {r.camera}")
    for p in r.screenshots:
        print(f"wrote {p}")
    if not r.ok:
        raise PerceptError(f"{args.folder}: the page's check failed in Chromium")
    return 0


def _register_export(sub) -> None:
    e = sub.add_parser("export", help="export a trained network to ONNX (checked against PyTorch), or "
                                      "style networks to a web page (--web)")
    e.add_argument("model", nargs="+", help="a model name (see `percept models`) or a .pt path (several with --web)")
    e.add_argument("-o", "--output", help="the .onnx file (default: beside the .pt)")
    e.add_argument("--web", metavar="DIR", help="write a static web site that stylises the webcam or a dropped image "
                                               "in the browser (onnxruntime-web, vendored; works offline)")
    e.add_argument("--ort-web", metavar="DIR", help="--web: onnxruntime-web's npm package folder (default: "
                                                   "./node_modules, the cache, or fetched once with npm)")
    e.add_argument("--quiet", action="store_true")
    e.add_argument("--opset", type=_positive_int, default=18, help="ONNX opset (default 18)")
    e.add_argument("--fp16", action="store_true", help="float16 weights and arithmetic, float32 input/output")
    e.add_argument("--fp16-weights", action="store_true",
                   help="store the weights in float16 (half the file), compute in float32 (as the shipped models)")
    e.add_argument("--int8", action="store_true",
                   help="int8 convolutions calibrated on photos (style networks; ~2x faster on CPUs with "
                        "AVX-512 VNNI; checked by PSNR against PyTorch)")
    e.add_argument("--calibration", metavar="DIR",
                   help="--int8: folder of photos to calibrate on (default: scikit-image's sample photos)")
    e.set_defaults(func=cmd_export)


def _register_serve_web(sub) -> None:
    sw = sub.add_parser("serve-web", help="serve a --web export on localhost (with the headers WebAssembly "
                                          "threads need)")
    sw.add_argument("folder", help="the folder percept export --web wrote")
    sw.add_argument("--port", type=_nonneg_int, default=8000, help="port (default 8000; 0 picks a free one)")
    sw.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sw.set_defaults(func=cmd_serve_web)


def _register_check_web(sub) -> None:
    cw = sub.add_parser("check-web", help="open a --web export in headless Chromium: its self-test, then the "
                                          "webcam path with a fake camera (prints the FPS)")
    cw.add_argument("folder", help="the folder percept export --web wrote")
    cw.add_argument("--no-camera", action="store_true", help="only the self-test")
    cw.add_argument("--frames", type=_positive_int, default=30, help="camera frames to stylise (default 30)")
    cw.add_argument("--model", help="the model the camera runs (default: the first)")
    cw.add_argument("--backend", choices=["wasm", "webgpu", "auto"], default="wasm",
                    help="the page's runtime (default wasm)")
    cw.add_argument("--timeout", type=_positive_float, default=300.0, help="seconds to wait for each page (default 300)")
    cw.add_argument("--screenshots", metavar="DIR", help="save a PNG of each page here")
    cw.set_defaults(func=cmd_check_web)


def register(sub) -> None:
    """Add this job's subcommands to the ``percept`` parser."""
    _register_export(sub)
    _register_serve_web(sub)
    _register_check_web(sub)
