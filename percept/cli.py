"""The ``percept`` command line.

Every mistake a user can make ends in one line on stderr (``percept: error: ...``) and exit code 2;
Ctrl-C ends with exit code 130. Output files are written atomically, so neither leaves half a file.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from percept.argtypes import FLOW_PRESETS, LIVE_FLOW, VIDEO_FLOW, config_from_args, config_option  # noqa: E402
from percept.argtypes import nonneg_float as _nonneg_float  # noqa: E402
from percept.argtypes import nonneg_int as _nonneg_int  # noqa: E402
from percept.argtypes import positive_float as _positive_float  # noqa: E402
from percept.argtypes import positive_int as _positive_int  # noqa: E402
from percept.argtypes import side_int as _side_int  # noqa: E402
from percept.argtypes import temporal_alpha as _temporal_alpha  # noqa: E402
from percept.argtypes import unit_float as _unit_float  # noqa: E402
from percept.errors import PerceptError


def _channels(text: str) -> list[int]:
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three widths like 32,64,128, got '{text}'") from None
    if len(parts) != 3 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"expected three positive widths like 32,64,128, got '{text}'")
    return parts


# --------------------------------------------------------------------------------------------- commands

def cmd_train_style(args: argparse.Namespace) -> int:
    from percept.training.configs import StyleTrainConfig
    from percept.training.style import train_style

    cfg = config_from_args(StyleTrainConfig, args, out=_out_folder(args))
    if cfg.teacher:
        from percept.training.fast import TEACHER_INIT, train_style_from_teacher

        if args.resume:
            raise PerceptError("--resume continues a run from scratch; a --teacher run is short: start it again")
        if cfg.init:
            raise PerceptError(TEACHER_INIT)
        from percept.inference.anystyle import Teacher

        teacher = Teacher(cfg.teacher, cfg.style, cfg.device)
        path = train_style_from_teacher(cfg, teacher, teacher.card, progress=not args.quiet)
    else:
        path = train_style(cfg, resume=args.resume, progress=not args.quiet)
    print(f"model written to {path} (card: {path.with_suffix('.json')})")
    return 0


def cmd_train_decoder(args: argparse.Namespace) -> int:
    from percept.training.configs import DecoderTrainConfig
    from percept.training.decoder import train_decoder

    cfg = config_from_args(DecoderTrainConfig, args, out=_out_folder(args))
    path = train_decoder(cfg, resume=args.resume, progress=not args.quiet)
    print(f"decoder written to {path} (card: {path.with_suffix('.json')})")
    return 0


def cmd_train_linear(args: argparse.Namespace) -> int:
    from percept.training.configs import LinearTrainConfig
    from percept.training.linear import train_linear

    cfg = config_from_args(LinearTrainConfig, args, out=_out_folder(args))
    path = train_linear(cfg, resume=args.resume, progress=not args.quiet)
    print(f"linear style model written to {path} (card: {path.with_suffix('.json')}); use it with "
          f"`percept stylize PHOTO --style PAINTING --method linear`")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from percept.training.configs import DistillConfig
    from percept.training.distill import distill_style

    path = distill_style(config_from_args(DistillConfig, args, out=_out_folder(args)), progress=not args.quiet)
    print(f"model written to {path} (card: {path.with_suffix('.json')})")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from percept.registry import list_models, model_dirs

    broken: list[PerceptError] = []
    models = list_models(broken=broken)
    dirs = model_dirs()
    for source, folder in dirs:
        count = sum(m.source == source for m in models)
        state = "" if folder.is_dir() else " (not created yet)"
        print(f"{source} models: {folder}{state}: {count}")
    if not models:
        if broken:
            raise PerceptError("; ".join(map(str, broken)))
        print("no models found (set PERCEPT_CHECKPOINTS, or reinstall percept from a wheel that carries its models)")
        return 1
    print(f"\n{'name':<22} {'kind':<18} {'architecture':<22} {'iterations':>10}  {'files':<10} {'where':<8} trained on")
    seen: set[str] = set()
    for m in models:
        card = m.card
        arch = card.get("architecture", {})
        if card.get("kind") == "feature-decoder":
            arch_s = (f"{card.get('layer', '?')} linear" if arch.get("width") == 0 else
                      f"{card.get('layer', '?')} w{arch.get('width', '?')} x{arch.get('n_blocks', '?')}")
        elif card.get("kind") == "linear-style":
            arch_s = f"linear {arch.get('layer', '?')} rank {arch.get('rank', '?')}"
        else:
            arch_s = (arch.get("arch", "johnson") + " " + "-".join(map(str, arch.get("channels", [])))
                      + f" x{arch.get('n_residual', '?')}")
        files = "+".join(s for s, p in (("pt", m.pt), ("onnx", m.onnx)) if p is not None)
        where = m.source + (" (hidden)" if m.name in seen else "")
        seen.add(m.name)
        print(f"{m.name:<22} {card.get('kind', '?'):<18} {arch_s:<22} {card.get('iterations', '?'):>10}  "
              f"{files:<10} {where:<8} {card.get('device', '?')}")
    if any(m.name in {n.name for n in models if n.source == "shipped"} and m.source == "user" for m in models):
        print("\n(hidden): a user model with a shipped model's name; give its path to use it")
    if broken:
        sys.stdout.flush()
        raise PerceptError("; ".join(map(str, broken)))
    return 0


def cmd_stylize(args: argparse.Namespace) -> int:
    from percept.images import check_output_path, load_image, save_image
    from percept.inference.engine import Engine

    if args.style and args.model:
        raise PerceptError("give --model (a trained network) or --style (any painting, no training), not both")
    if not args.style and not args.model:
        raise PerceptError("give --model NAME (see `percept models`) or --style PAINTING")
    if not args.style and (args.method or args.style_blend or args.levels or args.decoder
                           or args.color_match is not None):
        raise PerceptError("--method, --style-blend, --levels, --decoder and --color-match are for --style PAINTING "
                           "(arbitrary style transfer)")
    if (args.levels or args.decoder) and args.method == "linear":
        raise PerceptError(f"{'--levels' if args.levels else '--decoder'} is for --method wct or adain (the linear "
                           "model carries its own decoder, at relu3_1)")
    if args.style:  # a bad painting fails before any work
        from percept.images import check_painting

        for p in args.style:
            check_painting(load_image(p), p)
    inputs = [Path(p) for p in args.images]
    out = Path(args.output)
    if len(inputs) == 1 and out.suffix:
        targets = [(inputs[0], check_output_path(out))]
    else:
        if out.exists() and not out.is_dir():
            if len(inputs) == 1:
                raise PerceptError(f"{out}: not an image file name (give one with an extension such as .png) "
                                   "nor a folder")
            raise PerceptError(f"{out}: several inputs need -o to be a folder")
        targets = [(p, out / f"{p.stem}.png") for p in inputs]
    from percept.images import image_size, working_size
    from percept.inference.engine import check_frame_size

    for p, _ in targets:  # fail before doing any work: the memory a size needs from the header, then a decode
        w, h = working_size(image_size(p), args.size)
        check_frame_size(h, w, 1, str(args.model or "--style"))
        load_image(p)
    if args.style and not (args.method == "linear" and len(args.style) == 1 and not args.style_blend
                           and not args.color_match):  # the colour match runs in PyTorch, after the decoder
        return _stylize_any(args, targets)
    note = ""
    if args.style:  # one painting with the linear method: the engine (any backend), the painting baked in
        from percept.inference.anystyle import LINEAR_MODEL

        stylizer = Engine(LINEAR_MODEL, backend=args.backend, device=args.device, precision=args.precision,
                          style=args.style[0])
        note = f" (linear, {stylizer.describe()})"
    else:
        stylizer = Engine(args.model, backend=args.backend, device=args.device, precision=args.precision)
    from tqdm import tqdm

    for src, dst in tqdm(targets, desc="stylize", disable=len(targets) < 2 or args.quiet):
        img = stylizer(load_image(src), size=args.size, strength=args.strength,
                       preserve_color=args.preserve_color)
        save_image(img, dst)
        if len(targets) == 1:
            print(f"wrote {dst}{note}")
    if len(targets) > 1:
        print(f"wrote {len(targets)} images to {out}/")
    return 0


def _levels(text: str) -> list[str]:
    """``--levels relu4_1,relu3_1``: decoder layers (checked), in the order given."""
    from percept.models.decoder import check_decoder_layer

    layers = [t.strip() for t in text.split(",") if t.strip()]
    if not layers or len(set(layers)) != len(layers):
        raise PerceptError(f"--levels {text}: give distinct comma-separated layers, coarse to fine, e.g. "
                           "relu4_1,relu3_1,relu2_1,relu1_1")
    return [check_decoder_layer(t) for t in layers]


def _decoders(models: list[str]) -> dict[str, str]:
    """``--decoder MODEL`` (repeated): layer -> model, the layer read from each model's card."""
    from percept.registry import ModelKind, find_model

    out: dict[str, str] = {}
    for m in models:
        info = find_model(m)
        if info.card.get("kind") != ModelKind.DECODER.value:
            raise PerceptError(f"--decoder {m}: a '{info.card.get('kind')}' model, not a feature decoder")
        layer = str(info.card.get("layer"))
        if layer in out:
            raise PerceptError(f"--decoder: two decoders for {layer} ({out[layer]}, {m})")
        out[layer] = m
    return out


