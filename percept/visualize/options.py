"""The settings of the visualisation tools (``percept viz ...``), of Gatys et al.'s style transfer
(``percept optimize-style``) and of feature inversion (``percept invert``), declared once: one dataclass per
operation, each field's default, help text and argparse settings together (:func:`percept.argtypes.option`).

The command line builds its options from these dataclasses (:func:`percept.argtypes.add_options`) and the
library functions read their keyword defaults from them (``maximize_activation(steps=MaximizeOptions.steps)``),
so the API and the command line agree. Nothing here imports numpy or torch, so ``percept --help`` stays fast.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from percept.argtypes import (
    nonneg_float,
    nonneg_int,
    option,
    output_folder,
    positive_float,
    positive_int,
    side_int,
)

__all__ = ["VizOptions", "FiltersOptions", "ActivationsOptions", "MaximizeOptions", "DreamOptions", "TextureOptions",
           "TargetOptions", "PredictOptions", "SaliencyOptions", "GradcamOptions", "OcclusionOptions",
           "ClassvizOptions", "FoolOptions", "EmbedOptions", "InvertGridOptions", "GalleryOptions", "GatysOptions",
           "InvertOptions", "DREAM_TARGET", "CLASSIFIER_DREAM_TARGET", "COMMON_OPTIONS"]

DREAM_TARGET = "relu4_2"
"""DeepDream's objective on the VGG19 loss network: the L2 norm of this layer."""
CLASSIFIER_DREAM_TARGET = "_blocks.10"
"""DeepDream's objective with ``--classifier``: this module of EfficientNet-Lite0."""
COMMON_OPTIONS = ("out", "device", "seed")
"""The fields of :class:`VizOptions`, listed after each command's own options."""


# ----------------------------------------------------------------------------------------- argument types

