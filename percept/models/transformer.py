"""The image transformation network of Johnson, Alahi & Fei-Fei (2016), "Perceptual Losses for
Real-Time Style Transfer and Super-Resolution", with the fixes that became standard:

* reflection padding instead of zero padding (no border artefacts);
* instance normalisation instead of batch norm (Ulyanov et al. 2016);
* nearest-neighbour upsampling followed by a convolution instead of a transposed convolution
  (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts");
* a sigmoid output, so the image is in [0, 1] by construction.

The input is reflect-padded to a multiple of 4 inside ``forward`` and the output cropped back, so
the output has the input's size for any H, W. Widths and depth are arguments; the default is the
paper's 32-64-128 with 5 residual blocks.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from percept.checkpoint import load_network
from percept.models.specs import ARCH_DEFAULTS, arch_default  # noqa: F401 - re-exported
from percept.registry import ModelKind, find_model


class ConvLayer(nn.Sequential):
    """Reflection pad + conv (+ instance norm + ReLU)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, norm: bool = True, relu: bool = True):
        layers: list[nn.Module] = [nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride)]
        if norm:
            layers.append(nn.InstanceNorm2d(cout, affine=True))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 conv layers with an identity shortcut (He et al. 2016), as in Johnson et al."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvLayer(ch, ch, 3), ConvLayer(ch, ch, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleConv(nn.Module):
    """Nearest-neighbour x2 upsampling then a conv layer (no checkerboard artefacts)."""

    def __init__(self, cin: int, cout: int, k: int = 3, norm: bool = True, relu: bool = True) -> None:
        super().__init__()
        self.conv = ConvLayer(cin, cout, k, norm=norm, relu=relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TransformerNet(nn.Module):
    """Feed-forward style transfer network: RGB [0, 1] in, RGB [0, 1] out, same size.

    Args:
        channels: widths of the three encoder stages (paper: 32, 64, 128).
        n_residual: number of residual blocks at the bottleneck (paper: 5).
        output: ``"sigmoid"``: y = sigmoid(f(x)); ``"residual"``: y = sigmoid(logit(0.05 + 0.9 x) + f(x))
            with the last convolution zero-initialised, so the untrained network is (almost) the
            identity and training only has to learn the change the style asks for. The 0.05 margin
            keeps black and white pixels off the sigmoid's flat tails, where they could not change.
    """

    min_size = 8
    """Smallest height and width the network takes (padded to 8, its bottleneck is 2x2)."""

    def __init__(self, channels: Sequence[int] = (32, 64, 128), n_residual: int = 5,
                 output: str = "sigmoid") -> None:
        super().__init__()
        if output not in ("sigmoid", "residual"):
            raise ValueError(f"unknown output '{output}'; use sigmoid or residual")
        c1, c2, c3 = (int(c) for c in channels)
        self.output = output
        self.config = {"channels": [c1, c2, c3], "n_residual": int(n_residual), "output": output}
        self.encoder = nn.Sequential(ConvLayer(3, c1, 9), ConvLayer(c1, c2, 3, 2), ConvLayer(c2, c3, 3, 2))
        self.residual = nn.Sequential(*[ResidualBlock(c3) for _ in range(n_residual)])
        self.decoder = nn.Sequential(UpsampleConv(c3, c2), UpsampleConv(c2, c1),
                                     ConvLayer(c1, 3, 9, norm=False, relu=False))
        if output == "residual":
            last = self.decoder[-1][1]  # type: ignore[index]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = pad_to_multiple(x, 4)
        y = self.decoder(self.residual(self.encoder(x)))
        if self.output == "residual":
            y = y + torch.logit(0.05 + 0.9 * x.clamp(0.0, 1.0))
        y = torch.sigmoid(y)
        return y[..., :h, :w]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad H and W on the bottom/right up to a multiple of ``multiple`` (crop the output back)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if torch.compiler.is_exporting():
        # ONNX export: H and W are symbolic, so pad unconditionally (a pad of 0 is a no-op) and
        # the exported graph takes any size itself, as eager mode does
        return F.pad(x, (0, pw, 0, ph), mode="reflect")
    if ph or pw:
        # reflection padding needs pad < size; replicate covers the tiny images that are left
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x


class SeparableResidualBlock(nn.Module):
    """Residual block of two depthwise-separable 3x3 convolutions (Howard et al. 2017, MobileNets)."""

    def __init__(self, ch: int) -> None:
        super().__init__()

        def sep(relu: bool) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3, groups=ch),
                                       nn.Conv2d(ch, ch, 1), nn.InstanceNorm2d(ch, affine=True)]
            return layers + ([nn.ReLU(inplace=True)] if relu else [])

        self.body = nn.Sequential(*sep(True), *sep(False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class RealtimeTransformerNet(nn.Module):
    """``--arch rt``: a transformer network sized for real time on a laptop CPU.

    Johnson et al.'s network spends its ~40 GMAC (512x512) on a 9x9 convolution at full resolution,
    ten 128-channel 3x3 convolutions at 1/4 resolution and two upsampling convolutions. This one
    downsamples three times with strided 3x3 convolutions (16-32-64 channels), runs its residual
    blocks at 1/8 resolution with depthwise-separable convolutions, and upsamples three times with
    upsample-then-conv (no checkerboard): about 1 GMAC at 512x512, ~40x less. Reflection padding,
    instance norm and a sigmoid output as in :class:`TransformerNet`; any H, W (padded to a
    multiple of 8 inside, cropped back).

    Args:
        channels: widths of the three downsampling stages (default 16, 32, 64).
        n_residual: separable residual blocks at the bottleneck (default 4).
    """

    min_size = 9
    """Smallest height and width: 9 px is padded to 16, a 2x2 bottleneck (8 px would leave 1x1,
    which reflection padding and instance norm cannot take)."""

    def __init__(self, channels: Sequence[int] = (16, 32, 64), n_residual: int = 4) -> None:
        super().__init__()
        c1, c2, c3 = (int(c) for c in channels)
        self.config = {"arch": "rt", "channels": [c1, c2, c3], "n_residual": int(n_residual), "output": "sigmoid"}
        self.encoder = nn.Sequential(ConvLayer(3, c1, 3, 2), ConvLayer(c1, c2, 3, 2), ConvLayer(c2, c3, 3, 2))
        self.residual = nn.Sequential(*[SeparableResidualBlock(c3) for _ in range(n_residual)])
        self.decoder = nn.Sequential(UpsampleConv(c3, c2), UpsampleConv(c2, c1),
                                     UpsampleConv(c1, 3, norm=False, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        y = self.decoder(self.residual(self.encoder(pad_to_multiple(x, 8))))
        return torch.sigmoid(y)[..., :h, :w]


ARCHITECTURES = {"johnson": TransformerNet, "rt": RealtimeTransformerNet}
"""``--arch`` names: ``johnson`` (the paper's network, the default) and ``rt`` (real time on a CPU)."""


MAX_WIDTH, MAX_BLOCKS = 4096, 64
"""Sanity limits for a checkpoint's config: a broken or hostile file must not allocate without bound."""


def _check_sizes(config: dict) -> None:
    channels, blocks = config.get("channels"), config.get("n_residual")
    if channels is not None:
        if (not isinstance(channels, (list, tuple)) or len(channels) != 3
                or not all(isinstance(c, int) and 0 < c <= MAX_WIDTH for c in channels)):
            raise ValueError(f"channels must be three widths from 1 to {MAX_WIDTH}, got {channels!r}")
    if blocks is not None and not (isinstance(blocks, int) and 0 <= blocks <= MAX_BLOCKS):
        raise ValueError(f"n_residual must be a whole number from 0 to {MAX_BLOCKS}, got {blocks!r}")


def build_transformer(config: dict) -> nn.Module:
    """The network a checkpoint's ``config`` describes (``arch`` missing means ``johnson``)."""
    arch = config.get("arch", "johnson")
    _check_sizes(config)
    if arch == "rt":
        return RealtimeTransformerNet(config.get("channels") or arch_default("rt", "channels"),
                                      config.get("n_residual") or arch_default("rt", "n_residual"))
    if arch == "johnson":
        return TransformerNet(config.get("channels") or arch_default("johnson", "channels"),
                              config.get("n_residual") or arch_default("johnson", "n_residual"),
                              config.get("output", "sigmoid"))
    raise ValueError(f"unknown architecture '{arch}'; known: {', '.join(ARCHITECTURES)}")


def load_style_network(model: str | os.PathLike) -> tuple[nn.Module, dict]:
    """Load a style network by model name or ``.pt`` path; returns (network in eval mode, model card)."""
    path = find_model(model).require_pt("this needs the PyTorch weights; use the onnx backend")
    return load_network(path, ModelKind.STYLE, "a style model", build_transformer)
