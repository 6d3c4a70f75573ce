"""Feature-to-image decoders (Dosovitskiy & Brox, CVPR 2016, "Inverting Visual Representations with
Convolutional Networks"): a network that maps one VGG19 layer's features back to the image.

The decoder for a layer of stride ``s`` (1 for ``relu1_*``, 2 for ``relu2_*`` and ``pool1``, ...,
32 for ``pool5``) has ``log2(s)`` upsampling stages, each nearest-neighbour x2 followed by
convolutions (upsample-then-conv: no checkerboard artefacts, Odena et al. 2016), and halves the
width at each stage. Before them, a 3x3 convolution and ``n_blocks`` residual blocks work at the
feature resolution. Leaky ReLUs as in Dosovitskiy & Brox; no normalisation layers, so the output's
absolute colours and brightness are the network's to get right. A sigmoid puts the image in [0, 1].

VGG activations span several orders of magnitude between layers and channels (Caffe weights,
0-255 input); the decoder divides its input by a per-channel scale (``in_scale``, a buffer saved
with the weights) measured on training features before training starts
(:meth:`FeatureDecoder.calibrate`).

A layer of stride 1 (``relu1_1``, ``relu1_2``) can also have a *linear* decoder (``width=0``): one 3x3
convolution of the features, clamped to [0, 1], solved in closed form by least squares
(:func:`percept.training.decoder.fit_linear_decoder`). ``relu1_1`` is one convolution and a ReLU of the
photo with 64 filters over 27 inputs, so little is lost: the shipped ``decoder_relu1_1`` reconstructs the
held-out photos at about 41 dB PSNR, where a trained two-stage network reached 30 dB in 12 CPU minutes.

Features of an ``H x W`` image at stride ``s`` are ``floor(H/s) x floor(W/s)``; the decoder returns
``s`` times that, so an image whose sides are multiples of ``s`` comes back at its own size.
"""

from __future__ import annotations

import math
import os

import torch
from torch import nn
from torch.nn import functional as F

from percept.checkpoint import load_network
from percept.errors import PerceptError
from percept.models.vgg import LAYERS, layer_channels, layer_stride
from percept.registry import ModelKind, find_model, list_models

DECODER_LAYERS = tuple(n for n in LAYERS if not n.startswith("conv"))
"""The layers a decoder can invert: every VGG19 relu and pool layer."""


def check_decoder_layer(layer: str) -> str:
    """A layer a decoder can invert, or a :class:`PerceptError` that lists the valid ones."""
    if layer not in DECODER_LAYERS:
        what = "decoders invert relu/pool layers, not" if layer in LAYERS else "unknown layer"
        raise PerceptError(f"{what} '{layer}'; valid layers: {', '.join(DECODER_LAYERS)}")
    return layer


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=True)


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3))


