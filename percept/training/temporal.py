"""A temporal-consistency regulariser that needs no video: the compound regularisation of Wang et al. 2020
("Consistent Video Style Transfer via Compound Regularization").

For a training photo ``I`` and the network ``f``, a second "frame" is the photo moved by a random smooth
flow ``F`` plus a little noise, ``I' = W(I, F) + D``. A network that is stable in time maps it to the
moved stylisation, so the loss is

    L_temporal = |f(W(I, F) + D) - W(f(I), F)|_1  +  |f(I + D') - f(I)|_1

(the second, noise-only term penalises strokes that flip with sensor noise). ``W`` is bilinear warping
(``grid_sample``); the flow is a random global shift plus a smooth local field (random values on a
coarse grid, upsampled bicubically), a few pixels at most, like the motion between two video frames.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_flow(n: int, h: int, w: int, generator: torch.Generator, shift: float = 4.0, local: float = 2.0,
                grid: int = 4, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, 2, H, W) flows in pixels (x, y): a global shift up to ``shift`` px plus a smooth local field up to
    ``local`` px (random on a ``grid`` x ``grid`` lattice, bicubic)."""
    g = (torch.rand(n, 2, 1, 1, generator=generator) * 2 - 1) * shift
    coarse = (torch.rand(n, 2, grid, grid, generator=generator) * 2 - 1) * local
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
    return (g + field).to(device)


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """``x`` (N, C, H, W) sampled at ``p + flow(p)`` (bilinear, borders repeated)."""
    n, _, h, w = x.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=x.dtype),
                            torch.arange(w, device=x.device, dtype=x.dtype), indexing="ij")
    gx = (xs + flow[:, 0].to(x.dtype)) * (2 / max(1, w - 1)) - 1
    gy = (ys + flow[:, 1].to(x.dtype)) * (2 / max(1, h - 1)) - 1
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


def compound_inputs(x: torch.Tensor, generator: torch.Generator, noise: float = 0.02, total: int | None = None,
                    offset: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(flow, moved photos ``W(I, F) + D``, noisy photos ``I + D'``) for photos ``x``, drawn from ``generator``.

    ``total``/``offset``: ``x`` is the slice ``offset:offset + n`` of a batch of ``total`` (one rank of a
    distributed job): the draws are made for the whole batch and sliced, so every rank moves its photos as
    one process would have."""
    n, c, h, w = x.shape
    total = n if total is None else total
    part = slice(offset, offset + n)
    flow = random_flow(total, h, w, generator, device=x.device)[part]
    d1 = torch.randn((total, c, h, w), generator=generator)[part].to(x.device, x.dtype) * noise
    d2 = torch.randn((total, c, h, w), generator=generator)[part].to(x.device, x.dtype) * noise
    return flow, (warp(x, flow) + d1).clamp(0, 1), (x + d2).clamp(0, 1)


def compound_terms(y: torch.Tensor, moved: torch.Tensor, noisy: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """The loss from the stylisations of the photos (``y``), of the moved ones and of the noisy ones."""
    return (moved - warp(y, flow)).abs().mean() + (noisy - y).abs().mean()


def compound_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
                  noise: float = 0.02) -> torch.Tensor:
    """The two terms of the module docstring for photos ``x`` whose stylisation is ``y = model(x)``."""
    flow, moved_in, noisy_in = compound_inputs(x, generator, noise)
    return compound_terms(y, model(moved_in), model(noisy_in), flow)


__all__ = ["random_flow", "warp", "compound_inputs", "compound_terms", "compound_loss"]
