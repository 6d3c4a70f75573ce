"""The ``percept`` command line.

Every mistake a user can make ends in one line on stderr (``percept: error: ...``) and exit code 2;
Ctrl-C ends with exit code 130. Output files are written atomically, so neither leaves half a file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from percept.errors import PerceptError


from percept.argtypes import nonneg_float as _nonneg_float  # noqa: E402
from percept.argtypes import nonneg_int as _nonneg_int  # noqa: E402
from percept.argtypes import positive_float as _positive_float  # noqa: E402
from percept.argtypes import positive_int as _positive_int  # noqa: E402
from percept.argtypes import unit_float as _unit_float  # noqa: E402


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
    from percept.training.style import StyleTrainConfig, train_style

    cfg = StyleTrainConfig(
        style=args.style, data=args.data, out=args.out, name=args.name, image_size=args.image_size,
        batch_size=args.batch_size, iterations=args.iterations, lr=args.lr,
        content_weight=args.content_weight, style_weight=args.style_weight, tv_weight=args.tv_weight,
        style_size=args.style_size, channels=args.channels or ([16, 32, 64] if args.arch == "rt" else [32, 64, 128]),
        n_residual=args.residual_blocks or (4 if args.arch == "rt" else 5), output=args.output, arch=args.arch,
        seed=args.seed, checkpoint_every=args.checkpoint_every, logdir=args.logdir, device=args.device,
        holdout_every=args.holdout_every, time_limit=args.time_limit, workers=args.workers,
        init=args.init)
    path = train_style(cfg, resume=args.resume, progress=not args.quiet)
    print(f"model written to {path} (card: {path.with_suffix('.json')})")
    return 0


def cmd_train_decoder(args: argparse.Namespace) -> int:
    from percept.training.decoder import DecoderTrainConfig, train_decoder

    cfg = DecoderTrainConfig(
        layer=args.layer, data=args.data, out=args.out, name=args.name, loss=args.loss,
        feature_weight=args.feature_weight, image_size=args.image_size, batch_size=args.batch_size,
        iterations=args.iterations, lr=args.lr, width=args.width, n_blocks=args.blocks, seed=args.seed,
        holdout_every=args.holdout_every, checkpoint_every=args.checkpoint_every, logdir=args.logdir,
        device=args.device, workers=args.workers, time_limit=args.time_limit)
    path = train_decoder(cfg, resume=args.resume, progress=not args.quiet)
    print(f"decoder written to {path} (card: {path.with_suffix('.json')})")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from percept.training.distill import DistillConfig, distill_style

    rt = args.arch == "rt"
    cfg = DistillConfig(teacher=args.teacher, data=args.data, out=args.out, name=args.name, arch=args.arch,
                        channels=args.channels or ([16, 32, 64] if rt else [32, 64, 128]),
                        n_residual=args.residual_blocks or (4 if rt else 5), image_size=args.image_size,
                        pairs=args.pairs, batch_size=args.batch_size, iterations=args.iterations, lr=args.lr,
                        seed=args.seed, logdir=args.logdir, device=args.device)
    path = distill_style(cfg, progress=not args.quiet)
    print(f"model written to {path} (card: {path.with_suffix('.json')})")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from percept.inference.registry import list_models

    models = list_models()
    if not models:
        print("no shipped models found")
        return 0
    print(f"{'name':<18} {'kind':<18} {'architecture':<22} {'iterations':>10}  trained on")
    for m in models:
        card = m.card
        arch = card.get("architecture", {})
        if card.get("kind") == "feature-decoder":
            arch_s = f"{card.get('layer', '?')} w{arch.get('width', '?')} x{arch.get('n_blocks', '?')}"
        else:
            arch_s = (arch.get("arch", "johnson") + " " + "-".join(map(str, arch.get("channels", [])))
                      + f" x{arch.get('n_residual', '?')}")
        print(f"{m.name:<18} {card.get('kind', '?'):<18} {arch_s:<22} {card.get('iterations', '?'):>10}  "
              f"{card.get('device', '?')}")
    return 0


def cmd_stylize(args: argparse.Namespace) -> int:
    from percept.imageio import check_output_path, load_image, save_image
    from percept.inference.engine import Engine

    inputs = [Path(p) for p in args.images]
    out = Path(args.output)
    if len(inputs) == 1 and out.suffix:
        targets = [(inputs[0], check_output_path(out))]
    else:
        if out.exists() and not out.is_dir():
            raise PerceptError(f"{out}: several inputs need -o to be a folder")
        targets = [(p, out / f"{p.stem}.png") for p in inputs]
    for p, _ in targets:  # fail before doing any work
        load_image(p)
    stylizer = Engine(args.model, backend=args.backend, device=args.device)
    from tqdm import tqdm

    for src, dst in tqdm(targets, desc="stylize", disable=len(targets) < 2 or args.quiet):
        img = stylizer(load_image(src), size=args.size, strength=args.strength,
                       preserve_color=args.preserve_color)
        save_image(img, dst)
        if len(targets) == 1:
            print(f"wrote {dst}")
    if len(targets) > 1:
        print(f"wrote {len(targets)} images to {out}/")
    return 0


def cmd_optimize_style(args: argparse.Namespace) -> int:
    from percept.imageio import check_output_path, load_image, save_image
    from percept.visualize.gatys import optimize_style

    out = check_output_path(args.output)
    blend = None
    if args.style_blend:
        try:
            blend = [float(w) for w in args.style_blend.split(",")]
        except ValueError:
            raise PerceptError(f"--style-blend: expected numbers like 0.7,0.3, got '{args.style_blend}'") from None
        if len(blend) != len(args.style) or min(blend) < 0 or sum(blend) <= 0:
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
        from percept.imageio import preserve_color
        result.image = preserve_color(result.image, content)
    save_image(result.image, out)
    print(f"wrote {out} (content {result.losses['content']:.4f}, style {result.losses['style']:.4f}, "
          f"{result.seconds:.1f} s)")
    return 0


def cmd_invert(args: argparse.Namespace) -> int:
    from percept.imageio import check_output_path, load_image, resize_long_side, save_image, to_tensor
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
    from percept.inference.registry import resolve_model

    out = Path(args.output) if args.output else resolve_model(args.model).with_suffix(".onnx")
    report = export_onnx(args.model, out, opset=args.opset, fp16=args.fp16, int8=args.int8,
                         calibration=args.calibration)
    head = f"wrote {report.path} ({report.precision}, opset {report.opset}, {report.bytes / 1e6:.1f} MB); "
    if report.psnr is not None:
        print(head + f"onnxruntime vs PyTorch: PSNR {report.psnr:.1f} dB (worst of {report.photos} photos the "
              f"calibration did not see), max abs diff {report.max_abs_diff:.2f}")
        return 0
    sizes = ", ".join(f"{n}x{report.channels}x{h}x{w}" for n, h, w in report.sizes)
    print(head + f"onnxruntime vs PyTorch max abs diff {report.max_abs_diff:.2e} on {sizes}")
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    from percept.inference.engine import Engine
    from percept.inference.video import FrameStyler, check_video_output, open_capture, stylize_video

    check_video_output(args.output)
    open_capture(args.input).release()  # a bad input fails before the model loads
    engine = Engine(args.model, backend=args.backend, device=args.device)
    styler = FrameStyler(engine, args.size, args.strength, args.preserve_color)
    r = stylize_video(args.input, args.output, styler, batch=args.batch, progress=not args.quiet)
    print(f"wrote {r['path']} ({r['frames']} frames, {r['size'][0]}x{r['size'][1]} at {r['fps']:.2f} fps; "
          f"{r['frames'] / max(r['seconds'], 1e-9):.1f} frames/s with {engine.describe()})")
    return 0


def cmd_webcam(args: argparse.Namespace) -> int:
    from percept.inference.registry import list_models
    from percept.inference.webcam import run_webcam

    models = list(args.model) if args.model else []
    others = [m.name for m in list_models("style-transformer") if m.name not in models]
    if not models:
        models = others[:1]
        others = others[1:]
    stats = run_webcam(models + others, camera=args.camera, source=args.source, size=args.size,
                       strength=args.strength, preserve_color=args.preserve_color, backend=args.backend,
                       device=args.device, headless=args.headless, output=args.output, frames=args.frames,
                       snapshot_dir=args.snapshot_dir, side_by_side=args.side_by_side)
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

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage + message)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _training_run_options(p: argparse.ArgumentParser, time_limit_help: str) -> None:
    """Options every training command shares (held-out previews, checkpoints, time limit, resume, ...)."""
    p.add_argument("--holdout-every", type=int, default=10, help="hold out every Nth photo for previews (0: none)")
    p.add_argument("--checkpoint-every", type=_positive_int, default=100)
    p.add_argument("--time-limit", type=_positive_float, metavar="MINUTES", help=time_limit_help)
    p.add_argument("--workers", type=_nonneg_int, help="data-loading processes (default 0 on a CPU, 4 on a GPU)")
    p.add_argument("--logdir", help="TensorBoard folder (default OUT/tb/NAME)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/NAME.train.pt")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="percept", description="Fast style transfer and feature inversion with perceptual losses.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train-style", help="train a feed-forward style network (Johnson et al. 2016)")
    t.add_argument("--style", required=True, help="the style image (a painting)")
    t.add_argument("--data", required=True, help="folder of training photos")
    t.add_argument("--out", required=True, help="output folder: NAME.pt, NAME.json, NAME.train.pt, tb/")
    t.add_argument("--name", help="model name (default: the style file's stem)")
    t.add_argument("--image-size", type=_positive_int, default=192, help="training crop size (default 192; paper 256)")
    t.add_argument("--batch-size", type=_positive_int, default=2, help="default 2 (paper 4)")
    t.add_argument("--iterations", type=_positive_int, default=2000, help="default 2000 (paper 40000)")
    t.add_argument("--lr", type=_nonneg_float, default=2e-3, help="Adam learning rate (default 2e-3)")
    t.add_argument("--content-weight", type=_nonneg_float, default=1.0)
    t.add_argument("--style-weight", type=_nonneg_float, default=10.0)
    t.add_argument("--tv-weight", type=_nonneg_float, default=10.0)
    t.add_argument("--style-size", type=_positive_int, default=512, help="style image long side (default 512)")
    t.add_argument("--arch", choices=["johnson", "rt"], default="johnson",
                   help="johnson: the paper's network (default); rt: the real-time CPU network")
    t.add_argument("--channels", type=_channels, help="encoder widths (default 32,64,128; rt 16,32,64)")
    t.add_argument("--residual-blocks", type=_positive_int, help="default 5 (rt 4)")
    t.add_argument("--output", choices=["sigmoid", "residual"], default="sigmoid",
                   help="sigmoid: sigmoid(f(photo)) (default); residual: sigmoid(logit(photo) + f(photo)), "
                        "starts as the identity")
    t.add_argument("--init", metavar="MODEL",
                   help="start from a trained model of the same architecture (name or .pt), e.g. a distilled rt model")
    _training_run_options(t, "stop after this many minutes and save the model (--resume continues it)")
    t.set_defaults(func=cmd_train_style)

    td = sub.add_parser("train-decoder", help="train a feature-inversion decoder for a VGG19 layer "
                                              "(Dosovitskiy & Brox 2016)")
    td.add_argument("--layer", required=True, help="the VGG19 layer to invert, e.g. relu3_1 (relu*/pool* layers)")
    td.add_argument("--data", required=True, help="folder of training photos")
    td.add_argument("--out", required=True, help="output folder: NAME.pt, NAME.json, NAME.train.pt, tb/")
    td.add_argument("--name", help="model name (default decoder_LAYER)")
    td.add_argument("--loss", choices=["pixel", "pixel+feature"], default="pixel",
                    help="pixel: MSE (CVPR 2016, default); pixel+feature: plus the relative feature error at "
                         "the layer (NeurIPS 2016), sharper at deep layers")
    td.add_argument("--feature-weight", type=_nonneg_float, default=0.01, help="weight of the feature term (0.01)")
    td.add_argument("--image-size", type=_positive_int, default=128,
                    help="training crop size, a multiple of the layer's stride (default 128)")
    td.add_argument("--batch-size", type=_positive_int, default=8)
    td.add_argument("--iterations", type=_positive_int, default=2000)
    td.add_argument("--lr", type=_nonneg_float, default=1e-3, help="Adam, cosine decay to 1e-4 (default 1e-3)")
    td.add_argument("--width", type=_positive_int, help="channels at the feature resolution (default min(C, 256))")
    td.add_argument("--blocks", type=_nonneg_int, default=2, help="residual blocks before upsampling (default 2)")
    _training_run_options(td, "stop after this many minutes and save the decoder (the LR schedule fits in it)")
    td.set_defaults(func=cmd_train_decoder)

    iv = sub.add_parser("invert", help="reconstruct a photo from one VGG19 layer's features "
                                       "(decoder: Dosovitskiy & Brox; optimize: Mahendran & Vedaldi)")
    iv.add_argument("image", help="the photo")
    iv.add_argument("--layer", required=True, help="VGG19 layer, e.g. relu3_1")
    iv.add_argument("--method", choices=["decoder", "optimize"], default="decoder",
                    help="decoder: one pass of a trained decoder (default); optimize: Mahendran-Vedaldi optimisation")
    iv.add_argument("-o", "--output", required=True, help="the reconstruction (.png, .jpg, ...)")
    iv.add_argument("--model", help="decoder .pt (default: the shipped decoder_LAYER)")
    iv.add_argument("--size", type=_positive_int, default=256, help="photo's long side in pixels (default 256)")
    iv.add_argument("--iterations", type=_positive_int, help="optimize: steps of the first stage (default 300)")
    iv.add_argument("--device", default="auto", help="auto, cpu or cuda")
    iv.add_argument("--seed", type=int, default=0, help="optimize: seeds the initial noise and the jitter")
    iv.add_argument("--quiet", action="store_true", help="no progress bar")
    iv.set_defaults(func=cmd_invert)

    vz = sub.add_parser("viz", help="look inside networks: filters, activations, attribution, DeepDream, ...")
    vsub = vz.add_subparsers(dest="technique", metavar="TECHNIQUE", required=True)
    from percept.visualize.commands import add_viz_commands

    add_viz_commands(vsub)

    ds = sub.add_parser("distill", help="train a fast network to reproduce a trained one (no loss network)")
    ds.add_argument("--teacher", required=True, help="the trained model to imitate (name or .pt)")
    ds.add_argument("--data", required=True, help="folder of training photos")
    ds.add_argument("--out", required=True, help="output folder: NAME.pt, NAME.json, tb/")
    ds.add_argument("--name", help="default: TEACHER_ARCH")
    ds.add_argument("--arch", choices=["rt", "johnson"], default="rt")
    ds.add_argument("--channels", type=_channels, help="default 16,32,64 for rt")
    ds.add_argument("--residual-blocks", type=_positive_int, help="default 4 for rt")
    ds.add_argument("--image-size", type=_positive_int, default=256)
    ds.add_argument("--pairs", type=_positive_int, default=384, help="teacher-stylised crops (default 384)")
    ds.add_argument("--batch-size", type=_positive_int, default=8)
    ds.add_argument("--iterations", type=_positive_int, default=1000)
    ds.add_argument("--lr", type=_nonneg_float, default=3e-3)
    ds.add_argument("--logdir")
    ds.add_argument("--device", default="auto")
    ds.add_argument("--seed", type=int, default=0)
    ds.add_argument("--quiet", action="store_true")
    ds.set_defaults(func=cmd_distill)

    m = sub.add_parser("models", help="list the shipped models")
    m.set_defaults(func=cmd_models)

    s = sub.add_parser("stylize", help="stylize photos with a trained network")
    s.add_argument("images", nargs="+", help="input image(s)")
    s.add_argument("--model", required=True, help="a shipped model name (see `percept models`) or a .pt path")
    s.add_argument("-o", "--output", required=True, help="output file (one input) or folder (several)")
    s.add_argument("--size", type=_positive_int, help="resize so the long side is SIZE px first")
    s.add_argument("--strength", type=_unit_float, default=1.0, help="0 = photo, 1 = full style (default 1)")
    s.add_argument("--preserve-color", action="store_true", help="keep the photo's colours (luminance transfer)")
    s.add_argument("--backend", choices=["auto", "onnx", "torch"], default="auto",
                   help="onnx (onnxruntime; the default when MODEL.onnx exists) or torch")
    s.add_argument("--device", default="auto", help="auto, cpu or cuda")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_stylize)

    e = sub.add_parser("export", help="export a trained network to ONNX (checked against PyTorch)")
    e.add_argument("model", help="a shipped model name or a .pt path")
    e.add_argument("-o", "--output", help="the .onnx file (default: beside the .pt)")
    e.add_argument("--opset", type=_positive_int, default=18, help="ONNX opset (default 18)")
    e.add_argument("--fp16", action="store_true", help="float16 weights and arithmetic, float32 input/output")
    e.add_argument("--int8", action="store_true",
                   help="int8 convolutions calibrated on photos (style networks; ~2x faster on CPUs with "
                        "AVX-512 VNNI; checked by PSNR against PyTorch)")
    e.add_argument("--calibration", metavar="DIR",
                   help="--int8: folder of photos to calibrate on (default: scikit-image's sample photos)")
    e.set_defaults(func=cmd_export)

    v = sub.add_parser("video", help="stylize a video file (keeps frame rate and frame size)")
    v.add_argument("input", help="input video file")
    v.add_argument("-o", "--output", required=True, help="output video (.mp4, .avi, .mkv, .mov)")
    v.add_argument("--model", required=True, help="a shipped model name, .onnx or .pt path")
    v.add_argument("--size", type=_positive_int, help="long side the network runs at (default: frame size)")
    v.add_argument("--strength", type=_unit_float, default=1.0)
    v.add_argument("--preserve-color", action="store_true")
    v.add_argument("--batch", type=_positive_int, default=4, help="frames per network call (default 4)")
    v.add_argument("--backend", choices=["auto", "onnx", "torch"], default="auto")
    v.add_argument("--device", default="auto", help="auto, cpu, cuda or tensorrt")
    v.add_argument("--quiet", action="store_true")
    v.set_defaults(func=cmd_video)

    w = sub.add_parser("webcam", help="live stylized camera view (keys: n/p model, b side-by-side, "
                                      "+/- strength, c colour, s snapshot, q quit)")
    w.add_argument("--model", action="append", help="model to start with (repeat to choose the cycle; "
                                                    "default: every shipped style)")
    src = w.add_mutually_exclusive_group()
    src.add_argument("--camera", type=int, default=0, help="camera index (default 0)")
    src.add_argument("--source", help="a video file played as if it were a camera")
    w.add_argument("--size", type=_positive_int, default=512, help="long side the network runs at (default 512)")
    w.add_argument("--strength", type=_unit_float, default=1.0)
    w.add_argument("--preserve-color", action="store_true")
    w.add_argument("--side-by-side", action="store_true", help="start with the raw view beside the stylized one")
    w.add_argument("--headless", action="store_true", help="no window: write the view to -o OUT.mp4")
    w.add_argument("-o", "--output", help="with --headless: the video file to write")
    w.add_argument("--frames", type=_positive_int, help="stop after N shown frames")
    w.add_argument("--snapshot-dir", default="snapshots", help="where `s` saves snapshots (default snapshots/)")
    w.add_argument("--backend", choices=["auto", "onnx", "torch"], default="auto")
    w.add_argument("--device", default="auto", help="auto, cpu, cuda or tensorrt")
    w.set_defaults(func=cmd_webcam)

    g = sub.add_parser("optimize-style", help="slow style transfer by image optimisation (Gatys et al. 2015)")
    g.add_argument("--content", required=True)
    g.add_argument("--style", required=True, action="append", help="style image (repeat to blend several)")
    g.add_argument("--style-blend", help="weights for several --style, e.g. 0.7,0.3")
    g.add_argument("-o", "--output", required=True)
    g.add_argument("--iterations", type=_positive_int, default=200)
    g.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    g.add_argument("--init", choices=["content", "noise"], default="content")
    g.add_argument("--size", type=_positive_int, default=512, help="long side in px (default 512)")
    g.add_argument("--content-weight", type=_nonneg_float, default=1.0)
    g.add_argument("--style-weight", type=_nonneg_float, default=10.0)
    g.add_argument("--tv-weight", type=_nonneg_float, default=10.0)
    g.add_argument("--preserve-color", action="store_true")
    g.add_argument("--snapshot-every", type=int, default=0, help="save OUT_snapshots/step_N.png every N steps")
    g.add_argument("--device", default="auto")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--quiet", action="store_true")
    g.set_defaults(func=cmd_optimize_style)
    d = sub.add_parser("demo", help="stylise scikit-image's sample photos with every shipped model")
    d.add_argument("-o", "--output", default="out/demo", help="output folder (default out/demo)")
    d.add_argument("--size", type=_positive_int, default=512, help="long side in px (default 512)")
    d.add_argument("--device", default="auto")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PerceptError as exc:
        print(f"percept: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("percept: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
