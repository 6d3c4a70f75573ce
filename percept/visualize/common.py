"""Shared pieces of the visualisation tools: targets (``layer`` / ``layer:channel`` of the loss
network, or a class of a classifier), hooks that never outlive a call, local classifiers, montages
and heatmap overlays.

Every tool in :mod:`percept.visualize` takes its target through :func:`parse_target` and draws its
pictures with :func:`montage` / :func:`overlay_heatmap`, so the messages and the looks agree.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from percept.checkpoint import read_torch_file
from percept.errors import PerceptError
from percept.images import to_image
from percept.models.vgg import IMAGENET_MEAN, IMAGENET_STD, LAYERS, check_layers, layer_channels


@dataclass(frozen=True)
class ChannelTarget:
    """A layer of the loss network, optionally one channel of it (``relu4_1:12``)."""

    layer: str
    channel: int | None = None

    def __str__(self) -> str:
        return self.layer if self.channel is None else f"{self.layer}:{self.channel}"


def parse_target(text: str, allow_layer_only: bool = True) -> ChannelTarget:
    """``"relu4_1"`` or ``"relu4_1:12"`` -> :class:`ChannelTarget`; a bad layer lists the valid ones,
    a bad channel gives the layer's range."""
    layer, _, ch = text.partition(":")
    check_layers([layer])
    if not ch:
        if not allow_layer_only:
            raise PerceptError(f"'{text}': give a channel as LAYER:CHANNEL, e.g. {layer}:0")
        return ChannelTarget(layer)
    return channel_target(text, layer, ch, layer_channels(layer))


def channel_target(text: str, layer: str, channel: str, n: int) -> ChannelTarget:
    """``layer:channel`` with the channel checked against the layer's ``n`` channels (the shared messages
    of the loss network's and a classifier's targets)."""
    try:
        c = int(channel)
    except ValueError:
        raise PerceptError(f"'{text}': the channel must be a whole number 0..{n - 1}") from None
    if not 0 <= c < n:
        raise PerceptError(f"'{text}': {layer} has channels 0..{n - 1}, got {c}")
    return ChannelTarget(layer, c)


def check_class_index(index: int, num_classes: int) -> int:
    if not 0 <= index < num_classes:
        raise PerceptError(f"class index {index} is out of range; this classifier has classes 0..{num_classes - 1}")
    return index


@contextlib.contextmanager
def hooks(registrations: Sequence[Callable[[], torch.utils.hooks.RemovableHandle]]) -> Iterator[list]:
    """Register hooks for the length of a ``with`` block and always remove them (captum's rule)::

        with hooks([lambda: module.register_forward_hook(fn)]) as handles:
            model(x)
    """
    handles = []
    try:
        for register in registrations:
            handles.append(register())
        yield handles
    finally:
        for h in handles:
            h.remove()


def count_hooks(model: nn.Module) -> int:
    """Forward, pre-forward and backward hooks registered anywhere in ``model`` (tests use it)."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(getattr(m, "_backward_pre_hooks", {})) for m in model.modules())


# ----------------------------------------------------------------------------------- classifiers

TORCHVISION_CLASSIFIERS = ("alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "resnet18", "resnet34", "resnet50",
                           "mobilenet_v2", "mobilenet_v3_small", "squeezenet1_1", "densenet121")


def hub_weights(arch: str) -> Path | None:
    """The newest ``ARCH-*.pth`` in the torch hub cache (``torch.hub.get_dir()/checkpoints``), if any."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    found = sorted(folder.glob(f"{arch}-*.pth"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    return found[-1] if found else None


def load_classifier(arch: str, weights: str | Path | None = None) -> nn.Module:
    """A torchvision classifier with weights from a local file (a state dict, as torch hub caches
    them), or, without ``weights``, the one torch hub has cached for ``arch``; nothing is downloaded.
    The model is in eval mode with gradients off for its weights."""
    import torchvision

    if arch not in TORCHVISION_CLASSIFIERS:
        raise PerceptError(f"unknown classifier '{arch}'; known: {', '.join(TORCHVISION_CLASSIFIERS)}")
    if weights is None:
        weights = hub_weights(arch)
        if weights is None:
            raise PerceptError(f"no weights for {arch}: give --weights PATH, or put {arch}-*.pth in "
                               f"{Path(torch.hub.get_dir()) / 'checkpoints'} (nothing is downloaded)")
    path = Path(weights)
    state = read_torch_file(path, "no such weight file (torch hub keeps them in ~/.cache/torch/hub/checkpoints)",
                            "not a readable torch weight file")
    model = getattr(torchvision.models, arch)(weights=None)
    try:
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    except (RuntimeError, AttributeError):
        raise PerceptError(f"{path}: these weights do not fit torchvision's {arch}") from None
    return model.eval().requires_grad_(False)


