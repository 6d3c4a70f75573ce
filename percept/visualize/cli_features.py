"""``percept viz filters | activations | maximize | dream | texture``: what the loss network has learned.

Argparse only (the options are built from the dataclasses of :mod:`percept.visualize.options`); each command
imports its torch module when it runs. Every command writes PNGs into ``-o/--out`` (a folder, created if
needed) and prints what it wrote.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from percept.argtypes import config_from_args
from percept.errors import PerceptError
from percept.visualize.commands import add_viz_options
from percept.visualize.options import (
    CLASSIFIER_DREAM_TARGET,
    DREAM_TARGET,
    ActivationsOptions,
    DreamOptions,
    FiltersOptions,
    MaximizeOptions,
    TextureOptions,
)

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


# ----------------------------------------------------------------------------------------- commands

def cmd_filters(args: argparse.Namespace) -> int:
    from percept.images import save_image
    from percept.models.vgg import LAYERS, LossNetwork
    from percept.visualize.filters import _check_conv_layer, filter_pictures

    o = config_from_args(FiltersOptions, args)
    layers = [_check_conv_layer(lay) for lay in _layer_list(o.layer)]
    out = _out_dir(o.out)
    t0 = time.perf_counter()
    net = LossNetwork(max(layers, key=LAYERS.index))
    written = []
    for layer in layers:
        pics = filter_pictures(layer, max_filters=o.filters, slices=o.slices, tile=o.tile, net=net)
        for stem, img in pics.images.items():
            written.append(save_image(img, out / f"{stem}.png"))
    _wrote(written, time.perf_counter() - t0)
    return 0


def cmd_activations(args: argparse.Namespace) -> int:
    from percept.device import resolve_device
    from percept.images import save_image, to_tensor
    from percept.models.vgg import LAYERS, LossNetwork
    from percept.visualize.filters import activation_grids

    o = config_from_args(ActivationsOptions, args)
    layers = _layer_list(o.layers)
    photo = _load_photo(o.image, o.size)
    out = _out_dir(o.out)
    t0 = time.perf_counter()
    dev = resolve_device(o.device)
    net = LossNetwork(max(layers, key=LAYERS.index)).to(dev)
    grids = activation_grids(to_tensor(photo), layers, max_channels=o.max_channels, order=o.order,
                             tile=o.tile, net=net)
    stem = Path(o.image).stem
    written = [save_image(g.image, out / f"{stem}_{g.layer}.png") for g in grids]
    _wrote(written, time.perf_counter() - t0)
    return 0


def _classifier_layers(o: MaximizeOptions | DreamOptions):
    """``--classifier NAME``: that classifier's layers and logits as the objectives (else ``None``)."""
    if not o.classifier:
        if o.weights:
            raise PerceptError("--weights needs --classifier")
        return None
    from percept.device import resolve_device
    from percept.visualize.attribution import ClassifierLayers, open_classifier

    lc = open_classifier(o.classifier, o.weights)
    lc.model.to(resolve_device(o.device))
    return ClassifierLayers(lc)


def _maximize_targets(o: MaximizeOptions, layers=None):
    from percept.visualize.common import ChannelTarget
    from percept.visualize.maximize import channel_range, parse_targets

    if o.targets and (o.layer or o.channels):
        raise PerceptError("give either --targets LAYER:CH,... or --layer LAYER --channels RANGE, not both")
    if layers is not None:
        if o.targets:
            return [layers.parse(t.strip(), need_channel=True) for t in o.targets.split(",") if t.strip()]
        if not o.layer:
            raise PerceptError("say what to maximise: --targets logits:ostrich,logits:goose or --layer _blocks.10 "
                               "--channels 0-15")
        layer = layers.parse(o.layer).layer
        chans = channel_range(o.channels or "0", layer, parse=layers.parse)
        return [ChannelTarget(layer, c) for c in chans]
    if o.targets:
        return parse_targets(o.targets)
    if not o.layer:
        raise PerceptError("say what to maximise: --targets relu4_1:0,relu4_1:1 or --layer relu4_1 --channels 0-15")
    from percept.models.vgg import check_layers

    check_layers([o.layer])
    chans = channel_range(o.channels or "0", o.layer)
    return [ChannelTarget(o.layer, c) for c in chans]


