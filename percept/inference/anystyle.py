"""Any painting, at once: universal style transfer with the shipped VGG19 feature decoders (no training).

* **WCT** (Li et al. 2017, "Universal Style Transfer via Feature Transforms"): coarse to fine over
  ``relu4_1`` .. ``relu2_1`` (``relu5_1`` and ``relu1_1`` on request: :data:`WCT_LAYERS`), the photo's features
  whitened (their covariance made the identity) and coloured with the painting's covariance and mean, then
  decoded to an image whose features the next, finer level takes. Eigen-decompositions run in float64 with
  an eigenvalue floor; for large images the covariance is estimated on a regular subsample of the
  positions (at most :data:`COV_SAMPLES`), the transform applied to every position: memory and time grow
  with the image, not with its square.
* **AdaIN** (Huang & Belongie 2017; the default, :data:`DEFAULT_METHOD`): at ``relu4_1``, each channel's mean and standard deviation set to the
  painting's, then decoded by AdaIN's own decoder (:data:`ADAIN_DECODER`, trained with AdaIN's style loss).
* **linear** (Li et al. 2019, :mod:`percept.models.linear`): a learned transform at ``relu3_1`` (two small
  CNNs give the matrices WCT would get from eigen-decompositions), decoded by its own decoder; one
  feed-forward pass, the method that exports to ONNX and runs live (``percept webcam --style``).

``strength`` (0..1) blends the transformed features with the photo's at every level (Li et al.'s alpha);
``color_match`` (0..1; :data:`COLOR_MATCH`) then moves the decoded picture's RGB mean and covariance that far
towards the painting's (Pitie & Kokaram's linear colour transfer, :func:`percept.models.transforms.match_colors`);
``preserve_color`` keeps the photo's colours instead (luminance transfer); several paintings with ``weights``
blend their transforms (WCT: the coloured features; AdaIN: the statistics; the colour match: the paintings'
pooled colours).

>>> from percept.inference.anystyle import AnyStyle
>>> AnyStyle("adain")("photo.jpg", ["painting.jpg"], size=512).save("out.png")
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from percept.device import cpu_has_bf16, resolve_device
from percept.errors import PerceptError
from percept.images import (  # noqa: F401 - the painting checks are re-exported here, where they are used
    MIN_STYLE_SIDE,
    MIN_STYLE_STD,
    STYLE_SIDE,
    ImageLike,
    check_painting,
    check_strength,
    load_image,
    painting_label,
    preserve_color,
    resize_long_side,
    to_image,
    to_tensor,
)
from percept.inference.engine import Engine
from percept.inference.openvino_backend import openvino_installed
from percept.inference.options import blend_weights
from percept.models.decoder import decoder_name, load_decoder, shipped_decoder
from percept.models.linear import load_linear
from percept.models.specs import LINEAR_MODEL
from percept.models.transforms import adain, color_moments, color_stats, match_colors
from percept.models.vgg import VGG_LAYERS, LossNetwork
from percept.registry import find_model

__all__ = ["COLOR_MATCH", "METHODS", "AnyStyle", "AnyStyleResult", "Teacher", "check_painting", "stylize_any"]

METHODS = ("wct", "adain", "linear")
DEFAULT_METHOD = "adain"
"""The method ``stylize --style`` runs when none is named. AdaIN with its own decoder (:data:`ADAIN_DECODER`):
on the four shipped paintings it had lower style and content losses than three-level WCT and a higher
structure score, at about a third of the time (docs/BENCHMARKS.md; the five new paintings agreed). WCT was the
default while only reconstruction decoders existed."""
WCT_LAYERS = ("relu4_1", "relu3_1", "relu2_1")
"""The default levels, coarse to fine. Li et al.'s other two are available (``layers=``, ``stylize
--levels``) but not the default. ``relu5_1``: with percept's reconstruction-only decoders its transform
replaces the scene's layout by the painting's (seen on the four shipped paintings). ``relu1_1`` (the linear
decoder, 41 dB on its own): as a fourth level it raised the style loss of all four shipped paintings and
their content loss (held-out photos at 512 px; docs/BENCHMARKS.md), the picture barely changed (a little
more contrast and saturation)."""
COLOR_MATCH = {"adain": 0.5}
"""How far (0..1) each method moves the decoded picture's RGB mean and covariance towards the painting's when
``color_match`` is not given (absent: 0). AdaIN's decoder paints the painting's palette only in part (its
statistics live at ``relu4_1``). Chosen on the four shipped paintings (held-out photos at 512 px;
docs/BENCHMARKS.md, color_match): 0.5 had the lowest style loss of 0, 0.25, 0.5, 0.75 and 1 on composition_vii
and wave, tied 0.25 on starry_night and lost to 0.25 on the_scream (0.61x the peer's against 0.58x); against no
match it lowers the style loss of three of the four (0.56-0.67x the peer's -> 0.50-0.59x) for 7-21% more content
loss and up to 0.03 less SSIM. The full match (1) overshoots. WCT colours every level's features already and
linear has its own transform; neither was measured with it."""
PRECISIONS = ("auto", "fp32", "bf16")
"""``AnyStyle(precision=)``. bf16 (autocast, the photo's pass only) took adain at 512 px from 1.02 s to 0.62 s on a
Zen 4 with AVX512-BF16, its largest pixel difference from fp32 0.04 (docs/BENCHMARKS.md, anystyle_bf16)."""
ADAIN_LAYER = "relu4_1"
ADAIN_DECODER = decoder_name(ADAIN_LAYER, adain=True)
"""The decoder ``adain`` takes by default when it is installed: trained with AdaIN's loss (Huang & Belongie's
content + style terms, ``train-decoder --loss adain``) from the reconstruction decoder on a CPU, in four stages
(25 min at style weight 1, 32 min at 3, then twice 35 min at 3 with relu5_1 added to the style layers; the four
shipped paintings and the training photos as styles). Against the reconstruction decoder it more than halves
AdaIN's style loss on every painting (docs/BENCHMARKS.md, adain_decoder); the relu5_1 stages took it down to
0.75-0.92x the two-stage decoder's (adain_decoder_stage3). ``decoders={"relu4_1": "decoder_relu4_1"}``
(``stylize --decoder decoder_relu4_1``) takes the reconstruction one."""
EIG_FLOOR = 1e-2
"""Eigenvalues of a covariance below this (times the largest) are left out of the whitening/colouring: small
feature maps (fewer positions than channels) have a rank-deficient covariance whose tiny eigenvalues would
blow noise up. 1e-2 against Li et al.'s 1e-5: content loss -10%, style loss +8% on the shipped starry_night
(two training photos at 384 px); the five new paintings were not looked at for it."""
COV_SAMPLES = 1 << 16
"""Positions a covariance is estimated on, at most (a regular subsample of larger feature maps)."""
def _stats(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (C, 1), covariance (C, C)) of features (C, N) in float64, the covariance from at most COV_SAMPLES
    positions."""
    f = f.double()
    mean = f.mean(1, keepdim=True)
    n = f.shape[1]
    sub = f[:, :: max(1, n // COV_SAMPLES)] if n > COV_SAMPLES else f
    c = sub - sub.mean(1, keepdim=True)
    return mean, c @ c.T / max(1, c.shape[1] - 1)


def _sqrt_pair(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(cov^(1/2), cov^(-1/2)) through the eigen-decomposition, small eigenvalues floored away."""
    vals, vecs = torch.linalg.eigh(cov)
    keep = vals > EIG_FLOOR * vals.max().clamp_min(1e-30)
    v, e = vals[keep], vecs[:, keep]
    return (e * v.sqrt()) @ e.T, (e * v.rsqrt()) @ e.T


def wct(content: torch.Tensor, styles: list[tuple[torch.Tensor, torch.Tensor]], weights: list[float],
        alpha: float) -> torch.Tensor:
    """Whitening and colouring of content features (1, C, H, W) with style statistics (mean, cov^(1/2)), the
    colourings blended by ``weights``, then ``alpha`` * that + (1 - alpha) * content."""
    _, c, h, w = content.shape
    fc = content[0].reshape(c, h * w)
    mc, cov = _stats(fc)
    _, whiten = _sqrt_pair(cov)
    white = whiten @ (fc.double() - mc)
    out = sum(wt * (colour @ white + ms) for wt, (ms, colour) in zip(weights, styles))
    assert isinstance(out, torch.Tensor)
    mixed = alpha * out.float() + (1 - alpha) * fc.float()
    return mixed.reshape(1, c, h, w)


@dataclass
class AnyStyleResult:
    image: Image.Image
    seconds: float
    layers: list[str] = field(default_factory=list)
    """The levels the transfer ran, coarse to fine."""


class AnyStyle:
    """A loss network and the decoders one method needs, loaded once; call it on a photo and paintings.

    Args:
        method: ``adain`` (default, :data:`DEFAULT_METHOD`), ``wct`` or ``linear``.
        device: auto, cpu or cuda.
        decoders: layer -> decoder model (name or ``.pt``); default the installed ``decoder_LAYER``.
        model: ``linear``: the linear style model (name or ``.pt``; default :data:`LINEAR_MODEL`).
        precision: the arithmetic of the photo's pass through the encoder and the decoders: ``fp32``, ``bf16``
            (autocast) or ``auto`` (:data:`PRECISIONS`: bf16 on a CPU that computes it natively, AVX512-BF16 or
            AMX; fp32 elsewhere). The feature transforms (AdaIN's statistics, WCT's float64
            eigen-decompositions, the linear transform) and the painting's statistics stay fp32.
        color_match: 0..1, how far the picture's RGB mean and covariance move towards the painting's after
            decoding (times ``strength``); default the method's :data:`COLOR_MATCH`.

    On the CPU the networks run in the channels-last memory layout (oneDNN's fast path; the same numbers).
    """

    def __init__(self, method: str = DEFAULT_METHOD, device: str = "auto", decoders: dict[str, str] | None = None,
                 layers: Sequence[str] | None = None, model: str | None = None, precision: str = "auto",
                 color_match: float | None = None) -> None:
        if method not in METHODS:
            raise PerceptError(f"unknown method '{method}'; use {', '.join(METHODS[:-1])} or {METHODS[-1]}")
        if precision not in PRECISIONS:
            raise PerceptError(f"unknown precision '{precision}'; use {', '.join(PRECISIONS)}")
        if color_match is not None and not 0.0 <= color_match <= 1.0:
            raise PerceptError(f"color_match must be between 0 and 1, got {color_match}")
        self.color_match = COLOR_MATCH.get(method, 0.0) if color_match is None else float(color_match)
        """How far the picture's colours move towards the painting's (0..1)."""
        self.method, self.device = method, resolve_device(device)
        self._style_cache: dict[tuple, dict] = {}
        if method == "linear":
            try:
                self.linear, self.card = load_linear(model or LINEAR_MODEL)
            except PerceptError as exc:
                if model is None and str(exc).startswith(f"unknown model '{LINEAR_MODEL}'"):
                    raise PerceptError(f"`method` linear needs the linear style model '{LINEAR_MODEL}' and it is not "
                                       "installed; train one with `percept train-linear`") from None
                raise
            self.linear.to(self.device)
            self.layers: list[str] = [self.linear.layer]
            self.decoders = {self.linear.layer: self.linear.decoder}
            self.net = self.linear.encoder
            self._setup_precision(precision)
            return
        decoders = dict(decoders or {})
        wanted = list(layers) if layers else list(WCT_LAYERS) if method == "wct" else [ADAIN_LAYER]
        self.layers = []
        self.decoders = {}
        for layer in wanted:
            try:
                model = decoders.get(layer) or shipped_decoder(layer, adain=method == "adain")
            except PerceptError:
                raise PerceptError(f"`method` {method} needs a decoder for {layer} and none is installed; train one "
                                   f"with `percept train-decoder --layer {layer}`") from None
            dec, _ = load_decoder(model)
            self.decoders[layer] = dec.to(self.device).eval()
            self.layers.append(layer)
        order = VGG_LAYERS["vgg19"]
        self.net = LossNetwork(max(self.layers, key=order.index)).to(self.device).eval()
        self._setup_precision(precision)

    def _setup_precision(self, precision: str) -> None:
        cpu = self.device.type == "cpu"
        self.precision = ("bf16" if cpu and cpu_has_bf16() else "fp32") if precision == "auto" else precision
        """The arithmetic the photo's pass runs in: ``fp32`` or ``bf16``."""
        if cpu:  # oneDNN's convolutions are fastest channels-last (1.29 -> 1.02 s for adain at 512 px on a Zen 4)
            self.net = self.net.to(memory_format=torch.channels_last)
            self.decoders = {k: d.to(memory_format=torch.channels_last) for k, d in self.decoders.items()}

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def _features(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.net(x.to(self.device), list(layers))

    def _style_stats(self, painting: Image.Image) -> dict:
        """Layer -> the method's statistics of the painting's features there; ``"rgb"`` -> its colours'
        :func:`~percept.models.transforms.color_moments` (for the colour match)."""
        key = (painting.size, hash(painting.tobytes()))
        if key not in self._style_cache:
            x = to_tensor(painting)
            feats = self._features(x, self.layers)
            stats: dict = {"rgb": color_moments(x)}
            for layer, f in feats.items():
                if self.method == "linear":
                    stats[layer] = self.linear.transform.style_code(f)
                elif self.method == "wct":
                    c = f.shape[1]
                    ms, cov = _stats(f[0].reshape(c, -1))
                    stats[layer] = (ms, _sqrt_pair(cov)[0])
                else:
                    stats[layer] = (f.mean((2, 3), keepdim=True), f.std((2, 3), keepdim=True))
            if len(self._style_cache) > 8:
                self._style_cache.clear()
            self._style_cache[key] = stats
        return self._style_cache[key]

    @torch.inference_mode()
    def transfer(self, x: torch.Tensor, paintings: list[Image.Image], weights: list[float],
                 strength: float = 1.0, color_match: float | None = None) -> torch.Tensor:
        """(1, 3, H, W) photo in [0, 1] -> the stylised (1, 3, H, W) (the sides padded to the coarsest
        layer's stride inside and cropped back), its colours moved ``color_match`` (default
        :attr:`color_match`) times ``strength`` towards the paintings'."""
        stats = [self._style_stats(p) for p in paintings]
        h, w = x.shape[-2:]
        s = max(d.stride for d in self.decoders.values())
        ph, pw = (-h) % s, (-w) % s
        img = F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x
        img = img.to(self.device)
        if self.device.type == "cpu":
            img = img.contiguous(memory_format=torch.channels_last)
        for layer in self.layers:
            with self._autocast():
                f = self._features(img, [layer])[layer].float()
            styles = [st[layer] for st in stats]
            if self.method == "linear":
                tf = self.linear.transform
                moved = sum(wt * tf.transfer(f, code) for wt, code in zip(weights, styles))
                assert isinstance(moved, torch.Tensor)
                t = strength * moved + (1 - strength) * f
            elif self.method == "wct":
                t = wct(f, styles, weights, strength)
            else:
                t = adain(f, styles, weights, strength)
            with self._autocast():
                img = self.decoders[layer](t).float()
        img = img[..., :h, :w].clamp(0, 1).contiguous().cpu()
        amount = (self.color_match if color_match is None else color_match) * strength
        if amount > 0:
            mean, cov = color_stats([st["rgb"] for st in stats], weights)
            img = match_colors(img, mean, cov, amount)
        return img

    def __call__(self, photo: ImageLike, paintings: Sequence[ImageLike], weights: Sequence[float] | None = None,
                 size: int | None = None, strength: float = 1.0, preserve_colors: bool = False) -> AnyStyleResult:
        """Stylise ``photo`` with ``paintings`` (blended by ``weights``); ``preserve_colors`` keeps the photo's
        colours (the colour match is then skipped)."""
        check_strength(strength)
        if not paintings:
            raise PerceptError("give at least one style image")
        arts = [check_painting(load_image(p), str(p) if isinstance(p, (str, os.PathLike)) else f"style {i + 1}")
                for i, p in enumerate(paintings)]
        wts = blend_weights(weights, len(arts))
        src = resize_long_side(load_image(photo), size)
        if min(src.size) < 16:
            raise PerceptError(f"the photo is {src.width}x{src.height} px; arbitrary style transfer needs at least 16x16")
        t0 = time.perf_counter()
        # with preserve_colors the photo's colours replace the picture's: no colour match to the painting first
        out = to_image(self.transfer(to_tensor(src), arts, wts, strength, 0.0 if preserve_colors else None))
        seconds = time.perf_counter() - t0
        if preserve_colors:
            out = preserve_color(out, src)
        return AnyStyleResult(out, seconds, list(self.layers))


class Teacher(torch.nn.Module):
    """One painting's arbitrary-style transfer as a module, photos (N, 3, H, W) in [0, 1] -> pictures: what
    ``train-style --teacher`` distils a per-style network from (:mod:`percept.training.fast`).

    The linear teacher on a CPU runs through the inference engine with the painting baked in, on OpenVINO
    where it is installed and the model has its ``.onnx`` file (bf16 where the CPU has it and the check
    passes: 3.8x PyTorch's speed for a batch of 16 crops at 256 px on a Zen 4, so the teacher's pictures
    take a quarter of the time budget they took), else PyTorch (on the GPU where there is one)."""

    def __init__(self, method: str, painting: ImageLike, device: str = "auto", model: str | None = None) -> None:
        super().__init__()
        self.painting = check_painting(load_image(painting), painting_label(painting))
        self.method = method
        self.engine = None
        self.any_style: AnyStyle | None = None
        if method == "linear":  # the engine, as every other linear run: the painting baked in once
            on_cpu = resolve_device(device).type == "cpu"
            fast = on_cpu and openvino_installed() and _has_onnx(model or LINEAR_MODEL)
            self.engine = Engine(model or LINEAR_MODEL, backend="openvino" if fast else "torch",
                                 device="cpu" if on_cpu else device, style=painting)
            card = self.engine.files.card
            self.runtime = self.engine.describe()
            self.card = {"name": card.get("name", LINEAR_MODEL), "trained_at": card.get("trained_at"),
                         "runtime": self.runtime}
        else:
            self.any_style = AnyStyle(method, device)
            self.runtime = f"PyTorch ({self.any_style.device})"
            self.card = {"name": method, "runtime": self.runtime}

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.engine is not None:
            return self.engine.tensor(x).to(x.device)
        assert self.any_style is not None
        return torch.cat([self.any_style.transfer(x[i:i + 1], [self.painting], [1.0]) for i in range(x.shape[0])]).to(x.device)


def _has_onnx(model: str) -> bool:
    try:
        return find_model(model).onnx is not None
    except PerceptError:  # not installed: the PyTorch route says so in its own words
        return False


def stylize_any(photo: ImageLike, paintings: Sequence[ImageLike] | ImageLike, method: str = DEFAULT_METHOD,
                weights: Sequence[float] | None = None, size: int | None = None, strength: float = 1.0,
                preserve_color: bool = False, device: str = "auto", precision: str = "auto",
                color_match: float | None = None) -> Image.Image:
    """Stylise ``photo`` with any painting(s), no training: the Python side of ``percept stylize --style``."""
    if isinstance(paintings, (str, os.PathLike, Image.Image, np.ndarray)):
        paintings = [paintings]
    return AnyStyle(method, device, precision=precision, color_match=color_match)(
        photo, list(paintings), weights, size, strength, preserve_color).image
