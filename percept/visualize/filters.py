"""Looking at the loss network directly: its learned filters and its feature maps for a photo.

* **Filters.** The first layer (``conv1_1``) sees RGB pixels, so each of its 64 filters (3x3x3) can be
  drawn as a tiny colour image - the colour blobs and oriented edges of Krizhevsky et al. (2012,
  Fig. 3) and Zeiler & Fergus (2014). Two normalisations are drawn: **per filter** (each filter
  stretched to [0, 1] on its own: shows every filter's pattern) and **joint** (one scale for all:
  shows which filters are strong). Caffe VGG19 weights act on BGR input; the channels are flipped
  so the pictures are RGB.

  Deeper filters act on feature maps, not colours, so they cannot be drawn as pictures of pixels.
  The mean over input channels mostly cancels out (positive and negative slices), so we draw what
  a filter actually uses instead: for each output filter (a row), its **K strongest input-channel
  slices** (largest L2 norm; each labelled with the input channel), on one signed, diverging scale
  per filter (red positive, blue negative, white zero) so the slices' relative strength is visible.
  A second picture, the **connection-strength matrix** ``||W[out, in]||``, shows how sparsely
  each filter draws on the previous layer.

* **Activations.** The feature maps of chosen layers for an image (Zeiler & Fergus 2014; Yosinski
  et al. 2015's deep-visualisation toolbox), as labelled grids: the input photo first, then the
  first N channels or the N most active ones (by mean activation), each stretched to [0, 1] on its
  own and drawn with the viridis colour map; a channel that is flat (dead for this image) is drawn
  black rather than stretched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from percept.errors import PerceptError
from percept.images import to_float, to_uint8
from percept.models.vgg import LAYERS, LossNetwork, check_layers
from percept.visualize.common import montage, normalize01
from percept.visualize.options import ActivationsOptions, FiltersOptions

CONV_LAYERS: tuple[str, ...] = tuple(n for n in LAYERS if n.startswith("conv"))


def _check_conv_layer(layer: str) -> str:
    check_layers([layer])
    if layer not in CONV_LAYERS:
        raise PerceptError(f"'{layer}' has no weights; filters live in conv layers: {', '.join(CONV_LAYERS)}")
    return layer


def conv_weights(layer: str = "conv1_1", net: LossNetwork | None = None) -> torch.Tensor:
    """The ``(out, in, 3, 3)`` weights of a conv layer of the Caffe VGG19. For ``conv1_1`` the input
    channels are flipped to RGB order (the Caffe weights see BGR)."""
    _check_conv_layer(layer)
    if net is None:
        net = LossNetwork(layer)
    w = getattr(net, layer).weight.detach().float().cpu()
    if layer == "conv1_1" and getattr(net, "weights", "caffe") == "caffe":
        w = w.flip(1)
    return w


def first_layer_tiles(net: LossNetwork | None = None, joint: bool = False) -> list[torch.Tensor]:
    """``conv1_1``'s 64 filters as (3, 3, 3) RGB tensors in [0, 1]: stretched per filter, or with one
    scale for all (``joint=True``)."""
    w = conv_weights("conv1_1", net)
    if joint:
        w = normalize01(w)
        return [t for t in w]
    return [normalize01(t) for t in w]


def signed_colors(t: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """A signed 2-D tensor -> (3, H, W) RGB on a diverging scale: white at 0, red for +scale, blue for
    -scale (``scale`` defaults to the tensor's largest magnitude)."""
    t = t.detach().float()
    s = float(scale if scale is not None else t.abs().max())
    v = (t / s).clamp(-1, 1) if s > 0 else torch.zeros_like(t)
    pos, neg = v.clamp_min(0), (-v).clamp_min(0)
    r = 1 - neg
    g = 1 - pos - neg
    b = 1 - pos
    return torch.stack([r, g, b]).clamp(0, 1)


@dataclass
class FilterPictures:
    """What :func:`filter_pictures` returns: named pictures and what is in them."""

    layer: str
    images: dict[str, Image.Image]                 # file stem -> picture
    tiles: int                                     # filter tiles in the main montage
    filters: list[int] = field(default_factory=list)  # output filters shown


def filter_pictures(layer: str = FiltersOptions.layer, max_filters: int | None = None,
                    slices: int = FiltersOptions.slices, tile: int | None = None,
                    net: LossNetwork | None = None) -> FilterPictures:
    """Montages of a conv layer's filters.

    ``conv1_1``: ``{layer}_per_filter`` and ``{layer}_joint`` (all 64 RGB filters, 8x8, each ``tile``
    px). Deeper layers: ``{layer}_slices`` (one row per filter: its ``slices`` strongest input-channel
    slices, signed colours) and ``{layer}_strength`` (the ``||W[out, in]||`` matrix, one pixel per
    connection, scaled up).

    Args:
        layer: a conv layer, ``conv1_1`` ... ``conv5_4``.
        max_filters: how many output filters to draw (default: all 64 of conv1_1; 16 for deeper).
        slices: input-channel slices per filter for deeper layers.
        tile: side of one filter tile in pixels (default 48; deeper layers' tiles carry labels).
    """
    w = conv_weights(layer, net)
    tile = tile or 48
    n_out, n_in = w.shape[:2]
    if max_filters is None:
        max_filters = n_out if layer == "conv1_1" else 16
    if max_filters < 1:
        raise PerceptError("the number of filters to draw must be at least 1")
    shown = list(range(min(max_filters, n_out)))
    images: dict[str, Image.Image] = {}
    if layer == "conv1_1":
        joint = normalize01(w[shown])
        per = [normalize01(w[i]) for i in shown]
        cols = int(np.ceil(np.sqrt(len(shown))))
        images[f"{layer}_per_filter"] = montage(per, cols=cols, tile=tile, pad=2)
        images[f"{layer}_joint"] = montage(list(joint), cols=cols, tile=tile, pad=2)
        return FilterPictures(layer, images, len(shown), shown)
    if slices < 1:
        raise PerceptError("the number of slices per filter must be at least 1")
    k = min(slices, n_in)
    tiles, labels = [], []
    for o in shown:
        norms = w[o].flatten(1).norm(dim=1)
        top = norms.argsort(descending=True)[:k].tolist()
        scale = float(w[o, top].abs().max())
        for j, i in enumerate(top):
            tiles.append(signed_colors(w[o, i], scale))
            labels.append(f"f{o} in{i}" if j == 0 else f"in{i}")
    images[f"{layer}_slices"] = montage(tiles, labels=labels, cols=k, tile=tile, pad=2)
    strength = w.flatten(2).norm(dim=2)  # (out, in)
    hi = float(torch.quantile(strength.flatten(), 0.995))  # a few very strong links would flatten the rest
    s = (strength / max(hi, 1e-12)).clamp(0, 1)
    import cv2

    rgb = cv2.applyColorMap((s.numpy() * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)[..., ::-1]
    pic = Image.fromarray(np.ascontiguousarray(rgb))
    zoom = max(1, 512 // max(n_out, n_in))
    images[f"{layer}_strength"] = pic.resize((n_in * zoom, n_out * zoom), Image.NEAREST)
    return FilterPictures(layer, images, len(tiles), shown)


# ------------------------------------------------------------------------------------- activations

def _viridis(t: torch.Tensor) -> torch.Tensor:
    """(H, W) in [0, 1] -> (3, H, W) viridis colours."""
    import cv2

    rgb = to_float(cv2.applyColorMap(to_uint8(t.cpu().numpy()), cv2.COLORMAP_VIRIDIS)[..., ::-1])
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


@dataclass
class ActivationGrid:
    """One layer's feature maps drawn as a labelled grid."""

    layer: str
    image: Image.Image          # the montage (input photo first, then the channels)
    channels: list[int]         # channel indices shown, in grid order
    labels: list[str]           # one label per tile (``"input"`` first)
    means: list[float]          # mean activation of each shown channel


def select_channels(feat: torch.Tensor, max_channels: int, order: str = "index") -> list[int]:
    """Channel indices of a (C, H, W) feature map: the first ``max_channels`` (``order="index"``)
    or the most active by mean activation (``order="top"``)."""
    if max_channels < 1:
        raise PerceptError("--max-channels must be at least 1")
    c = feat.shape[0]
    n = min(max_channels, c)
    if order == "index":
        return list(range(n))
    if order == "top":
        return feat.flatten(1).mean(1).argsort(descending=True)[:n].tolist()
    raise PerceptError(f"unknown channel order '{order}'; use index or top")


@torch.no_grad()
def activation_grids(image: torch.Tensor, layers: Sequence[str], max_channels: int = ActivationsOptions.max_channels,
                     order: str = "index", tile: int = ActivationsOptions.tile,
                     net: LossNetwork | None = None) -> list[ActivationGrid]:
    """Feature maps of ``layers`` for one image (1, 3, H, W) in [0, 1], one labelled grid per layer.

    Each tile is one channel stretched to [0, 1] on its own (viridis); a flat channel is black. Labels
    read ``CHANNEL:MEAN`` (mean activation over the map)."""
    layers = check_layers(layers)
    if not layers:
        raise PerceptError("give at least one layer")
    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError("activation_grids takes one image (1, 3, H, W)")
    deepest = max(layers, key=LAYERS.index)
    if net is None:
        net = LossNetwork(deepest)
    dev = next(net.parameters()).device
    feats = net(image.to(dev), layers)
    out = []
    for layer in layers:
        f = feats[layer][0].float().cpu()
        chans = select_channels(f, max_channels, order)
        tiles: list[torch.Tensor] = [image[0].cpu()]
        labels = [f"input {layer}"]
        means = []
        for c in chans:
            m = f[c]
            flat = float(m.max() - m.min()) < 1e-6
            tiles.append(torch.zeros(3, *m.shape) if flat else _viridis(normalize01(m)))
            mean = float(m.mean())
            means.append(mean)
            labels.append(f"{c} (mean {mean:.3g})")
        sheet = montage(tiles, labels=labels, tile=tile, pad=3)
        out.append(ActivationGrid(layer, sheet, chans, labels, means))
    return out


__all__ = ["CONV_LAYERS", "conv_weights", "first_layer_tiles", "signed_colors", "FilterPictures",
           "filter_pictures", "ActivationGrid", "select_channels", "activation_grids"]