class Normalized(nn.Module):
    """Wrap a classifier that expects ImageNet-normalised input so it takes RGB in [0, 1] (the mean and
    standard deviation of :mod:`percept.models.vgg`, declared there once)."""

    def __init__(self, model: nn.Module, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


# ----------------------------------------------------------------------------------- pictures

def normalize01(t: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Rescale to [0, 1] by the tensor's own min and max (a flat tensor becomes 0.5)."""
    t = t.detach().float()
    lo, hi = t.min(), t.max()
    if float(hi - lo) < eps:
        return torch.full_like(t, 0.5)
    return (t - lo) / (hi - lo)


def montage(images: Sequence[Image.Image | torch.Tensor], labels: Sequence[str] | None = None,
            cols: int | None = None, tile: int | None = None, pad: int = 4,
            background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Lay images (PIL, or (3, H, W) / (1, H, W) / (H, W) tensors in [0, 1]) out on a grid, each with an
    optional label under it. ``tile`` resizes every image to that size (nearest for small ones, so
    filters stay crisp)."""
    pics = []
    for im in images:
        if isinstance(im, torch.Tensor):
            t = im.detach().float().cpu()
            if t.dim() == 2:
                t = t[None]
            if t.shape[0] == 1:
                t = t.expand(3, -1, -1)
            im = to_image(t[None].clamp(0, 1))
        pics.append(im.convert("RGB"))
    if not pics:
        raise PerceptError("nothing to draw")
    if tile:
        pics = [p.resize((tile, max(1, round(tile * p.height / p.width))),
                         Image.NEAREST if max(p.size) < tile else Image.Resampling.LANCZOS) for p in pics]
    cols = cols or math.ceil(math.sqrt(len(pics)))
    rows = math.ceil(len(pics) / cols)
    cw, ch = max(p.width for p in pics), max(p.height for p in pics)
    lh = 14 if labels else 0
    sheet = Image.new("RGB", (pad + cols * (cw + pad), pad + rows * (ch + lh + pad)), background)
    draw = ImageDraw.Draw(sheet)
    for i, p in enumerate(pics):
        r, c = divmod(i, cols)
        x, y = pad + c * (cw + pad), pad + r * (ch + lh + pad)
        sheet.paste(p, (x, y))
        if labels:
            draw.text((x, y + ch + 1), str(labels[i])[: max(4, cw // 6)], fill=(0, 0, 0))
    return sheet


def overlay_heatmap(photo: Image.Image, heat: torch.Tensor | np.ndarray, alpha: float = 0.5,
                    colormap: str = "jet") -> Image.Image:
    """A heatmap (H', W'; any range, rescaled to [0, 1] and resized to the photo) drawn over the photo."""
    import cv2

    h = heat.detach().float().cpu().numpy() if isinstance(heat, torch.Tensor) else np.asarray(heat, np.float32)
    h = np.squeeze(h)
    if h.ndim != 2:
        raise ValueError(f"a heatmap is 2-D, got shape {h.shape}")
    lo, hi = float(h.min()), float(h.max())
    h = (h - lo) / (hi - lo) if hi - lo > 1e-12 else np.zeros_like(h)
    h = cv2.resize(h.astype(np.float32), photo.size, interpolation=cv2.INTER_LINEAR)
    cmap = getattr(cv2, f"COLORMAP_{colormap.upper()}")
    colored = cv2.cvtColor(cv2.applyColorMap((h * 255).astype(np.uint8), cmap), cv2.COLOR_BGR2RGB)
    base = np.asarray(photo.convert("RGB"), dtype=np.float32)
    out = (1 - alpha) * base + alpha * colored.astype(np.float32)
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))


__all__ = ["ChannelTarget", "parse_target", "check_class_index", "hooks", "count_hooks", "load_classifier",
           "Normalized", "normalize01", "montage", "overlay_heatmap", "TORCHVISION_CLASSIFIERS", "LAYERS"]
