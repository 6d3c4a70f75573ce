"""``percept viz filters | activations | maximize | dream | texture``: what the loss network has learned.

Argparse only; each command imports its torch module when it runs. Every command writes PNGs into
``-o/--out`` (a folder, created if needed) and prints what it wrote.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from percept.argtypes import nonneg_float as _nonneg_float
from percept.argtypes import nonneg_int as _nonneg_int
from percept.argtypes import positive_float as _positive_float
from percept.argtypes import positive_int as _positive_int
from percept.argtypes import side_int as _side_int
from percept.errors import PerceptError
from percept.visualize.commands import common_options

# ----------------------------------------------------------------------------------------- helpers

def _out_dir(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise PerceptError(f"{out}: is a file; -o/--out names a folder for the PNGs")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _layer_list(text: str) -> list[str]:
    from percept.models.vgg import check_layers

    layers = [p.strip() for p in text.split(",") if p.strip()]
    if not layers:
        raise PerceptError("give at least one layer, e.g. relu1_1,relu3_1")
    return check_layers(layers)


def _safe(name: str) -> str:
    return name.replace(":", "_")


def _load_photo(path: str, size: int | None):
    from percept.images import load_image, resize_long_side

    return resize_long_side(load_image(path), size)


def _wrote(paths: list[Path], seconds: float, extra: str = "") -> None:
    for p in paths:
        print(f"wrote {p}")
    print(f"{len(paths)} file{'s' * (len(paths) != 1)} in {seconds:.1f} s{extra}")


def _size_pair(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 384x256 (or one number), got '{text}'") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 16:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT with both sides >= 16, got '{text}'")
    return parts[0], parts[1]


# ----------------------------------------------------------------------------------------- commands

def cmd_filters(args: argparse.Namespace) -> int:
    from percept.images import save_image
    from percept.models.vgg import LAYERS, LossNetwork
    from percept.visualize.filters import _check_conv_layer, filter_pictures

    layers = [_check_conv_layer(lay) for lay in _layer_list(args.layer)]
    out = _out_dir(args.out)
    t0 = time.perf_counter()
    net = LossNetwork(max(layers, key=LAYERS.index))
    written = []
    for layer in layers:
        pics = filter_pictures(layer, max_filters=args.filters, slices=args.slices, tile=args.tile, net=net)
        for stem, img in pics.images.items():
            written.append(save_image(img, out / f"{stem}.png"))
    _wrote(written, time.perf_counter() - t0)
    return 0


def cmd_activations(args: argparse.Namespace) -> int:
    from percept.device import resolve_device
    from percept.images import save_image, to_tensor
    from percept.models.vgg import LAYERS, LossNetwork
    from percept.visualize.filters import activation_grids

    layers = _layer_list(args.layers)
    photo = _load_photo(args.image, args.size)
    out = _out_dir(args.out)
    t0 = time.perf_counter()
    dev = resolve_device(args.device)
    net = LossNetwork(max(layers, key=LAYERS.index)).to(dev)
    grids = activation_grids(to_tensor(photo), layers, max_channels=args.max_channels, order=args.order,
                             tile=args.tile, net=net)
    stem = Path(args.image).stem
    written = [save_image(g.image, out / f"{stem}_{g.layer}.png") for g in grids]
    _wrote(written, time.perf_counter() - t0)
    return 0


def _classifier_layers(args: argparse.Namespace):
    """``--classifier NAME``: that classifier's layers and logits as the objectives (else ``None``)."""
    if not getattr(args, "classifier", None):
        if getattr(args, "weights", None):
            raise PerceptError("--weights needs --classifier")
        return None
    from percept.device import resolve_device
    from percept.visualize.attribution import ClassifierLayers, open_classifier

    lc = open_classifier(args.classifier, args.weights)
    lc.model.to(resolve_device(args.device))
    return ClassifierLayers(lc)


def _classifier_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--classifier", metavar="NAME|FILE.pt",
                   help="take the objective from a classifier instead of VGG19: efficientnet_lite0 (ImageNet), a "
                        "torchvision name with --weights, or a percept classifier file")
    p.add_argument("--weights", metavar="FILE", help="local weights for --classifier NAME")