def _stylize_any(args: argparse.Namespace, targets: list) -> int:
    from tqdm import tqdm

    from percept.images import load_image, save_image
    from percept.inference.anystyle import DEFAULT_METHOD, AnyStyle

    weights = _blend_weights(args.style_blend, len(args.style)) if args.style_blend else None
    if args.backend not in ("auto", "torch"):
        raise PerceptError(f"--style runs on PyTorch (the VGG19 encoder and the decoders); drop --backend {args.backend}")
    decoders = _decoders(args.decoder or [])
    layers = _levels(args.levels) if args.levels else None
    method = args.method or DEFAULT_METHOD
    if decoders and method == "adain" and not layers:
        layers = list(decoders)  # adain runs at its decoder's layer
    any_style = AnyStyle(method, args.device, decoders=decoders, layers=layers, precision=args.precision,
                         color_match=args.color_match)
    seconds = 0.0
    for src, dst in tqdm(targets, desc=f"stylize ({any_style.method})", disable=len(targets) < 2 or args.quiet):
        r = any_style(load_image(src), args.style, weights, args.size, args.strength, args.preserve_color)
        save_image(r.image, dst)
        seconds += r.seconds
        if len(targets) == 1:
            match = f", colour match {any_style.color_match:g}" if any_style.color_match and not args.preserve_color else ""
            print(f"wrote {dst} ({any_style.method} over {', '.join(r.layers)}{match}, {r.seconds:.1f} s)")
    if len(targets) > 1:
        print(f"wrote {len(targets)} images ({seconds / len(targets):.1f} s each)")
    return 0


