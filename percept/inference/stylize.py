"""Stylising images with a trained transformer network (Johnson et al. 2016).

>>> from percept import stylize
>>> stylize("photo.jpg", "starry_night", size=512).save("out.png")

``strength`` blends the result with the photo; ``preserve_color`` keeps the photo's colours by
luminance-only transfer (Gatys et al. 2016, "Preserving Color in Neural Artistic Style Transfer").
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch
from PIL import Image

from percept.checkpoint import load_network
from percept.device import resolve_device
from percept.errors import PerceptError
from percept.imageio import ImageLike, blend, load_image, preserve_color, resize_long_side, to_image, to_tensor
from percept.inference.registry import resolve_model
from percept.models.transformer import build_transformer


def load_style_model(model: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """Load a style network by shipped name or path; returns (network in eval mode, model card)."""
    return load_network(resolve_model(model), "style-transformer", "a style model", build_transformer)


class Stylizer:
    """A loaded style network on a device; call it on images."""

    def __init__(self, model: str | os.PathLike, device: str = "auto") -> None:
        self.device = resolve_device(device)
        self.net, self.card = load_style_model(model)
        self.net.to(self.device)
        self.name = self.card.get("name", Path(str(model)).stem)

    @torch.inference_mode()
    def tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> stylised (N, 3, H, W) in [0, 1], on the CPU."""
        from percept.inference.engine import check_frame_size

        check_frame_size(x.shape[-2], x.shape[-1], int(getattr(self.net, "min_size", 8)), self.name)
        return self.net(x.to(self.device)).float().cpu()

    def __call__(self, image: ImageLike, size: int | None = None, strength: float = 1.0,
                 preserve_color: bool = False) -> Image.Image:
        photo = resize_long_side(load_image(image), size)
        if not 0.0 <= strength <= 1.0:
            raise PerceptError(f"strength must be between 0 and 1, got {strength}")
        out = to_image(self.tensor(to_tensor(photo)))
        if preserve_color:
            out = _preserve(out, photo)
        return blend(out, photo, strength)


_preserve = preserve_color


@functools.lru_cache(maxsize=8)
def _cached(model: str, device: str) -> Stylizer:
    return Stylizer(model, device)


def stylize(image: ImageLike, model: str | os.PathLike = "starry_night", size: int | None = None,
            strength: float = 1.0, preserve_color: bool = False, device: str = "auto") -> Image.Image:
    """Stylise one image with a shipped model name or a ``.pt`` path; returns a PIL image."""
    return _cached(str(model), device)(image, size=size, strength=strength, preserve_color=preserve_color)
