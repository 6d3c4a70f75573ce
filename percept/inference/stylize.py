"""Stylising images with a trained transformer network (Johnson et al. 2016): the Python API.

>>> from percept import stylize
>>> stylize("photo.jpg", "starry_night", size=512).save("out.png")

It runs on :class:`percept.inference.engine.Engine`, the runner behind the CLI, video and the
webcam too, so ``percept.stylize(...)`` and ``percept stylize`` give the same pixels for the same
arguments. ``strength`` blends the result with the photo; ``preserve_color`` keeps the photo's
colours by luminance-only transfer (Gatys et al. 2016, "Preserving Color in Neural Artistic Style
Transfer").
"""

from __future__ import annotations

import functools
import os

from PIL import Image

from percept.images import ImageLike
from percept.inference.engine import Engine
from percept.models.transformer import load_style_network

__all__ = ["Stylizer", "load_style_model", "stylize"]

load_style_model = load_style_network
"""Load a style network (PyTorch) by model name or ``.pt`` path: (network in eval mode, model card)."""


class Stylizer(Engine):
    """A loaded style model; call it on images. The same runner as :class:`Engine` (onnxruntime when
    the model has an ``.onnx`` file, else PyTorch); kept under this name for the Python API."""

    def __init__(self, model: str | os.PathLike, device: str = "auto", backend: str = "auto",
                 threads: int | None = None, precision: str = "auto") -> None:
        super().__init__(model, backend=backend, device=device, threads=threads, precision=precision)


@functools.lru_cache(maxsize=8)
def _cached(model: str, device: str, backend: str, precision: str) -> Engine:
    return Engine(model, backend=backend, device=device, precision=precision)


def stylize(image: ImageLike, model: str | os.PathLike = "starry_night", size: int | None = None,
            strength: float = 1.0, preserve_color: bool = False, device: str = "auto",
            backend: str = "auto", precision: str = "auto") -> Image.Image:
    """Stylise one image with a model name (shipped or the user's) or a ``.pt`` / ``.onnx`` path;
    returns a PIL image. The engine is loaded once per (model, device, backend, precision) and reused;
    ``backend="openvino"`` with ``precision`` fp32, bf16 or auto runs the ``.onnx`` with OpenVINO."""
    return _cached(str(model), device, backend, precision)(image, size=size, strength=strength,
                                                           preserve_color=preserve_color)
