"""Style transfer by image optimisation: Gatys, Ecker & Bethge (2015), "A Neural Algorithm of
Artistic Style" - the slow baseline that the feed-forward networks are compared with.

The image is optimised directly (L-BFGS by default, or Adam) to minimise the same
:class:`~percept.models.losses.PerceptualLoss` the networks are trained with, starting from the
content photo or from noise. Several styles can be blended (weighted mean of their Gram matrices).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image
from tqdm import tqdm

from percept.device import resolve_device
from percept.errors import PerceptError
from percept.images import resize_long_side, save_image, to_image, to_tensor
from percept.models.losses import PerceptualLoss
from percept.visualize.options import GatysOptions


@dataclass
class OptimizationResult:
    image: Image.Image
    losses: dict[str, float]
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def optimize_style(content: Image.Image, styles: Sequence[Image.Image] | Image.Image,
                   blend: Sequence[float] | None = None, iterations: int = GatysOptions.iterations,
                   optimizer: str = GatysOptions.optimizer, init: str = GatysOptions.init,
                   size: int | None = GatysOptions.size, content_weight: float = GatysOptions.content_weight,
                   style_weight: float = GatysOptions.style_weight, tv_weight: float = GatysOptions.tv_weight,
                   lr: float = 0.02, device: str = "auto", seed: int = 0,
                   snapshot_every: int = GatysOptions.snapshot_every, snapshot_dir: str | Path | None = None,
                   progress: bool = True, loss: PerceptualLoss | None = None,
                   style_size: int | None = None) -> OptimizationResult:
    """Optimise an image to match ``content``'s features and ``styles``' Gram matrices.

    Args:
        content: the photo (PIL RGB). Resized so its long side is ``size``.
        styles: one style image or several (blended by ``blend``, default equal).
        iterations: L-BFGS iterations (each may evaluate the loss a few times in its line search)
            or Adam steps.
        optimizer: ``"lbfgs"`` (Gatys et al.) or ``"adam"`` (learning rate ``lr``, pixels in [0, 1]).
        init: ``"content"`` (start from the photo) or ``"noise"``.
        style_size: long side of the style images (default: ``size``).
        snapshot_every: every N iterations, save the current image to ``snapshot_dir/step_N.png``.
        loss: a ready :class:`PerceptualLoss` to reuse (its weights then take precedence).

    Returns:
        the image, its final unweighted losses, the seconds taken and the loss history.
    """
    if optimizer not in ("lbfgs", "adam"):
        raise PerceptError(f"unknown optimizer '{optimizer}'; use lbfgs or adam")
    if init not in ("content", "noise"):
        raise PerceptError(f"unknown init '{init}'; use content or noise")
    dev = resolve_device(device)
    if isinstance(styles, Image.Image):
        styles = [styles]
    if not styles:
        raise PerceptError("at least one style image is needed")
    if blend is not None and len(blend) != len(styles):
        raise PerceptError(f"{len(styles)} style images but {len(blend)} blend weights")
    t_start = time.perf_counter()
    photo = resize_long_side(content, size)
    x0 = to_tensor(photo).to(dev)
    loss_fn = loss or PerceptualLoss(content_weight, style_weight, tv_weight)
    loss_fn.to(dev)
    ssize = style_size or size or max(photo.size)
    loss_fn.set_style([to_tensor(resize_long_side(s, ssize)).to(dev) for s in styles], blend)
    content_feats = loss_fn.content_targets(x0)
    gen = torch.Generator().manual_seed(seed)
    if init == "content":
        img = x0.clone()
    else:
        img = torch.rand(x0.shape, generator=gen).to(dev) * 0.2 + 0.4
    img.requires_grad_(True)
    opt = (torch.optim.LBFGS([img], lr=1.0, max_iter=1, history_size=50, line_search_fn="strong_wolfe")
           if optimizer == "lbfgs" else torch.optim.Adam([img], lr=lr))
    history: list[dict[str, float]] = []
    last: dict[str, torch.Tensor] = {}

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        out = loss_fn(img, content_feats=content_feats)
        out["total"].backward()
        last.update({k: v.detach() for k, v in out.items()})
        return out["total"]

    if snapshot_every and snapshot_dir is not None:
        Path(snapshot_dir).mkdir(parents=True, exist_ok=True)
    bar = tqdm(range(1, iterations + 1), desc=f"gatys ({optimizer})", disable=not progress, dynamic_ncols=True)
    for step in bar:
        opt.step(closure)
        with torch.no_grad():
            img.clamp_(0, 1)
        vals = {k: float(v) for k, v in last.items()}
        if not all(map(lambda v: v == v and abs(v) != float("inf"), vals.values())):
            raise PerceptError(f"the loss became non-finite at step {step}; try --optimizer adam or smaller weights")
        history.append(vals)
        bar.set_postfix(content=f"{vals['content']:.3f}", style=f"{vals['style']:.3f}")
        if snapshot_every and snapshot_dir is not None and step % snapshot_every == 0:
            save_image(to_image(img), Path(snapshot_dir) / f"step_{step:05d}.png")
    with torch.no_grad():
        final = {k: float(v) for k, v in loss_fn(img, content_feats=content_feats).items()}
    return OptimizationResult(to_image(img), final, time.perf_counter() - t_start, history)