def size_pair(text: str) -> tuple[int, int]:
    """``384x256`` (or one number for a square) -> (width, height), both sides at least 16."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT like 384x256 (or one number), got '{text}'") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 16:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT with both sides >= 16, got '{text}'")
    return parts[0], parts[1]


def quantile(text: str) -> float:
    """A quantile strictly between 0 and 1."""
    value = positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def octave_ratio(text: str) -> float:
    """The size ratio between octaves: 1 or more."""
    value = positive_float(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _classifier_objective():
    return option(None, "take the objective from a classifier instead of VGG19: efficientnet_lite0 (ImageNet), a "
                        "torchvision name with --weights, or a percept classifier file", metavar="NAME|FILE.pt")


def _classifier_weights():
    return option(None, "local weights for --classifier NAME", metavar="FILE")


def _photo(help: str = "the photo"):
    return option(None, help, flags=("image",))


# ----------------------------------------------------------------------------------------- shared

@dataclass
class VizOptions:
    """What every ``percept viz`` command takes: the output folder, the device and the seed (``--quiet`` is the
    command line's)."""

    out: str | None = option(None, "output folder for the PNGs", flags=("-o", "--out"), required=True,
                             type=output_folder)
    device: str = option("auto", "auto, cpu or cuda")
    seed: int = option(0, "seeds the random start, noise and jitter", type=int)


# ----------------------------------------------------------------------------------------- features

@dataclass
class FiltersOptions(VizOptions):
    """``viz filters``: :func:`percept.visualize.filters.filter_pictures` for each layer."""

    layer: str = option("conv1_1", "conv layer(s), comma-separated")
    filters: int | None = option(None, "output filters to draw (default: 64 for conv1_1, 16 deeper)",
                                 type=positive_int)
    slices: int = option(8, "deeper layers: strongest input-channel slices per filter", type=positive_int)
    tile: int | None = option(None, "tile side in px (default 48)", type=positive_int)


@dataclass
class ActivationsOptions(VizOptions):
    """``viz activations``: :func:`percept.visualize.filters.activation_grids` of a photo."""

    image: str | None = _photo()
    layers: str = option("relu1_1,relu3_1,relu5_1", "comma-separated")
    max_channels: int = option(16, "channels per layer", type=positive_int)
    order: str = option("top", "top: the most active channels; index: the first ones", choices=["index", "top"])
    size: int = option(224, "photo's long side in px", type=side_int)
    tile: int = option(96, "tile width in px", type=positive_int)


@dataclass
class MaximizeOptions(VizOptions):
    """``viz maximize``: :func:`percept.visualize.maximize.maximize_activation` (Yosinski et al. 2015)."""

    targets: str | None = option(None, "LAYER:CHANNEL list, e.g. relu4_1:0,relu4_1:7 (with --classifier: _blocks.10:5 "
                                       "or logits:ostrich,logits:goose)")
    classifier: str | None = _classifier_objective()
    weights: str | None = _classifier_weights()
    layer: str | None = option(None, "one layer, with --channels")
    channels: str | None = option(None, "channels of --layer: 0-15, 3,7,9 or 0-3,8 (default 0)")
    size: int = option(128, "image side in px", type=side_int)
    steps: int = option(25, "ascent steps per octave", type=positive_int)
    octaves: int = option(3, "scales, coarse to fine", type=positive_int)
    octave_scale: float = option(1.4, "size ratio between octaves", type=positive_float)
    lr: float = option(0.025, "pixel step of the normalised gradient", type=positive_float)
    jitter: int = option(8, "largest random shift in px", type=nonneg_int)
    decay: float = option(0.01, "L2 decay towards the mean colour per step", type=nonneg_float)
    blur_every: int = option(4, "blur the image every N steps, 0: never", type=nonneg_int)
    blur_sigma: float = option(1.0, "sigma of that blur in px", type=nonneg_float)
    norm_clip_pct: float = option(0.0, "reset the pixels with the smallest norm (this percentage) to the mean colour, "
                                       "0: off", type=nonneg_float)
    center: bool = option(False, "maximise the centre neuron, not the channel's mean")
    no_preactivation: bool = option(False, "ascend reluX_Y itself, not its convX_Y pre-activation (stalls where the "
                                           "unit is off)")
    batch: int = option(16, "images optimised together", type=positive_int)


@dataclass
class DreamOptions(VizOptions):
    """``viz dream``: :func:`percept.visualize.dream.deep_dream` and :func:`~percept.visualize.dream.dream_zoom`
    (Mordvintsev et al. 2015)."""

    image: str | None = _photo("the photo to dream on")
    target: str | None = option(None, f"a layer (its L2 norm) or LAYER:CHANNEL (default {DREAM_TARGET}; with "
                                      f"--classifier one of its modules, default {CLASSIFIER_DREAM_TARGET}, or a class: "
                                      "logits:flamingo)")
    classifier: str | None = _classifier_objective()
    weights: str | None = _classifier_weights()
    size: int = option(256, "long side in px", type=side_int)
    steps: int = option(10, "steps per octave", type=positive_int)
    octaves: int = option(4, "scales, coarse to fine", type=positive_int)
    octave_scale: float = option(1.4, "size ratio between octaves", type=positive_float)
    step_size: float = option(0.003, "pixel step of the normalised gradient; stronger dreams: 0.006",
                              type=positive_float)
    jitter: int = option(32, "largest random roll in px", type=nonneg_int)
    grad_decay: float = option(0.0, "L2 decay: the dream detail shrinks by D per step; a bare --grad-decay: 0.02",
                               type=nonneg_float, nargs="?", const=0.02, metavar="D")
    grad_blur: float = option(0.0, "blur the gradient with this Gaussian sigma in px", type=nonneg_float,
                              metavar="SIGMA")
    grad_clip: float = option(0.0, "clip the normalised gradient (mean magnitude 1) at +-K; a bare --grad-clip: 3",
                              type=nonneg_float, nargs="?", const=3.0, metavar="K")
    laplacian_norm: bool = option(False, "Laplacian-pyramid gradient normalisation (smoother, larger-scale dreams)")
    laplacian_levels: int = option(4, "pyramid levels", type=positive_int)
    guide: str | None = option(None, "an image whose features the dream takes on (Google notebook's guided dream)")
    guide_size: int = option(224, "guide's long side in px", type=positive_int)
    zoom_frames: int | None = option(None, "infinite zoom: write N frames, a GIF and an MP4", type=positive_int)
    zoom_scale: float = option(1.05, "zoom per frame", type=positive_float)
    zoom_steps: int | None = option(None, "steps per octave of later frames (default: half of --steps)",
                                    type=positive_int)
    zoom_octaves: int | None = option(None, "octaves of later frames (default 2)", type=positive_int)
    fps: float = option(10.0, "GIF/MP4 frame rate", type=positive_float)


@dataclass
class TextureOptions(VizOptions):
    """``viz texture``: :func:`percept.visualize.texture.synthesize_texture` (Gatys, Ecker & Bethge 2015)."""

    image: str | None = _photo("the source texture")
    size: int = option(256, "source's long side in px", type=side_int)
    out_size: tuple[int, int] | None = option(None, "WIDTHxHEIGHT of the result (default: the source's)",
                                              type=size_pair)
    iterations: int = option(100, "L-BFGS-B iterations", type=positive_int)
    optimizer: str = option("lbfgs", "lbfgs (L-BFGS-B) or adam", choices=["lbfgs", "adam"])
    lr: float = option(0.05, "Adam's rate", type=positive_float)
    layers: str = option("style", "style (relu1_1..relu5_1), paper (conv1_1,pool1..pool4) or a comma list")
    pooling: str = option("max", "VGG pooling; the paper used avg", choices=["max", "avg"])


# ----------------------------------------------------------------------------------------- attribution

@dataclass
class TargetOptions(VizOptions):
    """What an attribution command explains (:mod:`percept.visualize.attribution`): a class of a classifier
    (``classifier``, ``weights``, ``labels``, ``klass``) or a channel of the VGG19 loss network (``target``), for the
    photo ``image`` at ``size``. ``classifier`` and ``target`` exclude each other."""

    image: str | None = _photo()
    classifier: str | None = option(None, "efficientnet_lite0 (the default: EfficientNet-Lite0 on ImageNet-1k), a "
                                          "torchvision classifier name (with --weights) or a percept classifier file",
                                    metavar="NAME|FILE.pt")
    target: str | None = option(None, "a VGG19 loss-network channel instead of a class, e.g. relu4_1:12",
                                metavar="LAYER:CHANNEL")
    weights: str | None = _classifier_weights()
    labels: str | None = option(None, "class names, one per line ('imagenet': the 1000 ImageNet names)",
                                metavar="FILE")
    klass: str | None = option(None, 'class index or name, e.g. 281 or "tabby cat" (default: the top class)',
                               flags=("--class",), metavar="C")
    size: int | None = option(None, "long side in px (default: the classifier file's input size, else 224)",
                              type=side_int)


@dataclass
class PredictOptions(TargetOptions):
    """``viz predict``: :func:`percept.visualize.attribution.predict`."""

    klass: str | None = None
    k: int = option(5, "how many", flags=("-k",), type=positive_int)


@dataclass
class SaliencyOptions(TargetOptions):
    """``viz saliency``: :func:`percept.visualize.attribution.saliency` and
    :func:`~percept.visualize.attribution.segment_salient` (Simonyan et al. 2014)."""

    segment: bool = option(False, "also cut the object out with GrabCut seeded by saliency")
    fg_quantile: float = option(0.95, "saliency above this quantile seeds probable foreground", type=quantile)
    bg_quantile: float = option(0.3, "saliency below this quantile is background", type=quantile)


@dataclass
class GradcamOptions(TargetOptions):
    """``viz gradcam``: :func:`percept.visualize.attribution.grad_cam` (Selvaraju et al. 2017)."""

    layer: str | None = option(None, "where to take the feature maps: a loss-network layer for --target (default: the "
                                     "block before the target's, e.g. relu3_4 for relu4_1), a module name for a "
                                     "classifier (default: its last feature map, e.g. layer4 of a ResNet)")


@dataclass
class OcclusionOptions(TargetOptions):
    """``viz occlusion``: :func:`percept.visualize.attribution.occlusion` (Zeiler & Fergus 2014)."""

    patch: int | None = option(None, "patch side in px (default: 1/7 of the short side)", type=positive_int)
    stride: int | None = option(None, "step in px (default: half the patch)", type=positive_int)
    baseline: float = option(0.5, "patch grey level in [0, 1]", type=nonneg_float)
    logit: bool = option(False, "a classifier's class score (logit) instead of its probability, which saturates "
                                "near 1")


@dataclass
class ClassvizOptions(TargetOptions):
    """``viz classviz``: :func:`percept.visualize.classviz.class_model` for each class (Simonyan et al. 2014,
    Yosinski et al. 2015 regularisers); no photo."""

    image: str | None = None
    klass: list[str] = option([], "class index or name, e.g. 9 or ostrich (repeat for several; default: class 0)",
                              flags=("--class",), metavar="C", action="append")
    size: int | None = option(None, "side of the square image (default: the classifier file's input size, else 224; "
                                    "128 for --target)", type=side_int)
    steps: int = option(240, "gradient steps over all octaves", type=positive_int)
    octaves: int = option(3, "scales, coarse to fine, each --octave-scale times the last", type=positive_int)
    octave_scale: float = option(1.4, "size ratio between octaves", type=octave_ratio)
    lr: float = option(0.05, "step size of the normalised gradient", type=positive_float)
    decay: float = option(0.01, "L2 decay per step", type=nonneg_float)
    blur_every: int = option(2, "Gaussian blur every N steps, 0: never", type=nonneg_int)
    blur_sigma: float | None = option(None, "blur width in px (default max(0.5, size/224))", type=nonneg_float)
    clip_percentile: float = option(10.0, "set pixels whose norm is below this percentile to grey", type=nonneg_float)
    jitter: int | None = option(None, "random shift in px per step (default size/56)", type=nonneg_int)
    init: str = option("noise", "start image", choices=["noise", "zero"])


@dataclass
class FoolOptions(TargetOptions):
    """``viz fool``: :func:`percept.visualize.classviz.fooling_image`."""

    klass: str | None = None
    to: str | None = option(None, "the class to reach (index or label); with --target, the channel comes from "
                                  "LAYER:CHANNEL", metavar="C")
    step: float = option(1.0, "per-step change in 8-bit levels", type=positive_float)
    max_steps: int = option(200, "steps before giving up", type=positive_int)
    gain: float = option(10.0, "magnification of the difference image", type=positive_float)


# ----------------------------------------------------------------------------------------- embeddings

@dataclass
class EmbedOptions(VizOptions):
    """``viz embed``: :func:`percept.visualize.embed.embed_images` of a folder."""

    folder: str | None = option(None, "folder of images (searched recursively)", flags=("folder",))
    layer: str = option("relu5_1", "layer whose pooled activations are the CNN codes; LAYER:CHANNEL also picks the "
                                   "patch channel")
    channel: int | None = option(None, "channel whose maximally activating patches are shown (default: the most "
                                       "variable one)", type=nonneg_int)
    k: int = option(5, "neighbours per query and space", flags=("-k",), type=positive_int)
    queries: int = option(6, "query rows in the neighbour grid", type=positive_int)
    size: int = option(224, "images are centre-cropped to SIZE x SIZE", type=side_int)
    perplexity: float = option(30.0, "t-SNE perplexity, clamped to (images - 1) / 3", type=positive_float)
    canvas: int = option(1600, "side of the t-SNE picture", type=positive_int)
    thumb: int | None = option(None, "thumbnail side on the t-SNE map (default: from the count)", type=positive_int)
    top: int = option(16, "how many patches", type=positive_int)
    pool: str = option("avg", "global pooling into codes", choices=["avg", "max"])


@dataclass
class InvertGridOptions(VizOptions):
    """``viz invert-grid``: :func:`percept.visualize.embed.invert_grid`."""

    image: str | None = _photo()
    layers: str = option("relu2_1,relu3_1,relu4_1,relu5_1", "comma-separated VGG19 layers")
    method: str = option("auto", "auto: the shipped decoder where there is one, else optimisation; decoder; optimize: "
                                 "Mahendran-Vedaldi for every layer (minutes per layer)",
                         choices=["auto", "decoder", "optimize"])
    size: int = option(256, "photo's long side in pixels", type=side_int)
    iterations: int | None = option(None, "optimisation: steps of the first stage (default 300)", type=positive_int)


@dataclass
class GalleryOptions(VizOptions):
    """``viz gallery``: :func:`percept.visualize.gallery.build_gallery`."""

    image: str | None = _photo()
    fast: bool = option(False, "tiny sizes and few steps (seconds, not minutes)")
    folder: str | None = option(None, "other images for the embedding section (default: the photo's folder, else "
                                      "scikit-image's sample photos)")
    size: int | None = option(None, "working size of the photo (default 224; 64 with --fast)", type=side_int)
    classifier: str | None = option(
        "efficientnet_lite0", "the classifier of the class-based sections, whose attributions explain its top class: "
                              "efficientnet_lite0 (ImageNet), a torchvision name (vgg16, resnet18, ...) with --weights, "
                              "a percept classifier file (.pt), or none (the sections then explain VGG19 channels or "
                              "are left out)", metavar="MODEL")
    weights: str | None = option(None, "the classifier's local weight file (state dict)", metavar="FILE")
    only: str | None = option(None, "comma-separated sections to render (default all): filters, activations, "
                                    "maximize, dream, saliency, guided-backprop, deconvnet, gradcam, occlusion, "
                                    "classviz, fool, embed, texture, invert", metavar="SECTIONS")


# ----------------------------------------------------------------------------------------- slow baselines

@dataclass
class GatysOptions:
    """``percept optimize-style``: :func:`percept.visualize.gatys.optimize_style` (Gatys et al. 2015)."""

    content: str | None = option(None, "the photo", required=True)
    style: list[str] | None = option(None, "style image (repeat to blend several)", required=True, action="append")
    style_blend: str | None = option(None, "weights for several --style, e.g. 0.7,0.3")
    output: str | None = option(None, "the picture (.png, .jpg, ...)", flags=("-o", "--output"), required=True)
    iterations: int = option(200, "optimisation steps", type=positive_int)
    optimizer: str = option("lbfgs", "lbfgs (L-BFGS) or adam", choices=["lbfgs", "adam"])
    init: str = option("content", "start from the photo or from noise", choices=["content", "noise"])
    size: int = option(512, "long side in px", type=side_int)
    content_weight: float = option(1.0, "weight of the content loss", type=nonneg_float)
    style_weight: float = option(10.0, "weight of the style loss", type=nonneg_float)
    tv_weight: float = option(10.0, "weight of the total-variation loss", type=nonneg_float)
    preserve_color: bool = option(False, "keep the photo's colours (luminance transfer)")
    snapshot_every: int = option(0, "save OUT_snapshots/step_N.png every N steps, 0: none", type=nonneg_int)
    device: str = option("auto", "auto, cpu or cuda")
    seed: int = option(0, "seeds a noise start", type=int)


@dataclass
class InvertOptions:
    """``percept invert``: one VGG19 layer's features back to a picture, with a trained decoder
    (:class:`percept.inference.invert.Inverter`) or by optimisation
    (:func:`percept.visualize.inversion.invert_optimize`)."""

    image: str | None = _photo()
    layer: str | None = option(None, "VGG19 layer, e.g. relu3_1", required=True)
    method: str = option("decoder", "decoder: one pass of a trained decoder; optimize: Mahendran-Vedaldi optimisation",
                         choices=["decoder", "optimize"])
    output: str | None = option(None, "the reconstruction (.png, .jpg, ...)", flags=("-o", "--output"), required=True)
    model: str | None = option(None, "decoder .pt (default: the shipped decoder_LAYER)")
    size: int = option(256, "photo's long side in pixels", type=side_int)
    iterations: int | None = option(None, "optimize: steps of the first stage (default 300)", type=positive_int)
    device: str = option("auto", "auto, cpu or cuda")
    seed: int = option(0, "optimize: seeds the initial noise and the jitter", type=int)
