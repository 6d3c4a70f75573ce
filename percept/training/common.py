"""What the training steps share, whatever they train (Johnson et al. 2016's style networks, Dosovitskiy &
Brox 2016's decoders, Li et al. 2019's linear transform, distillation): the end of an optimisation step
(:func:`finish_step`: detached loss terms, averaged over the ranks, the weights moved only by a finite
loss) and the preview grids TensorBoard shows (:func:`preview_grid`, :func:`preview_pairs`).

Imports nothing from the rest of :mod:`percept.training`: the step functions of every task and the loop
(:mod:`percept.training.loop`) import it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torchvision.utils import make_grid

__all__ = ["Sync", "finish_step", "preview_grid", "preview_pairs"]

Sync = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
"""Loss terms averaged over the ranks of a distributed job (:meth:`percept.training.distributed.Dist.mean`)."""


def finish_step(terms: dict[str, torch.Tensor], total: torch.Tensor, optimizer: torch.optim.Optimizer,
                sync: Sync | None = None) -> dict[str, torch.Tensor]:
    """The end of every training step: the loss terms detached (and with ``sync``, a distributed job,
    averaged over the ranks, so that every rank decides alike), then the optimiser step from ``total``,
    only when the total is finite. Returns the detached terms."""
    out = {k: v.detach() for k, v in terms.items()}
    if sync is not None:
        out = sync(out)
    if torch.isfinite(out["total"]):
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
    return out


def preview_grid(tiles: list[torch.Tensor], nrow: int = 2) -> torch.Tensor:
    """(3, H, W) images of different sizes -> one grid image (padded with white), for TensorBoard."""
    hmax = max(t.shape[1] for t in tiles)
    wmax = max(t.shape[2] for t in tiles)
    padded = [torch.nn.functional.pad(t, (0, wmax - t.shape[2], 0, hmax - t.shape[1]), value=1.0) for t in tiles]
    return make_grid(padded, nrow=nrow, padding=4, pad_value=1.0)


def preview_pairs(model: torch.nn.Module, inputs: Sequence[torch.Tensor],
                  forward: Callable[[torch.Tensor], torch.Tensor], device: torch.device) -> torch.Tensor:
    """Held-out inputs (1, 3, H, W) next to the model's outputs (``forward(x)``), as one grid image; ``model``
    is in eval mode meanwhile."""
    model.eval()
    tiles = []
    with torch.no_grad():
        for x in inputs:
            y = forward(x.to(device)).float().cpu()
            tiles += [x[0], y[0]]
    model.train()
    return preview_grid(tiles)
