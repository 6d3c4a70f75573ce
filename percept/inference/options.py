"""The options of stylisation, declared once: what stylises and where it runs (:class:`StylizerOptions`, the
arguments of :func:`percept.inference.stylizer.open_stylizer`), how one picture is made (:class:`StylizeOptions`),
and a video's extras (:class:`VideoOptions`). The command line builds its options from these dataclasses
(:func:`percept.argtypes.add_options`), so a default and its help text are written once; nothing here imports
numpy or torch, so ``percept --help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Sequence

from percept.argtypes import (
    FLOW_PRESETS,
    LIVE_FLOW,
    VIDEO_FLOW,
    option,
    positive_int,
    side_int,
    temporal_alpha,
    unit_float,
)
from percept.errors import PerceptError
from percept.images import DOWNSCALE_RULE, UPSCALE_RULE

__all__ = ["BACKENDS", "DEVICES", "METHODS", "PRECISIONS", "StylizeOptions", "StylizerOptions", "VideoOptions", "LiveOptions",
           "blend_weights", "float_list", "name_list"]

BACKENDS = ("auto", "onnx", "torch", "openvino")
METHODS = ("wct", "adain", "linear")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = "auto, cpu, cuda or tensorrt (onnx backend on a GPU)"


def float_list(text: str) -> list[float]:
    """``0.6,0.4`` -> [0.6, 0.4] (the ``--style-blend`` weights; their count and sum are checked by the stylizer)."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"give comma-separated numbers, e.g. 0.6,0.4, got '{text}'") from None


def blend_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """The weights of ``n`` blended paintings, normalised to sum 1 (default: equal): one per painting, each 0 or more,
    not all 0."""
    if weights is None:
        return [1.0 / n] * n
    w = [float(v) for v in weights]
    if len(w) != n:
        raise PerceptError(f"`style_blend` has {len(w)} weight(s) for {n} style image(s); give one per `style`")
    if any(v < 0 or not math.isfinite(v) for v in w) or sum(w) <= 0:
        raise PerceptError(f"`style_blend` weights must be 0 or more and not all 0, got {','.join(map(str, w))}")
    return [v / sum(w) for v in w]


def name_list(text: str) -> list[str]:
    """``relu4_1,relu3_1`` -> ['relu4_1', 'relu3_1'] (the ``--levels``; each checked by the stylizer)."""
    return [t.strip() for t in text.split(",") if t.strip()]


@dataclass
class StylizerOptions:
    """What stylises and where it runs: a trained network (``model``) or any painting (``style``, with ``method``).

    ``open_stylizer(**asdict(options))`` opens it; every check of these values is the stylizer's
    (:mod:`percept.inference.stylizer`), so the API and the command line refuse the same things in the same words.
    """

    model: str | None = option(None, "a model name (see `percept models`), or a .pt or .onnx path")
    style: list[str] | None = option(
        None, "any painting instead of --model: universal style transfer with the shipped decoders, no training "
              "(repeat to blend several)", action="append", metavar="PAINTING")
    method: str | None = option(
        None, "--style: adain (default; Huang & Belongie 2017, with its own trained decoder), wct (Li et al. 2017; more "
              "painterly, three times slower) or linear (Li et al. 2019; one feed-forward pass, runs on every backend)",
        choices=METHODS)
    style_blend: list[float] | None = option(None, "--style: weights of several paintings, e.g. 0.6,0.4",
                                             type=float_list, metavar="WEIGHTS")
    decoder: list[str] | None = option(
        None, "--style with wct/adain: use this decoder (name or .pt) for its layer instead of the shipped one, e.g. "
              "one from `train-decoder --loss adain` (repeat for several layers)", action="append", metavar="MODEL")
    levels: list[str] | None = option(
        None, "--style with wct/adain: the layers to transform, coarse to fine (default wct relu4_1,relu3_1,relu2_1; "
              "adain relu4_1); each needs a decoder, e.g. relu4_1,relu3_1,relu2_1,relu1_1 for all of Li et al.'s finer "
              "levels", type=name_list)
    color_match: float | None = option(
        None, "--style: move the picture's colour mean and covariance this far (0..1) towards the painting's (default: "
              "adain 0.5, wct and linear 0)", type=unit_float, metavar="AMOUNT")
    backend: str = option("auto", "onnx (onnxruntime), torch or openvino", choices=BACKENDS)
    device: str = option("auto", DEVICES)
    precision: str = option(
        "auto", "--backend openvino: fp32, bf16 (CPUs with AVX512-BF16 or AMX) or auto (bf16 where its quality check "
                "against fp32 passes, else fp32); --style: the PyTorch encoder and decoders, auto = bf16 on CPUs with "
                "AVX512-BF16 or AMX", choices=PRECISIONS)
    threads: int | None = None
    """CPU threads (default: every core); the API's, not an option."""


@dataclass
class StylizeOptions:
    """How one picture (or frame) is made: its working size, the style's strength and the photo's colours."""

    size: int | None = option(None, f"resize first: {UPSCALE_RULE}", type=side_int)
    strength: float = option(1.0, "0 = photo, 1 = full style", type=unit_float)
    preserve_color: bool = option(False, "keep the photo's colours (luminance transfer)")


@dataclass
class VideoOptions(StylizeOptions):
    """A video file's conversion: :class:`StylizeOptions` (``size`` only shrinks) plus batching and flow guidance."""

    size: int | None = option(None, f"long side the network runs at (default: frame size): {DOWNSCALE_RULE}",
                              type=side_int)
    batch: int = option(4, "frames per network call", type=positive_int)
    temporal: bool = option(False, "flow-guided: blend each frame with the previous output warped along the optical "
                                   "flow (less flicker; occlusions, fast changes and scene cuts take the new frame)")
    temporal_alpha: float = option(0.8, "--temporal: weight of the warped history, 0..0.99", type=temporal_alpha)
    flow: str = option(VIDEO_FLOW, f"--temporal: the DIS optical flow preset (ultrafast is about 10x faster than "
                                   f"{VIDEO_FLOW} and flickers more)", choices=FLOW_PRESETS)
    no_audio: bool = option(False, "drop the sound track (by default the source's audio streams are carried over)")


@dataclass
class LiveOptions(StylizeOptions):
    """The live view's start settings (keys change strength, colour, side by side and flow guidance while it runs)."""

    size: int | None = option(512, f"long side the network runs at: {DOWNSCALE_RULE}", type=side_int)
    side_by_side: bool = option(False, "start with the raw view beside the stylized one")
    headless: bool = option(False, "no window: write the view to -o OUT.mp4")
    output: str | None = option(None, "with --headless: the video file to write", flags=("-o", "--output"))
    frames: int | None = option(None, "stop after N shown frames", type=positive_int)
    snapshot_dir: str = option("snapshots", "where `s` saves snapshots")
    temporal: bool = option(False, "start flow-guided (less flicker; key t toggles it)")
    temporal_alpha: float = option(0.8, "weight of the warped history, 0..0.99", type=temporal_alpha)
    flow: str = option(LIVE_FLOW, f"the optical flow preset of --temporal (the fastest; {VIDEO_FLOW} flickers less and "
                                  "costs frames)", choices=FLOW_PRESETS)
