"""Feature transforms the arbitrary-style methods share, in the models layer so that training (AdaIN's decoder,
:mod:`percept.training.decoder`) and inference (:mod:`percept.inference.anystyle`) use one definition."""

from __future__ import annotations

import torch

__all__ = ["adain"]


def adain(content: torch.Tensor, styles: list[tuple[torch.Tensor, torch.Tensor]], weights: list[float],
          alpha: float) -> torch.Tensor:
    """Channel means and standard deviations of content features set to the (blended) style statistics."""
    mu = content.mean((2, 3), keepdim=True)
    sd = content.std((2, 3), keepdim=True).clamp_min(1e-5)
    ms = sum(wt * m for wt, (m, _) in zip(weights, styles))
    ss = sum(wt * s for wt, (_, s) in zip(weights, styles))
    return alpha * ((content - mu) / sd * ss + ms) + (1 - alpha) * content
