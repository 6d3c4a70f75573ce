"""Texture synthesis from Gram matrices alone: Gatys, Ecker & Bethge (2015), "Texture Synthesis Using
Convolutional Neural Networks" (NIPS).

A texture is summarised by the Gram matrices (channel correlations, averaged over positions) of a few
layers of VGG19; a new sample of the texture is an image with the same Gram matrices, found by
optimising white noise with L-BFGS-B (pixels bounded to [0, 1]). No content term, so nothing fixes where things go: the result
has the source's local structure (strokes, blobs, colours) rearranged, at any output size.

The paper matched ``conv1_1, pool1, pool2, pool3, pool4`` of a VGG19 whose max pooling was replaced
by average pooling ("improves the gradient flow"); our default is the style-transfer set
``relu1_1 .. relu5_1`` with the trained max pooling (the same layers and size-normalised loss as
:class:`~percept.models.losses.StyleLoss`), and ``layers=PAPER_LAYERS, pooling="avg"`` gives the
paper's setting.

Typical use::

    res = synthesize_texture(load_image("bricks.jpg"), size=256, iterations=200)
    res.image.save("bricks_texture.png"); print(res.loss_initial, res.loss_final)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import torch
from PIL import Image
from tqdm import tqdm

from percept.device import resolve_device
from percept.errors import PerceptError
from percept.images import resize_long_side, to_image, to_tensor
from percept.models.losses import DEFAULT_STYLE_LAYERS, StyleLoss
from percept.models.vgg import LAYERS, LossNetwork, check_layers
from percept.visualize.options import TextureOptions

PAPER_LAYERS: tuple[str, ...] = ("conv1_1", "pool1", "pool2", "pool3", "pool4")
"""The layers of Gatys et al.'s texture model (use with ``pooling="avg"``)."""

LAYER_PRESETS = {"style": DEFAULT_STYLE_LAYERS, "paper": PAPER_LAYERS}


def resolve_layers(layers: Sequence[str] | str | None) -> tuple[str, ...]:
    """``None`` / ``"style"`` (relu1_1..relu5_1), ``"paper"`` (conv1_1, pool1..pool4), or a list /
    comma-separated string of layer names."""
    if layers is None:
        return tuple(DEFAULT_STYLE_LAYERS)
    if isinstance(layers, str):
        if layers in LAYER_PRESETS:
            return tuple(LAYER_PRESETS[layers])
        layers = [p.strip() for p in layers.split(",") if p.strip()]
    layers = tuple(check_layers(layers))
    if not layers:
        raise PerceptError("give at least one layer (or a preset: style, paper)")
    return layers


@dataclass
class TextureResult:
    """What :func:`synthesize_texture` returns."""

    image: Image.Image
    tensor: torch.Tensor            # (1, 3, H, W) in [0, 1], on the CPU
    loss_initial: float             # Gram loss of the starting noise
    loss_final: float               # ... of the result
    seconds: float
    history: list[float] = field(default_factory=list)
    settings: dict = field(default_factory=dict)


def _lbfgsb(img: torch.Tensor, loss_fn, iterations: int, history: list[float], bar) -> torch.Tensor:
    """Minimise ``loss_fn(img)`` over pixels in [0, 1] with L-BFGS-B (SciPy), as Gatys et al.'s code did.

    Bounds matter: PyTorch's L-BFGS has none, and clamping after each of its steps breaks its curvature
    pairs (from noise it stalls within a few iterations); L-BFGS-B keeps the box exactly."""
    import numpy as np
    from scipy.optimize import minimize

    shape, dev = img.shape, img.device
    last = {"loss": float("nan")}

    def f(z: np.ndarray):
        x = torch.from_numpy(z.reshape(shape)).to(dev, torch.float32).requires_grad_(True)
        loss = loss_fn(x)
        (g,) = torch.autograd.grad(loss, x)
        last["loss"] = float(loss.detach())
        return last["loss"], g.detach().cpu().double().numpy().ravel()

    def step(_z: np.ndarray) -> None:
        history.append(last["loss"])
        bar.update(1)
        bar.set_postfix(gram_loss=f"{last['loss']:.4g}")

    z0 = img.detach().cpu().double().numpy().ravel()
    res = minimize(f, z0, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * z0.size, callback=step,
                   options=dict(maxiter=iterations, maxfun=iterations * 3, maxcor=50, ftol=0.0, gtol=0.0))
    return torch.from_numpy(res.x.reshape(shape)).to(dev, torch.float32).clamp(0, 1)


