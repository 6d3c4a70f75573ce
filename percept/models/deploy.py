"""Exact rewrites of a trained network into a form onnxruntime runs faster on a CPU.

The networks (style transformers and feature decoders) are trained in the form the papers
describe; :func:`deploy_form` returns a copy that computes the same function (up to float rounding, ~1e-6) with fewer multiply-adds and with layouts
that onnxruntime's blocked (NCHWc) convolutions handle well. ``percept export`` exports this form
and checks it against the trained network before writing anything. Measured on a 2-core CPU
(docs/BENCHMARKS.md, `scripts/bench_deploy.py`): 18-20% off the full-size network, 23-28% off the
real-time one.

Two rewrites:

* **Upsample-then-conv as a sub-pixel convolution.** Nearest x2 upsampling, a 1-pixel reflection
  pad and a 3x3 convolution see, for each of the four output phases (row and column parity), only a
  2x2 neighbourhood of the low-resolution input, with the 3x3 taps summed pairwise. So the layer is
  an edge pad of the *low-resolution* input, one 2x2 convolution with 4x the output channels (one
  group per phase) and a depth-to-space shuffle (Shi et al. 2016) - 16 instead of 36 multiply-adds
  per input/output channel pair and output pixel, and no full-resolution upsampled copy. Reflection
  padding of the upsampled map equals edge padding of the low-resolution one (row -1 of the
  upsampled map is its row 1, a copy of low-resolution row 0). The phases are stored swapped, so the
  shuffle's output is the wanted image shifted by one pixel, cropped by one slice.
* **A 9x9 convolution to 3 channels as two 1-D convolutions.** onnxruntime's blocked convolutions
  pad output channels to the SIMD width (8 or 16), so the last 32->3 layer wastes most of its work.
  It is rewritten as a 9x1 convolution to 27 channels (one per output channel and column offset)
  followed by a 1x9 convolution that sums each output channel's nine shifted maps: the same
  multiply-adds for the first, ~10% more for the second, at full SIMD width.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from percept.models.decoder import FeatureDecoder, _Up
from percept.models.transformer import ConvLayer, UpsampleConv


def _pair_taps(w: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """3 taps along ``dim`` -> the 2-tap kernels of output phase 0 and 1 after x2 nearest upsampling.

    Phase 0 (even output rows) sees low-res rows (i-1, i) with taps (w0, w1 + w2); phase 1 (odd
    rows) sees (i, i+1) with taps (w0 + w1, w2).
    """
    w0, w1, w2 = w.unbind(dim)
    return torch.stack([w0, w1 + w2], dim), torch.stack([w0 + w1, w2], dim)


class SubPixelConv(nn.Module):
    """``conv3x3(reflect_pad1(upsample_nearest_x2(x)))`` computed at the input's resolution.

    Args:
        conv: the trained 3x3, stride-1 ``nn.Conv2d`` that followed the upsampling and padding.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.groups != 1 or conv.padding != (0, 0):
            raise ValueError("SubPixelConv rewrites a 3x3, stride-1, ungrouped, unpadded convolution")
        w = conv.weight.detach()
        cout, cin = w.shape[:2]
        rows = _pair_taps(w, 2)  # each (cout, cin, 2, 3)
        phase = {(py, px): _pair_taps(rows[py], 3)[px] for py in (0, 1) for px in (0, 1)}
        # depth-to-space slot (qy, qx) holds phase (1 - qy, 1 - qx): the shuffled map is then the
        # upsampled output shifted by one pixel, cropped with a single slice in forward()
        slots = [phase[(1 - qy, 1 - qx)] for qy in (0, 1) for qx in (0, 1)]
        self.conv = nn.Conv2d(cin, 4 * cout, 2)
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(cout)
        with torch.no_grad():
            self.conv.weight.copy_(torch.stack(slots, 1).reshape(4 * cout, cin, 2, 2))
            self.conv.bias.copy_(bias.repeat_interleave(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.pixel_shuffle(self.conv(F.pad(x, (1, 1, 1, 1), mode="replicate")), 2)
        return y[..., 1:-1, 1:-1]


class SeparableOutConv(nn.Module):
    """A k x k convolution to a few channels as a k x 1 convolution to ``cout * k`` channels and a
    1 x k convolution that sums each output channel's k column-shifted maps (same result).

    Args:
        conv: the trained ``nn.Conv2d`` (unpadded, stride 1, ungrouped).
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if conv.stride != (1, 1) or conv.groups != 1 or conv.padding != (0, 0):
            raise ValueError("SeparableOutConv rewrites a stride-1, ungrouped, unpadded convolution")
        w = conv.weight.detach()  # (cout, cin, kh, kw)
        cout, cin, kh, kw = w.shape
        self.rows = nn.Conv2d(cin, cout * kw, (kh, 1), bias=False)
        self.cols = nn.Conv2d(cout * kw, cout, (1, kw))
        pick = torch.zeros(cout, cout * kw, 1, kw)
        for c in range(cout):
            for dx in range(kw):
                pick[c, c * kw + dx, 0, dx] = 1.0
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(cout)
        with torch.no_grad():
            # channel c * kw + dx of the first convolution: output channel c's column dx of taps
            self.rows.weight.copy_(w.permute(0, 3, 1, 2).reshape(cout * kw, cin, kh, 1))
            self.cols.weight.copy_(pick)
            self.cols.bias.copy_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cols(self.rows(x))


class _SubPixelStage(nn.Module):
    """An upsampling stage with its first (pad + 3x3 conv) swapped for :class:`SubPixelConv`; the
    layers after that convolution (instance norm, activations, more convolutions) are kept."""

    def __init__(self, conv: nn.Conv2d, rest: list[nn.Module]) -> None:
        super().__init__()
        self.up = SubPixelConv(conv)
        self.rest = nn.Sequential(*rest)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rest(self.up(x))


def deploy_form(net: nn.Module) -> nn.Module:
    """A copy of a trained network rewritten for fast inference (same outputs).

    Works on :class:`~percept.models.transformer.TransformerNet`,
    :class:`~percept.models.transformer.RealtimeTransformerNet` (any widths and depths) and
    :class:`~percept.models.decoder.FeatureDecoder`; other modules come back as an unchanged copy.
    """
    out = copy.deepcopy(net).eval()
    for m in out.modules():
        # an in-place activation on the cropped view SubPixelConv returns exports (torch.export's
        # functionalisation) as a slice-scatter back into the full map: four full-resolution transposes
        # and a ScatterND per stage, a quarter of a decoder's time in onnxruntime
        if getattr(m, "inplace", False) is True:
            m.inplace = False
    if isinstance(out, FeatureDecoder):
        for i, block in enumerate(out.up):
            if isinstance(block, _Up):  # body: (pad + conv), act, (pad + conv), act
                out.up[i] = _SubPixelStage(block.body[0][1], list(block.body)[1:])
        return out
    decoder = getattr(out, "decoder", None)
    if not isinstance(decoder, nn.Sequential):
        return out
    for i, block in enumerate(decoder):
        if isinstance(block, UpsampleConv) and block.conv[1].kernel_size == (3, 3):
            decoder[i] = _SubPixelStage(block.conv[1], list(block.conv)[2:])  # ConvLayer: pad, conv, ...
        elif isinstance(block, ConvLayer) and block[1].out_channels < 8 and block[1].kernel_size[0] > 3:
            conv = block[1]
            decoder[i] = nn.Sequential(block[0], SeparableOutConv(conv), *list(block)[2:])
    return out