class _Residual(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(ch, ch), _act(), _conv(ch, ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.body(x), 0.2)


class _Up(nn.Module):
    """x2 nearest-neighbour upsampling, then two 3x3 convolutions."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(cin, cout), _act(), _conv(cout, cout), _act())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(F.interpolate(x, scale_factor=2, mode="nearest"))


class FeatureDecoder(nn.Module):
    """VGG19 features of ``layer`` (N, C, h, w) -> RGB image in [0, 1] (N, 3, s*h, s*w).

    Args:
        layer: the VGG19 layer whose features it inverts (``relu1_1`` ... ``pool5``).
        width: channels at the feature resolution (default: the layer's channels, at most 256); 0: the
            linear decoder (stride-1 layers only; ``n_blocks`` must be 0).
        n_blocks: residual blocks at the feature resolution (default 2).
        min_width: the narrowest upsampling stage (default 32).

    Example:
        >>> dec = FeatureDecoder("relu3_1")
        >>> dec(torch.rand(1, 256, 16, 16)).shape
        torch.Size([1, 3, 64, 64])
    """

    def __init__(self, layer: str, width: int | None = None, n_blocks: int = 2, min_width: int = 32) -> None:
        super().__init__()
        check_decoder_layer(layer)
        cin, stride = layer_channels(layer), layer_stride(layer)
        width = int(width if width is not None else min(cin, 256))
        self.layer, self.stride, self.linear = layer, stride, width == 0
        self.config = {"layer": layer, "width": width, "n_blocks": int(n_blocks), "min_width": int(min_width)}
        self.register_buffer("in_scale", torch.ones(1, cin, 1, 1))
        if self.linear:
            if stride != 1 or n_blocks:
                raise PerceptError(f"a linear decoder (width 0) is one convolution: it inverts layers of stride 1 "
                                   f"(relu1_1, relu1_2) with no residual blocks; {layer} has stride {stride}"
                                   + (f" and {n_blocks} blocks were asked for" if n_blocks else ""))
            self.head: nn.Module = nn.Identity()
            self.up, self.out = nn.Sequential(), _conv(cin, 3)
            return
        self.head = nn.Sequential(_conv(cin, width), _act(), *[_Residual(width) for _ in range(n_blocks)])
        ups, ch = [], width
        for _ in range(int(math.log2(stride))):
            nxt = max(min_width, ch // 2)
            ups.append(_Up(ch, nxt))
            ch = nxt
        self.up = nn.Sequential(*ups)
        self.out = _conv(ch, 3)

    in_scale: torch.Tensor

    @property
    def in_channels(self) -> int:
        return int(self.in_scale.shape[1])

    @torch.no_grad()
    def calibrate(self, features: torch.Tensor) -> None:
        """Set the input scale from a batch of this layer's features: 1 / per-channel RMS."""
        rms = features.float().pow(2).mean(dim=(0, 2, 3), keepdim=True).sqrt()
        self.in_scale.copy_(1.0 / rms.clamp_min(rms.mean() * 1e-2 + 1e-6))

    def check_features(self, features: torch.Tensor) -> None:
        """Refuse features that cannot be this layer's (wrong rank or channel count)."""
        if features.dim() != 4 or features.shape[1] != self.in_channels:
            got = tuple(features.shape)
            raise PerceptError(f"this decoder inverts {self.layer} features ({self.in_channels} channels); "
                               f"got a tensor of shape {got}")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = self.head(features * self.in_scale.to(features.dtype))
        if self.linear:
            return self.out(h).clamp(0.0, 1.0)
        return torch.sigmoid(self.out(self.up(h)))


def build_decoder(config: dict) -> FeatureDecoder:
    """The decoder a checkpoint's ``config`` describes (sizes checked first: a broken or hostile file
    must not allocate without bound)."""
    for key, top in (("width", 4096), ("n_blocks", 64), ("min_width", 4096)):
        value = config.get(key)
        if value is not None and not (isinstance(value, int) and 0 <= value <= top):
            raise ValueError(f"{key} must be a whole number from 0 to {top}, got {value!r}")
    return FeatureDecoder(config["layer"], config.get("width"), config.get("n_blocks", 2), config.get("min_width", 32))


def load_decoder(model: str | os.PathLike) -> tuple[FeatureDecoder, dict]:
    """Load a decoder by model name or ``.pt`` path; returns (decoder in eval mode, model card)."""
    path = find_model(model).require_pt("a decoder runs from its PyTorch weights")
    net, card = load_network(path, ModelKind.DECODER, "a feature decoder", build_decoder)
    assert isinstance(net, FeatureDecoder)
    return net, card


def decoder_name(layer: str, adain: bool = False) -> str:
    """The name a decoder for ``layer`` is trained and looked up under: ``decoder_LAYER`` (reconstruction), or
    ``decoder_LAYER_adain`` (trained with AdaIN's style loss)."""
    return f"decoder_{layer}" + ("_adain" if adain else "")


def shipped_decoder(layer: str, adain: bool = False) -> str:
    """The name of the decoder for ``layer`` (shipped or the user's): ``decoder_LAYER``; with ``adain``,
    AdaIN's own ``decoder_LAYER_adain`` where one is installed, else the reconstruction one. Or an error
    naming the layers that have one."""
    check_decoder_layer(layer)
    models = list_models(ModelKind.DECODER)
    installed = {m.name for m in models if m.pt is not None}
    for name in [decoder_name(layer, True)] * adain + [decoder_name(layer)]:
        if name in installed:
            return name
    have = {str(m.card.get("layer", m.name)) for m in models}
    raise PerceptError(f"no shipped decoder for {layer} (shipped: {', '.join(sorted(have)) or 'none'}); train one with "
                       f"`percept train-decoder --layer {layer}` or use --method optimize")


def crop_to_stride(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Crop (N, C, H, W) bottom/right to multiples of ``stride`` (what a decoder gives back)."""
    h, w = x.shape[-2:]
    if h < stride or w < stride:
        raise PerceptError(f"image is too small for a layer of stride {stride}: {w}x{h}")
    return x[..., : h - h % stride, : w - w % stride]
