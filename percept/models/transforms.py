"""Feature transforms the arbitrary-style methods share, in the models layer so that training (AdaIN's decoder,
:mod:`percept.training.decoder`) and inference (:mod:`percept.inference.anystyle`) use one definition; and the
colour-statistics transfer (Pitie & Kokaram 2007) the arbitrary methods finish with."""

from __future__ import annotations

import torch

__all__ = ["adain", "color_moments", "color_stats", "match_colors"]


def adain(content: torch.Tensor, styles: list[tuple[torch.Tensor, torch.Tensor]], weights: list[float],
          alpha: float) -> torch.Tensor:
    """Channel means and standard deviations of content features set to the (blended) style statistics."""
    mu = content.mean((2, 3), keepdim=True)
    sd = content.std((2, 3), keepdim=True).clamp_min(1e-5)
    ms = sum(wt * m for wt, (m, _) in zip(weights, styles))
    ss = sum(wt * s for wt, (_, s) in zip(weights, styles))
    return alpha * ((content - mu) / sd * ss + ms) + (1 - alpha) * content


def color_moments(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (3,), second moment E[x x^T] (3, 3)) in float64 of an image's (1, 3, H, W) RGB values: what
    :func:`color_stats` pools; computed once per painting and cached by the caller."""
    px = image.detach().reshape(3, -1).double().cpu()
    return px.mean(1), (px @ px.T) / px.shape[1]


def color_stats(moments: list[tuple[torch.Tensor, torch.Tensor]], weights: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (3,), covariance (3, 3)) in float64 of images' RGB values pooled with ``weights``, from their
    :func:`color_moments` (the mixture of several paintings: the weighted means, and the weighted second moments
    less the mean's)."""
    mean = sum(wt * m for wt, (m, _) in zip(weights, moments))
    second = sum(wt * q for wt, (_, q) in zip(weights, moments))
    assert isinstance(mean, torch.Tensor) and isinstance(second, torch.Tensor)
    return mean, second - torch.outer(mean, mean)


def _sqrtm(cov: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(cov)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def match_colors(image: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor, amount: float) -> torch.Tensor:
    """Move an image's (1, 3, H, W, in [0, 1]) RGB mean and covariance ``amount`` (0..1) of the way to (``mean``,
    ``cov``): the Monge-Kantorovich linear colour transfer of Pitie & Kokaram 2007 ("The linear Monge-Kantorovitch
    linear colour mapping for example-based colour transfer"), the affine map with the least displacement,
    ``T = A^-1/2 (A^1/2 B A^1/2)^1/2 A^-1/2`` for the image's covariance A and the target's B, blended with the
    image by ``amount``. A flat image (no covariance to map from) comes back unchanged but for the mean."""
    if amount <= 0:
        return image
    px = image.reshape(3, -1).double()
    mu = px.mean(1, keepdim=True)
    centred = px - mu
    a = centred @ centred.T / max(1, px.shape[1]) + 1e-6 * torch.eye(3, dtype=torch.float64)
    ra = _sqrtm(a)
    ira = torch.linalg.inv(ra)
    t = ira @ _sqrtm(ra @ cov.double() @ ra) @ ira
    moved = t @ centred + mean.double().reshape(3, 1)
    out = amount * moved + (1 - amount) * px
    return out.to(image.dtype).reshape(image.shape).clamp(0, 1)
