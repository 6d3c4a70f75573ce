"""One stylizer: whatever stylises, opened once, called on an image or on a stream of frames.

:func:`open_stylizer` is the one library entry point that chooses a runner, and the one place that checks the
options of stylisation (:class:`~percept.inference.options.StylizerOptions`):

* a trained per-style network (Johnson et al. 2016; ``model=``) on onnxruntime, OpenVINO or PyTorch
  (:class:`~percept.inference.engine.Engine`);
* the linear style model (Li et al. 2019) with one painting baked in (``style=[painting], method="linear"``): the
  same engine, any backend, one feed-forward pass a frame;
* AdaIN (Huang & Belongie 2017, the default for ``style=``) or WCT (Li et al. 2017) on the VGG19 decoders, and the
  linear model with blends or a colour match, on PyTorch (:class:`~percept.inference.anystyle.AnyStyle`).

The :class:`Stylizer` it returns is called on an image (``st(image, size=512)``: a PIL image back), on a batch of
same-sized frames (:meth:`Stylizer.frames`) or on a stream (:meth:`Stylizer.stream`: frames at their own size,
the network at a working size, optional flow guidance). ``percept stylize``, ``video``, ``webcam``, ``compare``,
the demo and :func:`percept.stylize` all go through it, so the same options give the same pixels everywhere.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from percept.errors import PerceptError
from percept.images import (
    MIN_FRAME_SIDE,
    ImageLike,
    check_painting,
    check_strength,
    finish_frame,
    fit_long_side,
    load_image,
    painting_label,
    to_image,
    to_tensor,
)
from percept.inference.anystyle import AnyStyle
from percept.inference.engine import Engine
from percept.inference.options import BACKENDS, METHODS, PRECISIONS, blend_weights
from percept.inference.temporal import TemporalFilter
from percept.inference.video import cv2_module
from percept.models.decoder import check_decoder_layer
from percept.models.specs import LINEAR_MODEL
from percept.registry import ModelKind, find_model

__all__ = ["StylizeResult", "Stylizer", "check_stylizer", "open_stylizer", "stylize"]

DEFAULT_METHOD = "adain"
"""What ``style=`` runs when no method is named (:data:`percept.inference.anystyle.DEFAULT_METHOD` says why)."""
_NOT_FOR_MODEL = ("`method`, `style_blend`, `levels`, `decoder` and `color_match` are for `style` PAINTING (arbitrary "
                  "style transfer)")


@dataclass
class StylizeResult:
    """What the last picture took: the seconds of its transfer and, for arbitrary style, the levels it ran."""

    seconds: float = 0.0
    layers: list[str] = field(default_factory=list)


class Stylizer:
    """A stylizer opened by :func:`open_stylizer`: one runner (an engine or an arbitrary-style transfer) and, for
    arbitrary style, its paintings. Attributes: ``name``, ``backend``, ``provider``, ``precision``, ``method`` (None
    for a trained network), ``color_match`` (arbitrary style), ``card`` and ``last`` (:class:`StylizeResult`)."""

    def __init__(self, runner, paintings: list[Image.Image] | None = None, weights: list[float] | None = None,
                 method: str | None = None, label: str = "") -> None:
        self.runner = runner
        self.paintings, self.weights, self.method = paintings or [], weights or [], method
        self.last = StylizeResult()
        self.card: dict
        if isinstance(runner, Engine):
            self.name, self.backend, self.provider = runner.name, runner.backend, runner.provider
            self.precision, self.card, self.min_size = runner.precision, runner.card, runner.min_size
            self.color_match = 0.0
        else:
            self.name = f"{runner.method}+{label}"
            self.backend, self.provider, self.precision = "torch", f"torch ({runner.device.type})", runner.precision
            self.card = {"method": runner.method, "layers": list(runner.layers)}
            self.min_size = 16
            self.color_match = runner.color_match

    @property
    def engine(self) -> Engine | None:
        """The engine behind a trained network or the baked linear model (None for PyTorch arbitrary style)."""
        return self.runner if isinstance(self.runner, Engine) else None

    def describe(self) -> str:
        if self.engine is not None:
            return self.engine.describe()
        return f"{self.runner.method} via torch ({self.runner.device.type}, {self.precision})"

    def __call__(self, image: ImageLike, size: int | None = None, strength: float = 1.0,
                 preserve_color: bool = False) -> Image.Image:
        """Stylise one image (path, PIL image or array), its long side fitted to ``size`` first (up or down:
        :data:`percept.images.UPSCALE_RULE`); returns a PIL image."""
        check_strength(strength)
        t0 = time.perf_counter()
        if self.engine is not None:
            out = self.engine(image, size=size, strength=strength, preserve_color=preserve_color)
            self.last = StylizeResult(time.perf_counter() - t0)
            return out
        r = self.runner(load_image(image), self.paintings, self.weights, size, strength, preserve_color)
        self.last = StylizeResult(r.seconds, r.layers)
        return r.image

    def frames(self, frames: Sequence[np.ndarray], strength: float = 1.0,
               preserve_color: bool = False) -> list[np.ndarray]:
        """Same-sized uint8 HxWx3 RGB frames -> stylised uint8 frames of the same size (one batch for an engine)."""
        check_strength(strength)
        if self.engine is not None:
            return self.engine.frames(frames, strength, preserve_color)
        out = []
        for f in frames:
            x = to_tensor(Image.fromarray(f))
            y = self.runner.transfer(x, self.paintings, self.weights, strength, 0.0 if preserve_color else None)
            out.append(finish_frame(np.asarray(to_image(y)), f, 1.0, preserve_color))
        return out

    def tensor(self, x):
        """torch (N, 3, H, W) in [0, 1] -> the stylised batch as a torch tensor on the CPU (no strength, no colour
        preservation): what a teacher or a metric feeds."""
        import torch

        if self.engine is not None:
            return self.engine.tensor(x)
        return torch.cat([self.runner.transfer(x[i:i + 1].float().cpu(), self.paintings, self.weights)
                          for i in range(x.shape[0])])

    def stream(self, frames: Iterable[np.ndarray], size: int | None = None, strength: float = 1.0,
               preserve_color: bool = False, batch: int = 1,
               temporal: TemporalFilter | None = None) -> Iterator[np.ndarray]:
        """Stylise a stream of uint8 RGB frames in order, ``batch`` at a time; each comes back at its own size, the
        network having run at ``size`` (shrink only: :data:`percept.images.DOWNSCALE_RULE`). ``temporal`` (a
        :class:`~percept.inference.temporal.TemporalFilter`) blends each output with the previous one warped along
        the optical flow (less flicker)."""
        check_strength(strength)
        pending: list[np.ndarray] = []
        for frame in frames:
            pending.append(frame)
            if len(pending) >= batch:
                yield from self._at_working_size(pending, size, strength, preserve_color, temporal)
                pending = []
        if pending:
            yield from self._at_working_size(pending, size, strength, preserve_color, temporal)

    def _at_working_size(self, frames: list[np.ndarray], size: int | None, strength: float, preserve_color: bool,
                         temporal: TemporalFilter | None) -> list[np.ndarray]:
        if any(f.shape != frames[0].shape for f in frames):  # the clip changed size mid-batch
            return [y for f in frames for y in self._at_working_size([f], size, strength, preserve_color, temporal)]
        cv2 = cv2_module()
        h, w = frames[0].shape[:2]
        ws = fit_long_side(w, h, size or None, upscale=False, min_side=MIN_FRAME_SIDE)
        small = [f if ws == (w, h) else cv2.resize(f, ws, interpolation=cv2.INTER_AREA) for f in frames]
        out = self.frames(small, strength, preserve_color)
        if ws != (w, h):
            out = [cv2.resize(y, (w, h), interpolation=cv2.INTER_LINEAR) for y in out]
        if temporal is not None:
            out = [temporal(f, y) for f, y in zip(frames, out)]
        return out


def _levels(levels: Sequence[str]) -> list[str]:
    layers = [str(t).strip() for t in levels if str(t).strip()]
    if not layers or len(set(layers)) != len(layers):
        raise PerceptError(f"`levels` {','.join(map(str, levels))}: give distinct comma-separated layers, coarse to "
                           "fine, e.g. relu4_1,relu3_1,relu2_1,relu1_1")
    return [check_decoder_layer(t) for t in layers]


def _decoders(models: Sequence[str]) -> dict[str, str]:
    """``decoder`` models -> {layer: model}, the layer read from each model's card."""
    out: dict[str, str] = {}
    for m in models:
        info = find_model(m)
        kind = info.card.get("kind")
        if kind is None:  # no card, or a card without a kind: a pickle or someone else's file
            raise PerceptError(f"`decoder` {m}: not a percept model file (no percept card with a kind; "
                               "train a decoder with `percept train-decoder`)")
        if kind != ModelKind.DECODER.value:
            raise PerceptError(f"`decoder` {m}: a '{kind}' model, not a feature decoder")
        layer = str(info.card.get("layer"))
        if layer in out:
            raise PerceptError(f"`decoder`: two decoders for {layer} ({out[layer]}, {m})")
        out[layer] = str(m)
    return out