def _blend_weights(text: str, n: int) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise PerceptError(f"--style-blend {text}: give {n} comma-separated numbers, e.g. "
                           f"{','.join(['0.5'] * max(n, 2))}") from None


def cmd_compare(args: argparse.Namespace) -> int:
    from percept.compare import build_compare

    steps = _int_list(args.gatys_steps, "--gatys-steps") if args.gatys_steps else []
    page = build_compare(args.photo, args.style, args.output, models=args.model, size=args.size, gatys_steps=steps,
                         methods=[m for m in args.methods.split(",") if m], device=args.device,
                         progress=not args.quiet)
    print(f"wrote {page} (open it in a browser)")
    return 0


def _int_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v]
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values):
        raise PerceptError(f"{flag} {text}: give positive whole numbers separated by commas, e.g. 10,30,100")
    return values


def cmd_optimize_style(args: argparse.Namespace) -> int:
    from percept.images import check_output_path, load_image, save_image
    from percept.visualize.gatys import optimize_style

    out = check_output_path(args.output)
    blend = None
    if args.style_blend:
        try:
            blend = [float(w) for w in args.style_blend.split(",")]
        except ValueError:
            raise PerceptError(f"--style-blend: expected numbers like 0.7,0.3, got '{args.style_blend}'") from None
        if len(blend) != len(args.style) or not all(math.isfinite(w) and w >= 0 for w in blend) or sum(blend) <= 0:
            raise PerceptError(f"--style-blend needs {len(args.style)} non-negative weights (one per --style)")
    content = load_image(args.content)
    styles = [load_image(s) for s in args.style]
    snapshot_dir = None
    if args.snapshot_every:
        snapshot_dir = out.parent / f"{out.stem}_snapshots"
    result = optimize_style(content, styles, blend=blend, iterations=args.iterations,
                            optimizer=args.optimizer, init=args.init, size=args.size,
                            content_weight=args.content_weight, style_weight=args.style_weight,
                            tv_weight=args.tv_weight, device=args.device, seed=args.seed,
                            snapshot_every=args.snapshot_every, snapshot_dir=snapshot_dir,
                            progress=not args.quiet)
    if args.preserve_color:
        from percept.images import preserve_color
        result.image = preserve_color(result.image, content)
    save_image(result.image, out)
    print(f"wrote {out} (content {result.losses['content']:.4f}, style {result.losses['style']:.4f}, "
          f"{result.seconds:.1f} s)")
    return 0


def cmd_invert(args: argparse.Namespace) -> int:
    from percept.images import check_output_path, load_image, resize_long_side, save_image, to_tensor
    from percept.inference.invert import Inverter, crop_to_stride
    from percept.models.decoder import check_decoder_layer
    from percept.models.vgg import LossNetwork, layer_stride

    out = check_output_path(args.output)
    if args.method == "optimize":
        from percept.models.vgg import check_layers

        check_layers([args.layer])
        if args.model:
            raise PerceptError("--model is a decoder; --method optimize does not use one")
    else:
        check_decoder_layer(args.layer)
    photo = resize_long_side(load_image(args.image), args.size)
    x = crop_to_stride(to_tensor(photo), layer_stride(args.layer))
    from percept.visualize.inversion import feature_space_error, image_space_error, invert_optimize

    if args.method == "decoder":
        inv = Inverter(args.layer, args.model, device=args.device)
        res = inv(photo)
        image, y, seconds, net = res.image, res.tensor, res.seconds, inv.net
    else:
        net = LossNetwork(args.layer)
        opt = invert_optimize(x, args.layer, iterations=args.iterations, net=net, device=args.device,
                              seed=args.seed, progress=not args.quiet)
        image, y, seconds = opt.image, opt.tensor, opt.seconds
    save_image(image, out)
    img_err = image_space_error(y, x)
    feat_err = feature_space_error(net, y, x, args.layer)
    print(f"wrote {out} ({args.layer}, {args.method}, {x.shape[3]}x{x.shape[2]}): image-space error {img_err:.4f}, "
          f"feature-space error {feat_err:.4f}, {seconds:.3f} s")
    return 0


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


def cmd_video(args: argparse.Namespace) -> int:
    from percept.inference.engine import Engine
    from percept.inference.video import FrameStyler, check_video_output, open_capture, stylize_video

    check_video_output(args.output)
    styles = _live_styles(args)
    if len(styles) > 1:
        raise PerceptError("video takes one --style painting")
    if not styles and not args.model:
        raise PerceptError("give --model NAME (see `percept models`) or --style PAINTING")
    open_capture(args.input).release()  # a bad input fails before the model loads
    from percept.inference.anystyle import LINEAR_MODEL

    model = args.model or LINEAR_MODEL
    engine = Engine(model, backend=args.backend, device=args.device, precision=args.precision,
                    style=styles[0] if styles else None)
    temporal = None
    if args.temporal:
        from percept.inference.temporal import TemporalFilter

        temporal = TemporalFilter(alpha=args.temporal_alpha, flow=args.flow)
    styler = FrameStyler(engine, args.size, args.strength, args.preserve_color, temporal=temporal)
    r = stylize_video(args.input, args.output, styler, batch=args.batch, progress=not args.quiet)
    flow = ""
    if temporal is not None:
        st = temporal.stats
        flow = (f"; flow-guided (alpha {temporal.alpha:g}, {args.flow} flow): {st.confident * 100:.0f}% of the pixels kept their "
                f"history, {st.resets} scene cut{'s' * (st.resets != 1)}")
    print(f"wrote {r['path']} ({r['frames']} frames, {r['size'][0]}x{r['size'][1]} at {r['fps']:.2f} fps; "
          f"{r['frames'] / max(r['seconds'], 1e-9):.1f} frames/s with {engine.describe()}{flow})")
    return 0