def _maximize_targets(args: argparse.Namespace, layers=None):
    from percept.visualize.common import ChannelTarget
    from percept.visualize.maximize import channel_range, parse_targets

    if args.targets and (args.layer or args.channels):
        raise PerceptError("give either --targets LAYER:CH,... or --layer LAYER --channels RANGE, not both")
    if layers is not None:
        if args.targets:
            return [layers.parse(t.strip(), need_channel=True) for t in args.targets.split(",") if t.strip()]
        if not args.layer:
            raise PerceptError("say what to maximise: --targets logits:ostrich,logits:goose or --layer _blocks.10 "
                               "--channels 0-15")
        layer = layers.parse(args.layer).layer
        chans = channel_range(args.channels or "0", layer, parse=layers.parse)
        return [ChannelTarget(layer, c) for c in chans]
    if args.targets:
        return parse_targets(args.targets)
    if not args.layer:
        raise PerceptError("say what to maximise: --targets relu4_1:0,relu4_1:1 or --layer relu4_1 --channels 0-15")
    from percept.models.vgg import check_layers

    check_layers([args.layer])
    chans = channel_range(args.channels or "0", args.layer)
    return [ChannelTarget(args.layer, c) for c in chans]


def cmd_maximize(args: argparse.Namespace) -> int:
    from percept.images import save_image
    from percept.visualize.common import montage
    from percept.visualize.maximize import maximize_activation

    layers = _classifier_layers(args)
    targets = _maximize_targets(args, layers)
    out = _out_dir(args.out)
    res = maximize_activation(targets, net=layers, size=args.size, octaves=args.octaves, octave_scale=args.octave_scale,
                              steps=args.steps, lr=args.lr, jitter=args.jitter, decay=args.decay,
                              blur_every=args.blur_every, blur_sigma=args.blur_sigma,
                              norm_clip_pct=args.norm_clip_pct, preactivation=not args.no_preactivation,
                              center=args.center, batch=args.batch, device=args.device, seed=args.seed,
                              progress=not args.quiet)
    written = [save_image(img, out / f"{_safe(str(t))}.png") for t, img in zip(res.targets, res.images)]
    if len(res.images) > 1:
        names = [layers.label(t) if layers is not None else str(t) for t in res.targets]
        sheet = montage(res.images, labels=names, pad=4)
        layers = sorted({t.layer for t in res.targets})
        written.append(save_image(sheet, out / f"maximize_{'_'.join(layers)}_montage.png"))
    detail = "; " + ", ".join(f"{t}: {a:.4g} (noise {n:.3g})" for t, a, n in
                               list(zip(res.targets, res.activations, res.noise_activations))[:4])
    if len(res.targets) > 4:
        detail += ", ..."
    _wrote(written, res.seconds, detail)
    return 0


def cmd_dream(args: argparse.Namespace) -> int:
    from percept.images import save_image, to_tensor
    from percept.visualize.common import parse_target

    layers = _classifier_layers(args)
    if layers is not None:
        target = layers.parse(args.target or "_blocks.10")
    else:
        target = parse_target(args.target or "relu4_2")
    if args.guide and target.channel is not None:
        raise PerceptError("--guide works with a layer target (e.g. relu4_2), not a channel")
    photo = _load_photo(args.image, args.size)
    guide = to_tensor(_load_photo(args.guide, args.guide_size)) if args.guide else None
    out = _out_dir(args.out)
    stem = Path(args.image).stem
    kwargs = dict(target=target, steps=args.steps, octaves=args.octaves, octave_scale=args.octave_scale,
                  step_size=args.step_size, jitter=args.jitter, grad_decay=args.grad_decay, grad_blur=args.grad_blur,
                  grad_clip=args.grad_clip, laplacian_norm=args.laplacian_norm,
                  laplacian_levels=args.laplacian_levels, guide=guide, device=args.device, seed=args.seed,
                  net=layers)
    if not args.zoom_frames:
        from percept.visualize.dream import deep_dream

        res = deep_dream(to_tensor(photo), progress=not args.quiet, **kwargs)
        guided = f"_guide_{Path(args.guide).stem}" if args.guide else ""
        path = save_image(res.image, out / f"{stem}_dream_{_safe(str(target))}{guided}.png")
        _wrote([path], res.seconds, f"; objective {res.objective_before:.4g} -> {res.objective_after:.4g} "
                                    f"({res.objective_after / max(res.objective_before, 1e-12):.1f}x)")
        return 0
    from percept.visualize.dream import dream_zoom, save_gif, save_mp4

    frames_dir = out / f"{stem}_zoom"
    written: list[Path] = []

    def keep(i, img):
        written.append(save_image(img, frames_dir / f"frame_{i:04d}.png"))

    res = dream_zoom(to_tensor(photo), args.zoom_frames, zoom_scale=args.zoom_scale, zoom_steps=args.zoom_steps,
                     zoom_octaves=args.zoom_octaves, progress=not args.quiet, frame_callback=keep, **kwargs)
    written.append(save_gif(res.frames, out / f"{stem}_zoom.gif", fps=args.fps))
    mp4 = save_mp4(res.frames, out / f"{stem}_zoom.mp4", fps=args.fps)
    extra = "" if mp4 else "; no MP4 (OpenCV could not write one here)"
    if mp4:
        written.append(mp4)
    _wrote(written, res.seconds, extra)
    return 0