def _label(p: ImageLike, i: int) -> str:
    return str(p) if isinstance(p, (str, os.PathLike)) else f"style {i + 1}"


def check_stylizer(model: str | os.PathLike | None = None, *, style: ImageLike | Sequence[ImageLike] | None = None,
                   method: str | None = None, style_blend: Sequence[float] | None = None,
                   decoder: Sequence[str] | None = None, levels: Sequence[str] | None = None,
                   color_match: float | None = None, backend: str = "auto", device: str = "auto",
                   precision: str = "auto", threads: int | None = None) -> tuple[str | None, list[Image.Image], list[float]]:
    """Check the options of :func:`open_stylizer` without loading a network (the paintings are read and checked):
    one clear error for a bad combination. Returns (method, paintings, blend weights); method is None for a
    trained network."""
    paintings = _as_list(style)
    for name, value, allowed in (("backend", backend, BACKENDS), ("precision", precision, PRECISIONS)):
        if value not in allowed:
            raise PerceptError(f"unknown {name} '{value}'; use {', '.join(allowed)}")
    if method is not None and method not in METHODS:
        raise PerceptError(f"unknown method '{method}'; use {', '.join(METHODS[:-1])} or {METHODS[-1]}")
    if not paintings:
        if model is None:
            raise PerceptError("give `model` NAME (see `percept models`) or `style` PAINTING")
        if method or style_blend or levels or decoder or color_match is not None:
            raise PerceptError(_NOT_FOR_MODEL)
        return None, [], []
    if model is not None and find_model(model).kind != ModelKind.LINEAR.value:
        if method == "linear":
            raise PerceptError(f"`style` PAINTING runs the linear style model; '{model}' is a per-style network "
                               "(give `model` or `style`, not both)")
        raise PerceptError("give `model` (a trained network) or `style` (any painting, no training), not both")
    method = method or ("linear" if model is not None else DEFAULT_METHOD)
    if (levels or decoder) and method == "linear":
        raise PerceptError(f"{'`levels`' if levels else '`decoder`'} is for `method` wct or adain (the linear "
                           "model carries its own decoder, at relu3_1)")
    arts = [check_painting(load_image(p), _label(p, i)) for i, p in enumerate(paintings)]  # before any work
    weights = blend_weights(style_blend, len(arts))
    if not _baked(method, arts, style_blend, color_match) and backend not in ("auto", "torch"):
        raise PerceptError(f"`style` runs on PyTorch (the VGG19 encoder and the decoders); drop `backend` {backend}")
    return method, arts, weights