def _live_styles(args: argparse.Namespace) -> list[str]:
    """``--style`` paintings for the video and webcam commands (the linear style model), each checked
    before any work; a --model that is a trained per-style network beside them is refused."""
    styles = list(args.style or [])
    if not styles:
        return []
    from percept.images import check_painting, load_image
    from percept.registry import ModelKind, find_model

    for p in styles:
        check_painting(load_image(p), p)
    given = args.model if isinstance(args.model, list) else [args.model] if args.model else []
    for m in given:
        if find_model(m).kind != ModelKind.LINEAR.value:
            raise PerceptError(f"--style PAINTING runs the linear style model; '{m}' is a per-style network (give "
                               "--model or --style, not both)")
    return styles


def cmd_eval_video(args: argparse.Namespace) -> int:
    from percept.evaluation import warping_error
    from percept.inference.video import read_clip

    source = read_clip(args.source, max_frames=args.frames)
    stylised = read_clip(args.stylised, max_frames=args.frames)
    if len(source) != len(stylised):
        raise PerceptError(f"{args.source} has {len(source)} frames and {args.stylised} {len(stylised)}; "
                           "compare a clip with its own stylisation")
    floor = warping_error(source, source)
    e = warping_error(source, stylised)
    print(f"{args.stylised}: E_warp {e.value:.5f} over {len(source) - 1} frame pairs "
          f"({e.valid * 100:.0f}% of the pixels compared)")
    print(f"{args.source}: E_warp {floor.value:.5f} (the source's own: the floor); ratio {e.value / max(floor.value, 1e-12):.1f}x")
    return 0


def cmd_webcam(args: argparse.Namespace) -> int:
    from percept.inference.webcam import run_webcam
    from percept.registry import list_models

    styles = _live_styles(args)
    models = list(args.model) if args.model else []
    if styles:
        from percept.inference.anystyle import LINEAR_MODEL

        models, others = [models[0] if models else LINEAR_MODEL] * len(styles), []
    else:
        others = [m.name for m in list_models("style-transformer") if m.name not in models]
    if not models:
        models = others[:1]
        others = others[1:]
    stats = run_webcam(models + others, styles=styles, camera=args.camera, source=args.source, size=args.size,
                       strength=args.strength, preserve_color=args.preserve_color, backend=args.backend,
                       device=args.device, precision=args.precision, headless=args.headless, output=args.output, frames=args.frames,
                       snapshot_dir=args.snapshot_dir, side_by_side=args.side_by_side, temporal=args.temporal,
                       temporal_alpha=args.temporal_alpha, temporal_flow=args.flow)
    where = f"; wrote {stats.output}" if stats.output else ""
    print(f"{stats.shown} frames shown at {stats.fps:.1f} FPS, {stats.captured} captured, "
          f"{stats.dropped} dropped{where}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from percept.demo import run_demo

    sheet = run_demo(args.output, size=args.size, device=args.device, progress=not args.quiet)
    print(f"wrote the stylised sample photos and {sheet}")
    return 0


# --------------------------------------------------------------------------------------------- parser

def _backend_args(p: argparse.ArgumentParser, backend_help: str = "onnx (onnxruntime), torch or openvino") -> None:
    """--backend, --device and --precision: how a style model is run (the same for stylize, video, webcam)."""
    p.add_argument("--backend", choices=["auto", "onnx", "torch", "openvino"], default="auto", help=backend_help)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or tensorrt (onnx backend on a GPU)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="--backend openvino: fp32, bf16 (CPUs with AVX512-BF16 or AMX) or auto (bf16 where its "
                        "quality check against fp32 passes, else fp32); stylize --style: the PyTorch encoder and "
                        "decoders, auto = bf16 on CPUs with AVX512-BF16 or AMX")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage + message)
        self.exit(2, f"{self.prog}: error: {message}\n")


OUT_HELP = ("output folder (default: the user model folder, $PERCEPT_USER_MODELS or ~/.cache/percept/models, "
            "where `--model NAME` finds it): NAME.pt, NAME.json")


def _out_folder(args: argparse.Namespace) -> str:
    """``--out``, else the user model folder (so the trained model is found by name)."""
    from percept.registry import user_dir

    return args.out or str(user_dir())


def _training_run_options(p: argparse.ArgumentParser, cfg: type, time_limit_help: str) -> None:
    """Options every training command shares (held-out previews, checkpoints, time limit, resume, ...),
    their defaults from the run's config dataclass."""
    config_option(p, cfg, "holdout_every", type=int, help="hold out every Nth photo for previews (0: none)")
    config_option(p, cfg, "checkpoint_every", type=_positive_int)
    config_option(p, cfg, "time_limit", type=_positive_float, metavar="MINUTES", help=time_limit_help)
    config_option(p, cfg, "workers", type=_nonneg_int, help="data-loading processes (default 0 on a CPU, 4 on a GPU)")
    config_option(p, cfg, "logdir", help="TensorBoard folder (default OUT/tb/NAME)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/NAME.train.pt")
    config_option(p, cfg, "device", help="auto, cpu or cuda")
    p.add_argument("--precision", dest="amp", type=_train_precision, default=None, metavar="{auto,fp32,bf16}",
                   help="the step's arithmetic: bf16 autocast or fp32 (default auto: bf16 on CPUs with "
                        "AVX512-BF16 or AMX and on GPUs from batch 8, where it is faster; fp32 elsewhere)")
    config_option(p, cfg, "seed", type=int)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _train_precision(text: str) -> bool | None:
    choices = {"auto": None, "fp32": False, "bf16": True}
    if text not in choices:
        raise argparse.ArgumentTypeError(f"invalid choice: '{text}' (choose from auto, fp32, bf16)")
    return choices[text]


