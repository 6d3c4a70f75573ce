"""``percept export``, ``serve-web`` and ``check-web``: taking a trained network elsewhere (ONNX, the browser).
Their options are built from :mod:`percept.inference.deploy_options`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from percept.argtypes import add_options, add_quiet, config_from_args
from percept.errors import PerceptError
from percept.inference.deploy_options import CheckWebOptions, ExportOptions, ServeWebOptions


def cmd_export(args: argparse.Namespace) -> int:
    from percept.inference.export import export_onnx
    from percept.registry import find_model

    o = config_from_args(ExportOptions, args)
    if o.web:
        return _export_web(o, quiet=args.quiet)
    if o.ort_web:
        raise PerceptError("--ort-web is for --web exports")
    if len(o.model) > 1:
        raise PerceptError(f"one model per .onnx export ({len(o.model)} given); --web DIR takes several")
    model = o.model[0]
    out = Path(o.output) if o.output else find_model(model).require_pt(
        "export starts from the PyTorch weights").with_suffix(".onnx")
    report = export_onnx(model, out, opset=o.opset, fp16=o.fp16, int8=o.int8, calibration=o.calibration,
                         fp16_weights=o.fp16_weights)
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


def _export_web(o: ExportOptions, quiet: bool) -> int:
    from percept.inference.web import export_web

    if o.output:
        raise PerceptError("give either -o OUT.onnx or --web DIR")
    if o.fp16 or o.int8 or o.fp16_weights or o.calibration or o.opset != ExportOptions.opset:
        raise PerceptError(f"--web writes its own models (fp16 weights, fp32 arithmetic, opset {ExportOptions.opset}); "
                           "drop --fp16, --fp16-weights, --int8, --calibration and --opset")
    r = export_web(o.model, o.web, ort_web=o.ort_web, progress=not quiet)
    names = ", ".join(m["name"] for m in r.models)
    print(f"wrote {r.folder}/ ({names}; onnxruntime-web {r.ort_web}; {r.bytes / 1e6:.1f} MB); onnxruntime vs "
          f"PyTorch max abs diff {r.max_abs_diff:.2e}")
    print(f"serve it: percept serve-web {r.folder}   (then open the printed address; ?selftest checks it)")
    return 0


def cmd_serve_web(args: argparse.Namespace) -> int:
    from percept.inference.web import serve

    o = config_from_args(ServeWebOptions, args)
    server = serve(o.folder, o.host, o.port)
    host, port = server.server_address[:2]
    print(f"serving {o.folder} at http://{host}:{port}/ (cross-origin isolated: WebAssembly threads on); "
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
    from percept.inference.web import check_web, screenshot_folder, serve

    o = config_from_args(CheckWebOptions, args)
    serve(o.folder, port=0).server_close()  # not a site: one line before the browser starts
    if o.screenshots is not None:
        screenshot_folder(o.screenshots)  # a file, or a read-only place: the same
    if find_chromium() is None:
        raise PerceptError("check-web needs Chromium (apt-get install chromium, or set PERCEPT_CHROMIUM)")
    r = check_web(o.folder, camera=not o.no_camera, frames=o.frames, backend=o.backend, timeout=o.timeout,
                  screenshots=o.screenshots, model=o.model)
    print(f"selftest: {r.selftest}")
    if r.camera:
        print(f"camera (Chromium's fake camera, 640x480): {r.camera}")
    for p in r.screenshots:
        print(f"wrote {p}")
    if not r.ok:
        raise PerceptError(f"{o.folder}: the page's check failed in Chromium")
    return 0


def _register_export(sub) -> None:
    e = sub.add_parser("export", help="export a trained network to ONNX (checked against PyTorch), or "
                                      "style networks to a web page (--web)")
    add_options(e, ExportOptions, "model", "output", "web", "ort_web")
    add_quiet(e)
    add_options(e, ExportOptions, "opset", "fp16", "fp16_weights", "int8", "calibration")
    e.set_defaults(func=cmd_export)


def _register_serve_web(sub) -> None:
    sw = sub.add_parser("serve-web", help="serve a --web export on localhost (with the headers WebAssembly "
                                          "threads need)")
    add_options(sw, ServeWebOptions)
    sw.set_defaults(func=cmd_serve_web)


def _register_check_web(sub) -> None:
    cw = sub.add_parser("check-web", help="open a --web export in headless Chromium: its self-test, then the "
                                          "webcam path with a fake camera (prints the FPS)")
    add_options(cw, CheckWebOptions)
    cw.set_defaults(func=cmd_check_web)


def register(sub) -> None:
    """Add this job's subcommands to the ``percept`` parser."""
    _register_export(sub)
    _register_serve_web(sub)
    _register_check_web(sub)
