"""Pieces every training loop here shares (style networks, decoders): optimizer state that moves
between devices, preview grids for TensorBoard, non-finite checks."""

from __future__ import annotations

import torch

from percept.errors import PerceptError


def optimizer_to_cpu(state: dict) -> dict:
    """An optimizer ``state_dict`` with every tensor on the CPU (for a device-independent checkpoint)."""
    out = {"state": {}, "param_groups": state["param_groups"]}
    for k, v in state["state"].items():
        out["state"][k] = {n: (t.detach().cpu() if isinstance(t, torch.Tensor) else t) for n, t in v.items()}
    return out


def optimizer_to(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move a (resumed) optimizer's state tensors to ``device`` (the step counters stay on the CPU)."""
    for group in optimizer.state.values():
        for k, v in group.items():
            if isinstance(v, torch.Tensor) and k != "step":
                group[k] = v.to(device)


def preview_grid(tiles: list[torch.Tensor], nrow: int = 2) -> torch.Tensor:
    """(3, H, W) images of different sizes -> one grid image (padded with white), for TensorBoard."""
    from torchvision.utils import make_grid

    hmax = max(t.shape[1] for t in tiles)
    wmax = max(t.shape[2] for t in tiles)
    padded = [torch.nn.functional.pad(t, (0, wmax - t.shape[2], 0, hmax - t.shape[1]), value=1.0) for t in tiles]
    return make_grid(padded, nrow=nrow, padding=4, pad_value=1.0)


def check_finite_weights(model: torch.nn.Module, step: int, state_path) -> None:
    """Refuse to checkpoint weights that went NaN/inf (the last good checkpoint stays)."""
    for p in model.parameters():
        if not torch.isfinite(p).all():
            raise PerceptError(f"weights became non-finite by step {step}; kept the last good checkpoint {state_path}")


def nonfinite_loss_message(value: float, step: int, state_path) -> str:
    if state_path.exists():
        return (f"the loss became {value} at step {step}; training stopped. "
                f"The last good checkpoint is {state_path}")
    return f"the loss became {value} at step {step}; training stopped before any checkpoint was written"
