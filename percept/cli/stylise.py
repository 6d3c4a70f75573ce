"""``percept stylize``, ``compare``, ``optimize-style`` and ``demo``: pictures from photos. ``stylize`` hands its
options to the library's one stylizer (:func:`percept.inference.stylizer.open_stylizer`), which chooses the runner
and checks them; its options are built from :class:`~percept.inference.options.StylizerOptions` and
:class:`~percept.inference.options.StylizeOptions`."""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from pathlib import Path

from percept.argtypes import add_options, config_from_args
from percept.argtypes import nonneg_float as _nonneg_float
from percept.argtypes import nonneg_int as _nonneg_int
from percept.argtypes import positive_int as _positive_int
from percept.argtypes import side_int as _side_int
from percept.cli.common import int_list
from percept.errors import PerceptError
from percept.inference.options import StylizeOptions, StylizerOptions


def _targets(images: list[str], output: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs: one input writes the file ``output``; several write ``output/STEM.png``."""
    from percept.images import check_output_path

    inputs = [Path(p) for p in images]
    out = Path(output)
    if len(inputs) == 1 and out.suffix:
        return [(inputs[0], check_output_path(out))]
    if out.exists() and not out.is_dir():
        if len(inputs) == 1:
            raise PerceptError(f"{out}: not an image file name (give one with an extension such as .png) nor a folder")
        raise PerceptError(f"{out}: several inputs need -o to be a folder")
    return [(p, out / f"{p.stem}.png") for p in inputs]


def cmd_stylize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from percept.images import image_size, load_image, save_image, working_size
    from percept.inference.runtime import check_frame_size
    from percept.inference.stylizer import check_stylizer, open_stylizer

    options = asdict(config_from_args(StylizerOptions, args))
    check_stylizer(**options)  # a bad combination or painting fails before anything is read or loaded
    targets = _targets(args.images, args.output)
    for p, _ in targets:  # fail before doing any work: the memory a size needs from the header, then a decode
        w, h = working_size(image_size(p), args.size)
        check_frame_size(h, w, 1, str(args.model or "--style"))
        load_image(p)
    stylizer = open_stylizer(**options)
    arbitrary = stylizer.engine is None
    seconds = 0.0
    desc = f"stylize ({stylizer.method})" if arbitrary else "stylize"
    for src, dst in tqdm(targets, desc=desc, disable=len(targets) < 2 or args.quiet):
        img = stylizer(load_image(src), size=args.size, strength=args.strength, preserve_color=args.preserve_color)
        save_image(img, dst)
        seconds += stylizer.last.seconds
        if len(targets) == 1:
            print(f"wrote {dst}{_what_ran(stylizer, args.preserve_color)}")
    if len(targets) > 1:
        each = f" ({seconds / len(targets):.1f} s each)" if arbitrary else f" to {args.output}/"
        print(f"wrote {len(targets)} images{each}")
    return 0


def _what_ran(stylizer, preserve_color: bool) -> str:
    if stylizer.engine is None:
        match = f", colour match {stylizer.color_match:g}" if stylizer.color_match and not preserve_color else ""
        return f" ({stylizer.method} over {', '.join(stylizer.last.layers)}{match}, {stylizer.last.seconds:.1f} s)"
    return f" (linear, {stylizer.describe()})" if stylizer.method == "linear" else ""


def cmd_compare(args: argparse.Namespace) -> int:
    from percept.compare import build_compare

    steps = int_list(args.gatys_steps, "--gatys-steps") if args.gatys_steps else []
    page = build_compare(args.photo, args.style, args.output, models=args.model, size=args.size, gatys_steps=steps,
                         methods=[m for m in args.methods.split(",") if m], device=args.device,
                         progress=not args.quiet)
    print(f"wrote {page} (open it in a browser)")
    return 0


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


def cmd_demo(args: argparse.Namespace) -> int:
    from percept.demo import run_demo

    sheet = run_demo(args.output, size=args.size, device=args.device, progress=not args.quiet)
    print(f"wrote the stylised sample photos and {sheet}")
    return 0


def _register_stylize(sub) -> None:
    s = sub.add_parser("stylize", help="stylize photos with a trained network or any painting")
    s.add_argument("images", nargs="+", help="input image(s)")
    s.add_argument("-o", "--output", required=True, help="output file (one input) or folder (several)")
    add_options(s, StylizerOptions, backend="onnx (onnxruntime; the default when MODEL.onnx exists), torch, or openvino "
                                           "(the .onnx run by OpenVINO on the CPU, the fastest CPU backend)")
    add_options(s, StylizeOptions)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_stylize)


def _register_compare(sub) -> None:
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


def _register_optimize_style(sub) -> None:
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


def _register_demo(sub) -> None:
    d = sub.add_parser("demo", help="stylise scikit-image's sample photos with every shipped model")
    d.add_argument("-o", "--output", default="out/demo", help="output folder (default out/demo)")
    d.add_argument("--size", type=_side_int, default=512, help="long side in px (default 512)")
    d.add_argument("--device", default="auto")
    d.add_argument("--quiet", action="store_true")
    d.set_defaults(func=cmd_demo)


def register(sub) -> None:
    """Add this job's subcommands to the ``percept`` parser."""
    _register_stylize(sub)
    _register_compare(sub)
    _register_optimize_style(sub)
    _register_demo(sub)
