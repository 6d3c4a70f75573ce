"""``percept stylize``, ``compare``, ``optimize-style`` and ``demo``: pictures from photos. ``stylize`` hands its
options to the library's one stylizer (:func:`percept.inference.stylizer.open_stylizer`), which chooses the runner
and checks them; its options are built from :class:`~percept.inference.options.StylizerOptions` and
:class:`~percept.inference.options.StylizeOptions`, those of the others from
:class:`~percept.inference.deploy_options.CompareOptions`, :class:`~percept.visualize.options.GatysOptions` and
:class:`~percept.inference.deploy_options.DemoOptions`."""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict
from pathlib import Path

from percept.argtypes import add_options, add_quiet, config_from_args
from percept.cli.common import int_list
from percept.errors import PerceptError
from percept.images import check_output_path, image_size, load_image, save_image, working_size
from percept.inference.deploy_options import CompareOptions, DemoOptions
from percept.inference.options import StylizeOptions, StylizerOptions
from percept.visualize.options import GatysOptions


def _targets(images: list[str], output: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs: one input writes the file ``output``; several write ``output/STEM.png``."""
    if not output.strip():
        raise PerceptError("-o/--output is empty: give an image file name or a folder")
    inputs = [Path(p) for p in images]
    out = Path(output)
    if len(inputs) == 1 and out.suffix:
        pairs = [(inputs[0], check_output_path(out))]
    elif out.exists() and not out.is_dir():
        if len(inputs) == 1:
            raise PerceptError(f"{out}: not an image file name (give one with an extension such as .png) nor a folder")
        raise PerceptError(f"{out}: several inputs need -o to be a folder")
    else:
        pairs = [(p, out / f"{p.stem}.png") for p in inputs]
    check_distinct_outputs(pairs)
    return pairs


def check_distinct_outputs(pairs: list[tuple[Path, Path]]) -> None:
    """Before any work: no output is an input (resolved paths, symlinks followed), and no two inputs write
    the same output (``a/photo.png b/photo.png`` or ``photo.png photo.jpg`` into one folder)."""
    sources = {src.resolve(): src for src, _ in pairs}
    written: dict[Path, Path] = {}
    for src, dst in pairs:
        key = dst.resolve()
        if key in sources:
            raise PerceptError(f"{dst}: is the input {sources[key]}; percept never overwrites an input "
                               "(give -o another name or folder)")
        if key in written and written[key].resolve() != src.resolve():
            raise PerceptError(f"{written[key]} and {src} would both be written to {dst}; "
                               "stylize them into different folders")
        written[key] = src


def cmd_stylize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

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

    o = config_from_args(CompareOptions, args)
    steps = int_list(o.gatys_steps, "--gatys-steps") if o.gatys_steps else []
    page = build_compare(o.photo, o.style, o.output, models=o.model, size=o.size, gatys_steps=steps,
                         methods=[m for m in o.methods.split(",") if m], device=o.device, progress=not args.quiet)
    print(f"wrote {page} (open it in a browser)")
    return 0


def cmd_optimize_style(args: argparse.Namespace) -> int:
    from percept.visualize.gatys import optimize_style

    o = config_from_args(GatysOptions, args)
    out = check_output_path(o.output)
    blend = None
    if o.style_blend:
        try:
            blend = [float(w) for w in o.style_blend.split(",")]
        except ValueError:
            raise PerceptError(f"--style-blend: expected numbers like 0.7,0.3, got '{o.style_blend}'") from None
        if len(blend) != len(o.style) or not all(math.isfinite(w) and w >= 0 for w in blend) or sum(blend) <= 0:
            raise PerceptError(f"--style-blend needs {len(o.style)} non-negative weights (one per --style)")
    content = load_image(o.content)
    styles = [load_image(s) for s in o.style]
    snapshot_dir = None
    if o.snapshot_every:
        snapshot_dir = out.parent / f"{out.stem}_snapshots"
    result = optimize_style(content, styles, blend=blend, iterations=o.iterations, optimizer=o.optimizer,
                            init=o.init, size=o.size, content_weight=o.content_weight, style_weight=o.style_weight,
                            tv_weight=o.tv_weight, device=o.device, seed=o.seed, snapshot_every=o.snapshot_every,
                            snapshot_dir=snapshot_dir, progress=not args.quiet)
    if o.preserve_color:
        from percept.images import preserve_color
        result.image = preserve_color(result.image, content)
    save_image(result.image, out)
    print(f"wrote {out} (content {result.losses['content']:.4f}, style {result.losses['style']:.4f}, "
          f"{result.seconds:.1f} s)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from percept.demo import run_demo

    o = config_from_args(DemoOptions, args)
    sheet = run_demo(o.output, size=o.size, device=o.device, progress=not args.quiet)
    print(f"wrote the stylised sample photos and {sheet}")
    return 0


def _register_stylize(sub) -> None:
    s = sub.add_parser("stylize", help="stylize photos with a trained network or any painting")
    s.add_argument("images", nargs="+", help="input image(s)")
    s.add_argument("-o", "--output", required=True, help="output file (one input) or folder (several)")
    add_options(s, StylizerOptions, backend="onnx (onnxruntime; the default when MODEL.onnx exists), torch, or openvino "
                                           "(the .onnx run by OpenVINO on the CPU, the fastest CPU backend)")
    add_options(s, StylizeOptions)
    add_quiet(s)
    s.set_defaults(func=cmd_stylize)


def _register_compare(sub) -> None:
    cp = sub.add_parser("compare", help="one photo and one painting: the per-style network, each arbitrary method "
                                        "and Gatys at a few step counts on one HTML page, with losses and seconds")
    add_options(cp, CompareOptions)
    add_quiet(cp)
    cp.set_defaults(func=cmd_compare)


def _register_optimize_style(sub) -> None:
    g = sub.add_parser("optimize-style", help="slow style transfer by image optimisation (Gatys et al. 2015)")
    add_options(g, GatysOptions)
    add_quiet(g)
    g.set_defaults(func=cmd_optimize_style)


def _register_demo(sub) -> None:
    d = sub.add_parser("demo", help="stylise scikit-image's sample photos with every shipped style model")
    add_options(d, DemoOptions)
    add_quiet(d)
    d.set_defaults(func=cmd_demo)


def register(sub) -> None:
    """Add this job's subcommands to the ``percept`` parser."""
    _register_stylize(sub)
    _register_compare(sub)
    _register_optimize_style(sub)
    _register_demo(sub)