def _as_list(style) -> list:
    if style is None:
        return []
    return [style] if isinstance(style, (str, os.PathLike, Image.Image, np.ndarray)) else list(style)


def _baked(method: str, arts: list, style_blend, color_match) -> bool:
    """One painting with the linear model and no blend or colour match: baked into the engine (any backend; the
    colour match would run in PyTorch)."""
    return method == "linear" and len(arts) == 1 and not style_blend and not color_match


def open_stylizer(model: str | os.PathLike | None = None, *, style: ImageLike | Sequence[ImageLike] | None = None,
              method: str | None = None, style_blend: Sequence[float] | None = None,
              decoder: Sequence[str] | None = None, levels: Sequence[str] | None = None,
              color_match: float | None = None, backend: str = "auto", device: str = "auto",
              precision: str = "auto", threads: int | None = None) -> Stylizer:
    """Open what stylises (see the module doc and :class:`~percept.inference.options.StylizerOptions`).

    Args:
    model: a trained network (name, ``.pt`` or ``.onnx``), or the linear style model to run ``style`` with.
    style: any painting(s) (paths, PIL images or arrays) instead of a trained network.
    method: ``adain`` (default), ``wct`` or ``linear``, for ``style``.
    style_blend: one weight per painting. decoder: decoder models for wct/adain (their layer from the card).
    levels: wct/adain's layers, coarse to fine. color_match: 0..1 towards the painting's colours.
    backend, device, precision, threads: where it runs (arbitrary style other than the baked linear model
        runs on PyTorch).
    """
    paintings = _as_list(style)
    found, arts, weights = check_stylizer(model, style=paintings, method=method, style_blend=style_blend,
                                      decoder=decoder, levels=levels, color_match=color_match, backend=backend,
                                      device=device, precision=precision)
    if found is None:
        assert model is not None
        return Stylizer(Engine(model, backend=backend, device=device, threads=threads, precision=precision))
    if _baked(found, arts, style_blend, color_match):
        engine = Engine(model or LINEAR_MODEL, backend=backend, device=device, threads=threads, precision=precision,
                        style=paintings[0])
        return Stylizer(engine, arts, weights, "linear")
    decoders = _decoders(decoder or [])
    layers = _levels(levels) if levels else None
    if decoders and found == "adain" and not layers:
        layers = list(decoders)  # adain runs at its decoder's layer
    runner = AnyStyle(found, device, decoders=decoders, layers=layers, precision=precision, color_match=color_match,
                      model=str(model) if model is not None else None)
    label = "+".join(painting_label(p, _label(p, i), file_name=True) for i, p in enumerate(paintings))
    return Stylizer(runner, arts, weights, found, label)


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return not isinstance(value, (Image.Image, np.ndarray))