def cmd_texture(args: argparse.Namespace) -> int:
    from percept.images import save_image
    from percept.visualize.common import montage
    from percept.visualize.texture import resolve_layers, synthesize_texture

    layers = resolve_layers(args.layers)
    src = _load_photo(args.image, args.size)
    out = _out_dir(args.out)
    res = synthesize_texture(src, size=None, iterations=args.iterations, optimizer=args.optimizer, layers=layers,
                             pooling=args.pooling, output_size=args.out_size, lr=args.lr, device=args.device,
                             seed=args.seed, progress=not args.quiet)
    stem = Path(args.image).stem
    written = [save_image(res.image, out / f"{stem}_texture.png")]
    h = res.image.height
    side = src.resize((max(1, round(src.width * h / src.height)), h))
    written.append(save_image(montage([side, res.image], labels=["source", "synthesised"], cols=2),
                              out / f"{stem}_texture_compare.png"))
    _wrote(written, res.seconds, f"; Gram loss {res.loss_initial:.4g} (noise) -> {res.loss_final:.4g}")
    return 0


# ----------------------------------------------------------------------------------------- parsers

def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``filters``, ``activations``, ``maximize``, ``dream`` and ``texture``."""
    f = sub.add_parser("filters", help="VGG19 conv filters as montages (conv1_1 in colour; deeper: strongest "
                                       "input slices and connection strengths)")
    f.add_argument("--layer", default="conv1_1", help="conv layer(s), comma-separated (default conv1_1)")
    f.add_argument("--filters", type=_positive_int, help="output filters to draw (default: 64 for conv1_1, 16 deeper)")
    f.add_argument("--slices", type=_positive_int, default=8,
                   help="deeper layers: strongest input-channel slices per filter (default 8)")
    f.add_argument("--tile", type=_positive_int, help="tile side in px (default 48)")
    common_options(f)
    f.set_defaults(func=cmd_filters)

    a = sub.add_parser("activations", help="feature maps of chosen layers for an image, as labelled grids")
    a.add_argument("image", help="the photo")
    a.add_argument("--layers", default="relu1_1,relu3_1,relu5_1", help="comma-separated (default relu1_1,relu3_1,relu5_1)")
    a.add_argument("--max-channels", type=_positive_int, default=16, help="channels per layer (default 16)")
    a.add_argument("--order", choices=["index", "top"], default="top",
                   help="top: the most active channels (default); index: the first ones")
    a.add_argument("--size", type=_side_int, default=224, help="photo's long side in px (default 224)")
    a.add_argument("--tile", type=_positive_int, default=96, help="tile width in px (default 96)")
    common_options(a)
    a.set_defaults(func=cmd_activations)

    m = sub.add_parser("maximize", help="activation maximisation: images that excite chosen channels "
                                        "(Yosinski et al. 2015)")
    m.add_argument("--targets", help="LAYER:CHANNEL list, e.g. relu4_1:0,relu4_1:7 (with --classifier: "
                                     "_blocks.10:5 or logits:ostrich,logits:goose)")
    _classifier_options(m)
    m.add_argument("--layer", help="one layer, with --channels")
    m.add_argument("--channels", help="channels of --layer: 0-15, 3,7,9 or 0-3,8 (default 0)")
    m.add_argument("--size", type=_side_int, default=128, help="image side in px (default 128)")
    m.add_argument("--steps", type=_positive_int, default=25, help="ascent steps per octave (default 25)")
    m.add_argument("--octaves", type=_positive_int, default=3, help="default 3")
    m.add_argument("--octave-scale", type=_positive_float, default=1.4, help="default 1.4")
    m.add_argument("--lr", type=_positive_float, default=0.025, help="pixel step of the normalised gradient (default 0.025)")
    m.add_argument("--jitter", type=_nonneg_int, default=8, help="largest random shift in px (default 8)")
    m.add_argument("--decay", type=_nonneg_float, default=0.01, help="L2 decay towards the mean colour per step (default 0.01)")
    m.add_argument("--blur-every", type=_nonneg_int, default=4, help="blur the image every N steps (default 4; 0: never)")
    m.add_argument("--blur-sigma", type=_nonneg_float, default=1.0, help="sigma of that blur in px (default 1)")
    m.add_argument("--norm-clip-pct", type=_nonneg_float, default=0.0,
                   help="reset the pixels with the smallest norm (this percentage) to the mean colour (default 0: off)")
    m.add_argument("--center", action="store_true", help="maximise the centre neuron, not the channel's mean")
    m.add_argument("--no-preactivation", action="store_true",
                   help="ascend reluX_Y itself, not its convX_Y pre-activation (stalls where the unit is off)")
    m.add_argument("--batch", type=_positive_int, default=16, help="images optimised together (default 16)")
    common_options(m)
    m.set_defaults(func=cmd_maximize)

    d = sub.add_parser("dream", help="DeepDream (Mordvintsev et al. 2015), optionally guided or as an infinite zoom")
    d.add_argument("image", help="the photo to dream on")
    d.add_argument("--target", help="a layer (its L2 norm) or LAYER:CHANNEL (default relu4_2; with --classifier "
                                    "one of its modules, default _blocks.10, or a class: logits:flamingo)")
    _classifier_options(d)
    d.add_argument("--size", type=_side_int, default=256, help="long side in px (default 256)")
    d.add_argument("--steps", type=_positive_int, default=10, help="steps per octave (default 10)")
    d.add_argument("--octaves", type=_positive_int, default=4, help="default 4")
    d.add_argument("--octave-scale", type=_positive_float, default=1.4, help="default 1.4")
    d.add_argument("--step-size", type=_positive_float, default=0.003,
                   help="pixel step of the normalised gradient (default 0.003; stronger dreams: 0.006)")
    d.add_argument("--jitter", type=_nonneg_int, default=32, help="largest random roll in px (default 32)")
    d.add_argument("--grad-decay", type=_nonneg_float, nargs="?", const=0.02, default=0.0, metavar="D",
                   help="L2 decay: the dream detail shrinks by D per step (bare switch: 0.02)")
    d.add_argument("--grad-blur", type=_nonneg_float, default=0.0, metavar="SIGMA",
                   help="blur the gradient with this Gaussian sigma in px")
    d.add_argument("--grad-clip", type=_nonneg_float, nargs="?", const=3.0, default=0.0, metavar="K",
                   help="clip the normalised gradient (mean magnitude 1) at +-K (bare switch: 3)")
    d.add_argument("--laplacian-norm", action="store_true",
                   help="Laplacian-pyramid gradient normalisation (smoother, larger-scale dreams)")
    d.add_argument("--laplacian-levels", type=_positive_int, default=4, help="pyramid levels (default 4)")
    d.add_argument("--guide", help="an image whose features the dream takes on (Google notebook's guided dream)")
    d.add_argument("--guide-size", type=_positive_int, default=224, help="guide's long side in px (default 224)")
    d.add_argument("--zoom-frames", type=_positive_int, help="infinite zoom: write N frames, a GIF and an MP4")
    d.add_argument("--zoom-scale", type=_positive_float, default=1.05, help="zoom per frame (default 1.05)")
    d.add_argument("--zoom-steps", type=_positive_int, help="steps per octave of later frames (default: half of --steps)")
    d.add_argument("--zoom-octaves", type=_positive_int, help="octaves of later frames (default 2)")
    d.add_argument("--fps", type=_positive_float, default=10.0, help="GIF/MP4 frame rate (default 10)")
    common_options(d)
    d.set_defaults(func=cmd_dream)

    t = sub.add_parser("texture", help="texture synthesis from Gram matrices (Gatys, Ecker & Bethge 2015)")
    t.add_argument("image", help="the source texture")
    t.add_argument("--size", type=_side_int, default=256, help="source's long side in px (default 256)")
    t.add_argument("--out-size", type=_size_pair, help="WIDTHxHEIGHT of the result (default: the source's)")
    t.add_argument("--iterations", type=_positive_int, default=100, help="L-BFGS-B iterations (default 100)")
    t.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    t.add_argument("--lr", type=_positive_float, default=0.05, help="Adam's rate (default 0.05)")
    t.add_argument("--layers", default="style",
                   help="style (relu1_1..relu5_1, default), paper (conv1_1,pool1..pool4) or a comma list")
    t.add_argument("--pooling", choices=["max", "avg"], default="max",
                   help="VGG pooling; the paper used avg (default max)")
    common_options(t)
    t.set_defaults(func=cmd_texture)