def _architecture_options(p: argparse.ArgumentParser, cfg: type) -> None:
    from percept.models.specs import ARCH_DEFAULTS

    per_arch = "; ".join(f"{a} {','.join(map(str, d['channels']))} x{d['n_residual']}" for a, d in ARCH_DEFAULTS.items())
    config_option(p, cfg, "arch", choices=list(ARCH_DEFAULTS),
                  help="johnson: the paper's network; rt: the real-time CPU network")
    config_option(p, cfg, "channels", type=_channels, help=f"encoder widths (default: the architecture's: {per_arch})")
    config_option(p, cfg, "n_residual", "--residual-blocks", type=_positive_int, help="residual blocks (default: the architecture's)")


def build_parser() -> argparse.ArgumentParser:
    from percept.training.configs import (  # no torch: a fast --help
        DecoderTrainConfig,
        DistillConfig,
        LinearTrainConfig,
        StyleTrainConfig,
    )

    p = _Parser(prog="percept", description="Fast style transfer and feature inversion with perceptual losses.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    cfg: type = StyleTrainConfig
    t = sub.add_parser("train-style", help="train a feed-forward style network (Johnson et al. 2016)")
    t.add_argument("--style", required=True, help="the style image (a painting)")
    t.add_argument("--data", required=True, help="folder of training photos")
    t.add_argument("--out", help=OUT_HELP + ", NAME.train.pt, tb/")
    config_option(t, cfg, "name", help="model name (default: the style file's stem)")
    config_option(t, cfg, "image_size", type=_side_int, help="training crop size (paper 256)")
    config_option(t, cfg, "batch_size", type=_positive_int, help="(paper 4)")
    config_option(t, cfg, "iterations", type=_positive_int, help="(paper 40000)")
    config_option(t, cfg, "lr", type=_nonneg_float, help="Adam learning rate")
    config_option(t, cfg, "content_weight", type=_nonneg_float)
    config_option(t, cfg, "style_weight", type=_nonneg_float,
                  help="(default: 10, the shipped models'; with --teacher, it starts at the weight that balances the "
                       "style and content gradients at the distilled network and is raised while the content loss "
                       "stays under 0.7; recorded in the card)")
    config_option(t, cfg, "content_target", type=_positive_float, metavar="C",
                  help="steer the style weight up or down during the run so that the content loss settles at C "
                       "(relative relu4_2 error; the shipped rt models sit at 0.6-1.0); default: a fixed weight")
    config_option(t, cfg, "tv_weight", type=_nonneg_float)
    config_option(t, cfg, "style_size", type=_positive_int, help="style image long side")
    _architecture_options(t, cfg)
    config_option(t, cfg, "output", choices=["sigmoid", "residual"],
                  help="sigmoid: sigmoid(f(photo)); residual: sigmoid(logit(photo) + f(photo)), starts as the identity")
    config_option(t, cfg, "teacher", choices=["linear", "wct", "adain"],
                  help="distil the network from this arbitrary-style method's pictures of the painting first (no "
                       "loss network: fast), then fine-tune it with the perceptual losses: a new painting in "
                       "minutes on a CPU (with --time-limit, the two phases share it)")
    config_option(t, cfg, "init", metavar="MODEL",
                  help="start from a trained model of the same architecture (name or .pt), e.g. a distilled rt model")
    config_option(t, cfg, "temporal_weight", type=_nonneg_float,
                  help="compound temporal regulariser (Wang et al. 2020): stable strokes under small motion and "
                       "noise, for video; needs no video data (0: off; e.g. 2 to fine-tune a model with --init)")
    _training_run_options(t, cfg, "stop after this many minutes and save the model (--resume continues it)")
    t.set_defaults(func=cmd_train_style)

    cfg = DecoderTrainConfig
    td = sub.add_parser("train-decoder", help="train a feature-inversion decoder for a VGG19 layer "
                                              "(Dosovitskiy & Brox 2016)")
    td.add_argument("--layer", required=True, help="the VGG19 layer to invert, e.g. relu3_1 (relu*/pool* layers)")
    td.add_argument("--data", required=True, help="folder of training photos")
    td.add_argument("--out", help=OUT_HELP + ", NAME.train.pt, tb/")
    config_option(td, cfg, "name", help="model name (default decoder_LAYER)")
    config_option(td, cfg, "loss", choices=["pixel", "pixel+feature", "adain"],
                  help="pixel: MSE (CVPR 2016); pixel+feature: plus the relative feature error at the layer "
                       "(NeurIPS 2016), sharper at deep layers; adain: AdaIN's decoder (Huang & Belongie 2017: "
                       "content + style loss on AdaIN'd features; needs --styles, best with --init)")
    config_option(td, cfg, "feature_weight", type=_nonneg_float, help="weight of the feature term")
    td.add_argument("--styles", action="append", metavar="FOLDER",
                    help="--loss adain: a folder of style images (repeat for several; each folder equally likely)")
    config_option(td, cfg, "style_weight", type=_nonneg_float, help="--loss adain: weight of the style term")
    config_option(td, cfg, "style_layers", nargs="+", metavar="LAYER",
                  help="--loss adain: the layers of the style term (default relu1_1 up to --layer)")
    config_option(td, cfg, "gram_weight", type=_nonneg_float,
                  help="--loss adain: weight of a Gram-matrix style term on the same layers (default 0: none)")
    config_option(td, cfg, "permute_colors", type=float,
                  help="--loss adain: probability of permuting a style crop's colour channels")
    config_option(td, cfg, "init", help="start from this decoder's weights (name or .pt; its architecture), e.g. "
                                        "decoder_relu4_1 for --loss adain")
    config_option(td, cfg, "image_size", type=_side_int, help="training crop size, a multiple of the layer's stride")
    config_option(td, cfg, "batch_size", type=_positive_int)
    config_option(td, cfg, "iterations", type=_positive_int)
    config_option(td, cfg, "lr", type=_nonneg_float, help="Adam, cosine decay to --lr-final")
    config_option(td, cfg, "lr_final", type=_nonneg_float)
    config_option(td, cfg, "width", type=_nonneg_int,
                  help="channels at the feature resolution (default min(C, 256)); 0: --linear")
    td.add_argument("--linear", dest="width", action="store_const", const=0,
                    help="a linear decoder (one 3x3 convolution, relu1_1/relu1_2 only), solved in closed form by "
                         "least squares over --iterations crops instead of trained (seconds; --blocks 0)")
    config_option(td, cfg, "n_blocks", "--blocks", type=_nonneg_int, help="residual blocks before upsampling (default 2, or the --init decoder's)")
    _training_run_options(td, cfg, "stop after this many minutes and save the decoder (the LR schedule fits in it)")
    td.set_defaults(func=cmd_train_decoder)

    cfg = LinearTrainConfig
    tl = sub.add_parser("train-linear", help="train the linear style transform for any painting (Li et al. 2019; "
                                             "encoder and decoder frozen)")
    tl.add_argument("--data", required=True, help="folder of training photos")
    tl.add_argument("--styles", required=True, action="append", metavar="FOLDER",
                    help="folder of style images (paintings; photos work too); repeat for several, each folder "
                         "drawn equally often")
    tl.add_argument("--out", help=OUT_HELP + ", NAME.train.pt, tb/")
    config_option(tl, cfg, "name", help="model name")
    config_option(tl, cfg, "decoder", metavar="MODEL", help="the frozen decoder (name or .pt); its layer is the transform's")
    config_option(tl, cfg, "rank", type=_positive_int, help="channels of the compressed features")
    config_option(tl, cfg, "image_size", type=_side_int, help="training crop size (photo and painting)")
    config_option(tl, cfg, "batch_size", type=_positive_int)
    config_option(tl, cfg, "iterations", type=_positive_int)
    config_option(tl, cfg, "lr", type=_nonneg_float, help="Adam learning rate")
    config_option(tl, cfg, "content_weight", type=_nonneg_float)
    config_option(tl, cfg, "style_weight", type=_nonneg_float)
    config_option(tl, cfg, "permute_colors", type=_unit_float, help="chance that a painting's colour channels are "
                                                                     "shuffled (new palettes)")
    _training_run_options(tl, cfg, "stop after this many minutes and save the model (--resume continues it)")
    tl.set_defaults(func=cmd_train_linear)

    iv = sub.add_parser("invert", help="reconstruct a photo from one VGG19 layer's features "
                                       "(decoder: Dosovitskiy & Brox; optimize: Mahendran & Vedaldi)")
    iv.add_argument("image", help="the photo")
    iv.add_argument("--layer", required=True, help="VGG19 layer, e.g. relu3_1")
    iv.add_argument("--method", choices=["decoder", "optimize"], default="decoder",
                    help="decoder: one pass of a trained decoder (default); optimize: Mahendran-Vedaldi optimisation")
    iv.add_argument("-o", "--output", required=True, help="the reconstruction (.png, .jpg, ...)")
    iv.add_argument("--model", help="decoder .pt (default: the shipped decoder_LAYER)")
    iv.add_argument("--size", type=_side_int, default=256, help="photo's long side in pixels (default 256)")
    iv.add_argument("--iterations", type=_positive_int, help="optimize: steps of the first stage (default 300)")
    iv.add_argument("--device", default="auto", help="auto, cpu or cuda")
    iv.add_argument("--seed", type=int, default=0, help="optimize: seeds the initial noise and the jitter")
    iv.add_argument("--quiet", action="store_true", help="no progress bar")
    iv.set_defaults(func=cmd_invert)

    vz = sub.add_parser("viz", help="look inside networks: filters, activations, attribution, DeepDream, ...")
    vsub = vz.add_subparsers(dest="technique", metavar="TECHNIQUE", required=True)
    from percept.visualize.commands import add_viz_commands

    add_viz_commands(vsub)

    cfg = DistillConfig
    ds = sub.add_parser("distill", help="train a fast network to reproduce a trained one (no loss network)")
    ds.add_argument("--teacher", required=True, help="the trained model to imitate (name or .pt)")
    ds.add_argument("--data", required=True, help="folder of training photos")
    ds.add_argument("--out", help=OUT_HELP + ", tb/")
    config_option(ds, cfg, "name", help="default: TEACHER_ARCH")
    _architecture_options(ds, cfg)
    config_option(ds, cfg, "image_size", type=_side_int)
    config_option(ds, cfg, "pairs", type=_positive_int, help="teacher-stylised crops")
    config_option(ds, cfg, "batch_size", type=_positive_int)
    config_option(ds, cfg, "iterations", type=_positive_int)
    config_option(ds, cfg, "lr", type=_nonneg_float)
    config_option(ds, cfg, "temporal_weight", type=_nonneg_float,
                  help="compound temporal regulariser (see train-style --temporal-weight; 0: off)")
    config_option(ds, cfg, "time_limit", type=_positive_float, metavar="MINUTES",
                  help="stop after this many minutes, the teacher's pictures included (the LR schedule fits in it)")
    config_option(ds, cfg, "logdir")
    config_option(ds, cfg, "device")
    config_option(ds, cfg, "seed", type=int)
    ds.add_argument("--quiet", action="store_true")
    ds.set_defaults(func=cmd_distill)

    m = sub.add_parser("models", help="list the shipped models")
    m.set_defaults(func=cmd_models)

    s = sub.add_parser("stylize", help="stylize photos with a trained network")
    s.add_argument("images", nargs="+", help="input image(s)")
    s.add_argument("--model", help="a model name (see `percept models`), or a .pt or .onnx path")
    s.add_argument("--style", action="append", metavar="PAINTING",
                   help="any painting instead of --model: universal style transfer with the shipped decoders, no "
                        "training (repeat to blend several)")
    s.add_argument("--method", choices=["wct", "adain", "linear"],
                   help="--style: adain (default; Huang & Belongie 2017, with its own trained decoder), wct (Li et al. "
                        "2017; more painterly, three times slower) or "
                        "linear (Li et al. 2019; one feed-forward pass, runs on every backend)")
    s.add_argument("--style-blend", help="--style: weights of several paintings, e.g. 0.6,0.4")
    s.add_argument("--decoder", action="append", metavar="MODEL",
                   help="--style with wct/adain: use this decoder (name or .pt) for its layer instead of the shipped "
                        "one, e.g. one from `train-decoder --loss adain` (repeat for several layers)")
    s.add_argument("--levels", help="--style with wct/adain: the layers to transform, coarse to fine (default "
                                    "wct relu4_1,relu3_1,relu2_1; adain relu4_1); each needs a decoder, e.g. "
                                    "relu4_1,relu3_1,relu2_1,relu1_1 for all of Li et al.'s finer levels")
    s.add_argument("-o", "--output", required=True, help="output file (one input) or folder (several)")
    s.add_argument("--size", type=_side_int, help="resize so the long side is SIZE px first")
    s.add_argument("--strength", type=_unit_float, default=1.0, help="0 = photo, 1 = full style (default 1)")
    s.add_argument("--preserve-color", action="store_true", help="keep the photo's colours (luminance transfer)")
    s.add_argument("--color-match", type=_unit_float, metavar="AMOUNT",
                   help="--style: move the picture's colour mean and covariance this far (0..1) towards the painting's "
                        "(default: adain 0.5, wct and linear 0)")
    _backend_args(s, "onnx (onnxruntime; the default when MODEL.onnx exists), torch, or openvino (the .onnx "
                     "run by OpenVINO on the CPU, the fastest CPU backend)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_stylize)

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

    sw = sub.add_parser("serve-web", help="serve a --web export on localhost (with the headers WebAssembly "
                                          "threads need)")
    sw.add_argument("folder", help="the folder percept export --web wrote")
    sw.add_argument("--port", type=_nonneg_int, default=8000, help="port (default 8000; 0 picks a free one)")
    sw.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sw.set_defaults(func=cmd_serve_web)

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

    v = sub.add_parser("video", help="stylize a video file (keeps frame rate and frame size)")
    v.add_argument("input", help="input video file")
    v.add_argument("-o", "--output", required=True, help="output video (.mp4, .avi, .mkv, .mov)")
    v.add_argument("--model", help="a model name (see `percept models`), or a .pt or .onnx path")
    v.add_argument("--style", action="append", metavar="PAINTING",
                   help="any painting instead of --model: the linear style model (Li et al. 2019), no training")
    v.add_argument("--size", type=_side_int, help="long side the network runs at (default: frame size)")
    v.add_argument("--strength", type=_unit_float, default=1.0)
    v.add_argument("--preserve-color", action="store_true")
    v.add_argument("--batch", type=_positive_int, default=4, help="frames per network call (default 4)")
    _backend_args(v)
    v.add_argument("--temporal", action="store_true",
                   help="flow-guided: blend each frame with the previous output warped along the optical flow "
                        "(less flicker; occlusions, fast changes and scene cuts take the new frame)")
    v.add_argument("--temporal-alpha", type=_temporal_alpha, default=0.8,
                   help="--temporal: weight of the warped history, 0..0.99 (default 0.8)")
    v.add_argument("--flow", choices=FLOW_PRESETS, default=VIDEO_FLOW,
                   help=f"--temporal: the DIS optical flow preset (default {VIDEO_FLOW}; ultrafast is about 10x faster "
                        "and flickers more)")
    v.add_argument("--quiet", action="store_true")
    v.set_defaults(func=cmd_video)

    ev = sub.add_parser("eval-video", help="temporal consistency: the warping error (Lai et al. 2018) of a "
                                           "stylised clip along its source's optical flow")
    ev.add_argument("source", help="the original clip")
    ev.add_argument("stylised", help="its stylisation (same frames, any size)")
    ev.add_argument("--frames", type=_positive_int, help="compare only the first N frames")
    ev.set_defaults(func=cmd_eval_video)

    w = sub.add_parser("webcam", help="live stylized camera view (keys: n/p model, b side-by-side, "
                                      "+/- strength, c colour, t flow-guided, s snapshot, q quit)")
    w.add_argument("--model", action="append", help="model to start with (repeat to choose the cycle; "
                                                    "default: every shipped style)")
    src = w.add_mutually_exclusive_group()
    src.add_argument("--camera", type=_nonneg_int, default=0, help="camera index (default 0)")
    src.add_argument("--source", help="a video file played as if it were a camera")
    w.add_argument("--style", action="append", metavar="PAINTING",
                   help="any painting, live, with the linear style model (Li et al. 2019); repeat to cycle with n/p")
    w.add_argument("--size", type=_side_int, default=512, help="long side the network runs at (default 512)")
    w.add_argument("--strength", type=_unit_float, default=1.0)
    w.add_argument("--preserve-color", action="store_true")
    w.add_argument("--side-by-side", action="store_true", help="start with the raw view beside the stylized one")
    w.add_argument("--headless", action="store_true", help="no window: write the view to -o OUT.mp4")
    w.add_argument("-o", "--output", help="with --headless: the video file to write")
    w.add_argument("--frames", type=_positive_int, help="stop after N shown frames")
    w.add_argument("--snapshot-dir", default="snapshots", help="where `s` saves snapshots (default snapshots/)")
    w.add_argument("--temporal", action="store_true", help="start flow-guided (less flicker; key t toggles it)")
    w.add_argument("--temporal-alpha", type=_temporal_alpha, default=0.8,
                   help="weight of the warped history, 0..0.99 (default 0.8)")
    w.add_argument("--flow", choices=FLOW_PRESETS, default=LIVE_FLOW,
                   help=f"the optical flow preset of --temporal (default {LIVE_FLOW}, the fastest; {VIDEO_FLOW} "
                        "flickers less and costs frames)")
    _backend_args(w)
    w.set_defaults(func=cmd_webcam)

    cp = sub.add_parser("compare", help="one photo and one painting: the per-style network, each arbitrary method "
                                        "and Gatys at a few step counts on one HTML page, with losses and seconds")
    cp.add_argument("photo")
    cp.add_argument("--style", required=True, help="the painting")
    cp.add_argument("-o", "--output", required=True, help="folder for index.html")
    cp.add_argument("--model", action="append", help="per-style network(s) to show (default: the models trained on "
                                                      "this painting)")
    cp.add_argument("--size", type=_side_int, default=256, help="long side in px (default 256)")
    cp.add_argument("--gatys-steps", default="10,30,100", help="L-BFGS step counts (default 10,30,100; '' for none)")
    cp.add_argument("--methods", default="wct,adain,linear", help="arbitrary methods (default wct,adain,linear; '' for none)")
    cp.add_argument("--device", default="auto")
    cp.add_argument("--quiet", action="store_true")
    cp.set_defaults(func=cmd_compare)

    g = sub.add_parser("optimize-style", help="slow style transfer by image optimisation (Gatys et al. 2015)")
    g.add_argument("--content", required=True)
    g.add_argument("--style", required=True, action="append", help="style image (repeat to blend several)")
    g.add_argument("--style-blend", help="weights for several --style, e.g. 0.7,0.3")
    g.add_argument("-o", "--output", required=True)
    g.add_argument("--iterations", type=_positive_int, default=200)
    g.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    g.add_argument("--init", choices=["content", "noise"], default="content")
    g.add_argument("--size", type=_side_int, default=512, help="long side in px (default 512)")
    g.add_argument("--content-weight", type=_nonneg_float, default=1.0)
    g.add_argument("--style-weight", type=_nonneg_float, default=10.0)
    g.add_argument("--tv-weight", type=_nonneg_float, default=10.0)
    g.add_argument("--preserve-color", action="store_true")
    g.add_argument("--snapshot-every", type=_nonneg_int, default=0,
                   help="save OUT_snapshots/step_N.png every N steps (default 0: none)")
    g.add_argument("--device", default="auto")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--quiet", action="store_true")
    g.set_defaults(func=cmd_optimize_style)
    d = sub.add_parser("demo", help="stylise scikit-image's sample photos with every shipped model")
    d.add_argument("-o", "--output", default="out/demo", help="output folder (default out/demo)")
    d.add_argument("--size", type=_side_int, default=512, help="long side in px (default 512)")
    d.add_argument("--device", default="auto")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)
    return p


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C, so every output's clean-up runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, frame) -> None:
    raise _Terminated(signum)


def _handle_termination() -> None:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _raise_terminated)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _handle_termination()
    try:
        return _run(args)
    finally:
        if "percept.training.distributed" in sys.modules:  # a torchrun job: leave its process group cleanly
            from percept.training.distributed import close

            close()


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except PerceptError as exc:
        # one write per line: the processes of a torchrun job share the terminal; rank > 0 says which it is
        rank = os.environ.get("RANK", "0") if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 else "0"
        sys.stderr.write(f"percept: error{'' if rank == '0' else f' (rank {rank})'}: {exc}\n")
        sys.stderr.flush()
        return 2
    except KeyboardInterrupt as exc:
        if isinstance(exc, _Terminated):
            import signal

            print(f"percept: stopped by {signal.Signals(exc.signum).name}", file=sys.stderr)
            return 128 + exc.signum
        print("percept: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