def cmd_maximize(args: argparse.Namespace) -> int:
    from percept.images import save_image
    from percept.visualize.common import montage
    from percept.visualize.maximize import maximize_activation

    o = config_from_args(MaximizeOptions, args)
    layers = _classifier_layers(o)
    targets = _maximize_targets(o, layers)
    out = _out_dir(o.out)
    res = maximize_activation(targets, net=layers, size=o.size, octaves=o.octaves, octave_scale=o.octave_scale,
                              steps=o.steps, lr=o.lr, jitter=o.jitter, decay=o.decay,
                              blur_every=o.blur_every, blur_sigma=o.blur_sigma,
                              norm_clip_pct=o.norm_clip_pct, preactivation=not o.no_preactivation,
                              center=o.center, batch=o.batch, device=o.device, seed=o.seed,
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

    o = config_from_args(DreamOptions, args)
    layers = _classifier_layers(o)
    if layers is not None:
        target = layers.parse(o.target or CLASSIFIER_DREAM_TARGET)
    else:
        target = parse_target(o.target or DREAM_TARGET)
    if o.guide and target.channel is not None:
        raise PerceptError("--guide works with a layer target (e.g. relu4_2), not a channel")
    photo = _load_photo(o.image, o.size)
    guide = to_tensor(_load_photo(o.guide, o.guide_size)) if o.guide else None
    out = _out_dir(o.out)
    stem = Path(o.image).stem
    kwargs = dict(target=target, steps=o.steps, octaves=o.octaves, octave_scale=o.octave_scale,
                  step_size=o.step_size, jitter=o.jitter, grad_decay=o.grad_decay, grad_blur=o.grad_blur,
                  grad_clip=o.grad_clip, laplacian_norm=o.laplacian_norm,
                  laplacian_levels=o.laplacian_levels, guide=guide, device=o.device, seed=o.seed,
                  net=layers)
    if not o.zoom_frames:
        from percept.visualize.dream import deep_dream

        res = deep_dream(to_tensor(photo), progress=not args.quiet, **kwargs)
        guided = f"_guide_{Path(o.guide).stem}" if o.guide else ""
        path = save_image(res.image, out / f"{stem}_dream_{_safe(str(target))}{guided}.png")
        _wrote([path], res.seconds, f"; objective {res.objective_before:.4g} -> {res.objective_after:.4g} "
                                    f"({res.objective_after / max(res.objective_before, 1e-12):.1f}x)")
        return 0
    from percept.visualize.dream import dream_zoom, save_gif, save_mp4

    frames_dir = out / f"{stem}_zoom"
    written: list[Path] = []

    def keep(i, img):
        written.append(save_image(img, frames_dir / f"frame_{i:04d}.png"))

    res = dream_zoom(to_tensor(photo), o.zoom_frames, zoom_scale=o.zoom_scale, zoom_steps=o.zoom_steps,
                     zoom_octaves=o.zoom_octaves, progress=not args.quiet, frame_callback=keep, **kwargs)
    written.append(save_gif(res.frames, out / f"{stem}_zoom.gif", fps=o.fps))
    mp4 = save_mp4(res.frames, out / f"{stem}_zoom.mp4", fps=o.fps)
    extra = "" if mp4 else "; no MP4 (OpenCV could not write one here)"
    if mp4:
        written.append(mp4)
    _wrote(written, res.seconds, extra)
    return 0


def cmd_texture(args: argparse.Namespace) -> int:
    from percept.images import save_image
    from percept.visualize.common import montage
    from percept.visualize.texture import resolve_layers, synthesize_texture

    o = config_from_args(TextureOptions, args)
    layers = resolve_layers(o.layers)
    src = _load_photo(o.image, o.size)
    out = _out_dir(o.out)
    res = synthesize_texture(src, size=None, iterations=o.iterations, optimizer=o.optimizer, layers=layers,
                             pooling=o.pooling, output_size=o.out_size, lr=o.lr, device=o.device,
                             seed=o.seed, progress=not args.quiet)
    stem = Path(o.image).stem
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
    add_viz_options(f, FiltersOptions)
    f.set_defaults(func=cmd_filters)

    a = sub.add_parser("activations", help="feature maps of chosen layers for an image, as labelled grids")
    add_viz_options(a, ActivationsOptions)
    a.set_defaults(func=cmd_activations)

    m = sub.add_parser("maximize", help="activation maximisation: images that excite chosen channels "
                                        "(Yosinski et al. 2015)")
    add_viz_options(m, MaximizeOptions)
    m.set_defaults(func=cmd_maximize)

    d = sub.add_parser("dream", help="DeepDream (Mordvintsev et al. 2015), optionally guided or as an infinite zoom")
    add_viz_options(d, DreamOptions)
    d.set_defaults(func=cmd_dream)

    t = sub.add_parser("texture", help="texture synthesis from Gram matrices (Gatys, Ecker & Bethge 2015)")
    add_viz_options(t, TextureOptions)
    t.set_defaults(func=cmd_texture)
