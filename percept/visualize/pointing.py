"""Scoring an attribution map against a known object box: the pointing game and the mass inside the box.

The ground truth comes from composites: an object photo pasted at a known box onto another photo
(:func:`paste_object`). A good map for the object's class points inside the box.

* :func:`pointing_hit` - the pointing game (Zhang et al. 2016, "Top-down Neural Attention by Excitation
  Backprop"): is the map's maximum inside the box (``tolerance`` px around it count too)?
* :func:`mass_inside` - the fraction of the map's (positive) mass inside the box; 1.0 for a map that
  is zero outside it, about ``box area / image area`` for a uniform one.
* :func:`as_heatmap` - any tool's map as one (H, W) map: a (3, H, W) gradient image becomes the
  maximum of ``|.|`` over colour channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from percept.errors import PerceptError
from percept.images import fit_long_side


@dataclass(frozen=True)
class Box:
    """Pixel box ``[left, right) x [top, bottom)``."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def area(self) -> int:
        return (self.right - self.left) * (self.bottom - self.top)


def paste_object(obj: Image.Image, background: Image.Image, scale: float = 0.45,
                 position: tuple[float, float] = (0.5, 0.5), size: int = 224) -> tuple[Image.Image, Box]:
    """``background`` cropped to a ``size`` x ``size`` square with ``obj`` (its long side ``scale * size``)
    pasted at ``position`` (fractions of the free room: (0, 0) top left, (1, 1) bottom right). Returns
    the composite and the object's box."""
    from PIL import ImageOps

    if not 0 < scale <= 1:
        raise PerceptError(f"scale must be in (0, 1], got {scale}")
    bg = ImageOps.fit(background.convert("RGB"), (size, size), Image.Resampling.LANCZOS)
    long_side = max(1, round(scale * size))
    w, h = fit_long_side(obj.width, obj.height, long_side, upscale=True)
    piece = obj.convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
    left = round(position[0] * (size - w))
    top = round(position[1] * (size - h))
    bg.paste(piece, (left, top))
    return bg, Box(left, top, left + w, top + h)


def as_heatmap(amap: torch.Tensor) -> torch.Tensor:
    """(H, W) as it is; (3, H, W) signed gradients as ``max_c |.|``."""
    m = amap.detach().float().cpu()
    if m.dim() == 3:
        m = m.abs().amax(0)
    if m.dim() != 2:
        raise PerceptError(f"expected an (H, W) or (3, H, W) map, got shape {tuple(m.shape)}")
    return m


def pointing_hit(amap: torch.Tensor, box: Box, tolerance: int = 0) -> bool:
    """The pointing game: the map's maximum lies inside ``box`` grown by ``tolerance`` px. A map whose
    maximum is shared by several pixels counts their mean position."""
    m = as_heatmap(amap).numpy()
    ys, xs = np.nonzero(m == m.max())
    y, x = float(ys.mean()), float(xs.mean())
    return (box.left - tolerance <= x < box.right + tolerance) and (box.top - tolerance <= y < box.bottom + tolerance)


def mass_inside(amap: torch.Tensor, box: Box) -> float:
    """Fraction of the map's positive mass inside ``box`` (0 for an all-zero map)."""
    m = as_heatmap(amap).clamp_min(0)
    total = float(m.sum())
    if total <= 0:
        return 0.0
    return float(m[box.top:box.bottom, box.left:box.right].sum()) / total


__all__ = ["Box", "paste_object", "as_heatmap", "pointing_hit", "mass_inside"]
