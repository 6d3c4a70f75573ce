"""``percept video``, ``webcam`` and ``eval-video``: moving pictures. Both hand their model or painting to the library's
one stylizer (:func:`percept.inference.stylizer.open_stylizer`; a painting runs the linear style model, Li et al.
2019); ``video``'s options are built from :class:`~percept.inference.options.VideoOptions`."""

from __future__ import annotations

import argparse
from pathlib import Path

from percept.argtypes import add_options, add_quiet, config_from_args
from percept.argtypes import nonneg_int as _nonneg_int
from percept.errors import PerceptError
from percept.inference.deploy_options import EvalVideoOptions
from percept.inference.options import LiveOptions, StylizerOptions, VideoOptions

LIVE_STYLE_HELP = "any painting instead of --model: the linear style model (Li et al. 2019), no training"
RUN_OPTIONS = ("backend", "device", "precision")
"""How a network runs: the same options for stylize, video and the webcam."""


def cmd_video(args: argparse.Namespace) -> int:
    from percept.inference.stylizer import open_stylizer
    from percept.inference.video import check_video_output, open_capture, stylize_video

    if not args.output.strip():
        raise PerceptError("-o/--output is empty: give a video file name")
    check_video_output(args.output)
    if Path(args.output).resolve() == Path(args.input).resolve():
        raise PerceptError(f"{args.output}: is the input {args.input}; percept never overwrites an input "
                           "(give -o another name)")
    if args.style and len(args.style) > 1:
        raise PerceptError("video takes one --style painting")
    open_capture(args.input).release()  # a bad input fails before the model loads
    stylizer = open_stylizer(args.model, style=args.style, method="linear" if args.style else None,
                             backend=args.backend, device=args.device, precision=args.precision)
    options = config_from_args(VideoOptions, args)
    r = stylize_video(args.input, args.output, stylizer, options, progress=not args.quiet)
    flow = ""
    if "temporal_stats" in r:
        st = r["temporal_stats"]
        flow = (f"; flow-guided (alpha {options.temporal_alpha:g}, {options.flow} flow): {st.confident * 100:.0f}% of the "
                f"pixels kept their history, {st.resets} scene cut{'s' * (st.resets != 1)}")
    print(f"wrote {r['path']} ({r['frames']} frames, {r['size'][0]}x{r['size'][1]} at {r['fps']:.2f} fps; "
          f"{r['frames'] / max(r['seconds'], 1e-9):.1f} frames/s with {stylizer.describe()}{flow})")
    return 0


def cmd_eval_video(args: argparse.Namespace) -> int:
    from percept.evaluation import warping_error
    from percept.inference.video import read_clip

    o = config_from_args(EvalVideoOptions, args)
    source = read_clip(o.source, max_frames=o.frames)
    stylised = read_clip(o.stylised, max_frames=o.frames)
    if len(source) != len(stylised):
        raise PerceptError(f"{o.source} has {len(source)} frames and {o.stylised} {len(stylised)}; "
                           "compare a clip with its own stylisation")
    floor = warping_error(source, source)
    e = warping_error(source, stylised)
    print(f"{o.stylised}: E_warp {e.value:.5f} over {len(source) - 1} frame pairs "
          f"({e.valid * 100:.0f}% of the pixels compared)")
    print(f"{o.source}: E_warp {floor.value:.5f} (the source's own: the floor); ratio {e.value / max(floor.value, 1e-12):.1f}x")
    return 0


def cmd_webcam(args: argparse.Namespace) -> int:
    from percept.inference.webcam import live_models, run_webcam

    if args.source and args.output and Path(args.output).resolve() == Path(args.source).resolve():
        raise PerceptError(f"{args.output}: is the input {args.source}; percept never overwrites an input "
                           "(give -o another name)")
    models = live_models(args.model, args.style)
    stats = run_webcam(models, styles=args.style, camera=0 if args.camera is None else args.camera, source=args.source, size=args.size,
                       strength=args.strength, preserve_color=args.preserve_color, backend=args.backend,
                       device=args.device, precision=args.precision, headless=args.headless, output=args.output,
                       frames=args.frames, snapshot_dir=args.snapshot_dir, side_by_side=args.side_by_side,
                       temporal=args.temporal, temporal_alpha=args.temporal_alpha, temporal_flow=args.flow)
    where = f"; wrote {stats.output}" if stats.output else ""
    print(f"{stats.shown} frames shown at {stats.fps:.1f} FPS, {stats.captured} captured, "
          f"{stats.dropped} dropped{where}")
    return 0


def _register_video(sub) -> None:
    v = sub.add_parser("video", help="stylize a video file (keeps frame rate and frame size)")
    v.add_argument("input", help="input video file")
    v.add_argument("-o", "--output", required=True, help="output video (.mp4, .avi, .mkv, .mov)")
    add_options(v, StylizerOptions, "model", "style", style=LIVE_STYLE_HELP)
    add_options(v, VideoOptions, "size", "strength", "preserve_color", "batch")
    add_options(v, StylizerOptions, *RUN_OPTIONS)
    add_options(v, VideoOptions, "temporal", "temporal_alpha", "flow", "no_audio")
    add_quiet(v)
    v.set_defaults(func=cmd_video)


def _register_eval_video(sub) -> None:
    ev = sub.add_parser("eval-video", help="temporal consistency: the warping error (Lai et al. 2018) of a "
                                           "stylised clip along its source's optical flow")
    add_options(ev, EvalVideoOptions)
    ev.set_defaults(func=cmd_eval_video)


def _register_webcam(sub) -> None:
    w = sub.add_parser("webcam", help="live stylized camera view (keys: n/p model, b side-by-side, "
                                      "+/- strength, c colour, t flow-guided, s snapshot, q quit)")
    w.add_argument("--model", action="append", help="model to start with (repeat to choose the cycle; "
                                                    "default: every shipped style)")
    src = w.add_mutually_exclusive_group()
    src.add_argument("--camera", type=_nonneg_int, help="camera index (default 0)")  # no default: argparse
    # counts an option as given only when its value is not the default, so `--camera 0 --source CLIP` would pass
    src.add_argument("--source", help="a video file played as if it were a camera")
    add_options(w, StylizerOptions, "style", style="any painting, live, with the linear style model (Li et al. 2019); "
                                                   "repeat to cycle with n/p")
    add_options(w, LiveOptions)
    add_options(w, StylizerOptions, *RUN_OPTIONS)
    w.set_defaults(func=cmd_webcam)


def register(sub) -> None:
    """Add this job's subcommands to the ``percept`` parser."""
    _register_video(sub)
    _register_eval_video(sub)
    _register_webcam(sub)