def synthesize_texture(texture: Image.Image, size: int | None = TextureOptions.size,
                       iterations: int = TextureOptions.iterations, optimizer: str = TextureOptions.optimizer,
                       layers: Sequence[str] | str | None = None, pooling: str = TextureOptions.pooling,
                       output_size: tuple[int, int] | None = None, lr: float = TextureOptions.lr, device: str = "auto",
                       seed: int = 0, progress: bool = True, net: LossNetwork | None = None) -> TextureResult:
    """Synthesise a new sample of ``texture`` by matching its Gram matrices from white noise.

    Args:
        texture: the source texture (PIL RGB); resized so its long side is ``size`` (``None``: as is).
        iterations: L-BFGS-B iterations (about two loss evaluations each) or Adam steps.
        optimizer: ``"lbfgs"`` (the paper's L-BFGS-B, pixels bounded to [0, 1]) or ``"adam"`` (rate ``lr``).
        layers: Gram layers (see :func:`resolve_layers`), equally weighted.
        pooling: ``"max"`` or ``"avg"`` (the paper's) in the VGG19 that computes the Grams.
        output_size: (width, height) of the result (default: the resized source's).
    """
    if optimizer not in ("lbfgs", "adam"):
        raise PerceptError(f"unknown optimizer '{optimizer}'; use lbfgs or adam")
    if iterations < 1:
        raise PerceptError(f"iterations must be at least 1, got {iterations}")
    lays = resolve_layers(layers)
    dev = resolve_device(device)
    t_start = time.perf_counter()
    src = resize_long_side(texture, size)
    deepest = max(lays, key=LAYERS.index)
    if net is None:
        net = LossNetwork(deepest, pooling=pooling)
    elif net.pooling != pooling:
        raise PerceptError(f"the given network uses {net.pooling} pooling, not {pooling}")
    net = net.to(dev)
    loss_fn = StyleLoss(lays)
    loss_fn.set_target(net, to_tensor(src).to(dev))
    w, h = output_size or src.size
    if min(w, h) < 16:
        raise PerceptError(f"the output must be at least 16x16 px, got {w}x{h}")
    gen = torch.Generator().manual_seed(seed)
    img = torch.rand(1, 3, h, w, generator=gen).to(dev)

    def gram_loss(x: torch.Tensor) -> torch.Tensor:
        return loss_fn(net(x, lays))

    with torch.no_grad():
        initial = float(gram_loss(img))
    bar = tqdm(total=iterations, desc=f"texture ({optimizer})", disable=not progress, dynamic_ncols=True)
    history: list[float] = []
    try:
        if optimizer == "lbfgs":
            img = _lbfgsb(img, gram_loss, iterations, history, bar)
        else:
            img.requires_grad_(True)
            opt = torch.optim.Adam([img], lr=lr)
            for _ in range(iterations):
                opt.zero_grad(set_to_none=True)
                loss = gram_loss(img)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    img.clamp_(0, 1)
                history.append(float(loss.detach()))
                bar.update(1)
                bar.set_postfix(gram_loss=f"{history[-1]:.4g}")
    finally:
        bar.close()
    if any(v != v for v in history):
        raise PerceptError("the loss became NaN; try --optimizer adam with a smaller --lr")
    with torch.no_grad():
        final = float(gram_loss(img))
    out = img.detach().cpu()
    settings = dict(size=size, iterations=iterations, optimizer=optimizer, layers=list(lays), pooling=pooling,
                    output_size=(w, h))
    return TextureResult(to_image(out), out, initial, final, time.perf_counter() - t_start, history, settings)


__all__ = ["PAPER_LAYERS", "LAYER_PRESETS", "resolve_layers", "TextureResult", "synthesize_texture"]