@functools.lru_cache(maxsize=8)
def _cached(model, style: tuple, options: tuple) -> Stylizer:
    return open_stylizer(model, style=list(style) or None, **dict(options))


def stylize(image: ImageLike, model: str | os.PathLike | None = None, *,
            style: ImageLike | Sequence[ImageLike] | None = None, size: int | None = None, strength: float = 1.0,
            preserve_color: bool = False, method: str | None = None, style_blend: Sequence[float] | None = None,
            color_match: float | None = None, device: str = "auto", backend: str = "auto",
            precision: str = "auto") -> Image.Image:
    """Stylise one image with a trained network (``model``: a name, shipped or the user's, or a ``.pt`` / ``.onnx``
    path) or any painting (``style``); returns a PIL image. The stylizer is opened once per set of options and
    reused (when they are names and paths). ``percept stylize`` gives the same pixels for the same options."""
    styles = _as_list(style)
    options = dict(method=method, style_blend=tuple(style_blend) if style_blend else None, color_match=color_match,
                   device=device, backend=backend, precision=precision)
    key_model = str(model) if model is not None else None
    if all(_hashable(s) for s in styles):
        st = _cached(key_model, tuple(str(s) for s in styles), tuple(sorted(options.items())))
    else:
        st = open_stylizer(key_model, style=styles or None, **options)  # type: ignore[arg-type]
    return st(image, size=size, strength=strength, preserve_color=preserve_color)

