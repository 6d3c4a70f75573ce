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

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


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

    def __init__(self, cin: int, cout: int, k: int = 3) -> None:
        super().__init__()
        self.conv = ConvLayer(cin, cout, k)

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
            last = self.decoder[-1][1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        if torch.compiler.is_exporting():
            # ONNX export: H and W are symbolic, so pad unconditionally (a pad of 0 is a no-op) and
            # the exported graph takes any size >= 4 px itself, as this method does
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        elif ph or pw:
            # reflection padding needs pad < size; replicate covers the tiny images that are left
            mode = "reflect" if (ph < h and pw < w) else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        y = self.decoder(self.residual(self.encoder(x)))
        if self.output == "residual":
            y = y + torch.logit(0.05 + 0.9 * x.clamp(0.0, 1.0))
        y = torch.sigmoid(y)
        return y[..., :h, :w]
