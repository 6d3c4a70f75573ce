"""The deploy form: exact rewrites of trained networks that onnxruntime runs faster.

Each rewrite must compute the trained network's function; these tests compare the two on random
weights (so no trained coincidence hides a wrong tap) and on odd sizes, including the smallest.
"""

from __future__ import annotations

import onnx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from percept.models.decoder import FeatureDecoder
from percept.models.deploy import SeparableOutConv, SubPixelConv, deploy_form
from percept.models.transformer import RealtimeTransformerNet, TransformerNet


def _randomise(net: nn.Module, scale: float = 0.3, seed: int = 0) -> nn.Module:
    """Random weights everywhere, instance-norm affine parameters included."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return net.eval()


@pytest.mark.parametrize("h,w", [(1, 1), (2, 3), (5, 4), (7, 9)])
def test_subpixel_conv_equals_upsample_reflect_pad_conv(h, w):
    torch.manual_seed(h * 10 + w)
    conv = nn.Conv2d(5, 6, 3)
    x = torch.randn(2, 5, h, w)
    want = conv(F.pad(F.interpolate(x, scale_factor=2, mode="nearest"), (1, 1, 1, 1), mode="reflect"))
    got = SubPixelConv(conv)(x)
    assert got.shape == want.shape == (2, 6, 2 * h, 2 * w)
    assert torch.allclose(got, want, atol=1e-5)


def test_separable_out_conv_equals_the_9x9_conv():
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 3, 9)
    x = torch.randn(1, 8, 20, 17)
    assert torch.allclose(SeparableOutConv(conv)(x), conv(x), atol=1e-5)


def test_rewrites_refuse_layers_they_do_not_cover():
    with pytest.raises(ValueError, match="3x3, stride-1"):
        SubPixelConv(nn.Conv2d(4, 4, 3, stride=2))
    with pytest.raises(ValueError, match="stride-1"):
        SeparableOutConv(nn.Conv2d(4, 3, 9, padding=4))


@pytest.mark.parametrize("make,sizes,n_sub,n_sep", [
    (lambda: TransformerNet((8, 16, 16), 2), [(8, 8), (37, 53), (64, 30)], 2, 1),
    (lambda: TransformerNet((8, 16, 16), 1, output="residual"), [(19, 11)], 2, 1),
    (lambda: RealtimeTransformerNet((8, 8, 16), 2), [(9, 9), (37, 53), (64, 30)], 3, 0),
])
def test_deploy_form_of_a_style_network_gives_the_same_image(make, sizes, n_sub, n_sep):
    net = _randomise(make())
    fast = deploy_form(net)
    assert sum(isinstance(m, SubPixelConv) for m in fast.modules()) == n_sub
    assert sum(isinstance(m, SeparableOutConv) for m in fast.modules()) == n_sep
    assert not any(isinstance(m, (SubPixelConv, SeparableOutConv)) for m in net.modules())  # a copy
    for h, w in sizes:
        x = torch.rand(2, 3, h, w)
        with torch.no_grad():
            a, b = net(x), fast(x)
        assert a.shape == b.shape == x.shape
        assert (a - b).abs().max() < 1e-5


def test_deploy_form_of_a_feature_decoder_gives_the_same_image():
    # small weights: the decoder has no normalisation, so large ones saturate the sigmoid
    net = _randomise(FeatureDecoder("relu3_1", width=16, n_blocks=1, min_width=8), scale=0.1)
    fast = deploy_form(net)
    assert sum(isinstance(m, SubPixelConv) for m in fast.modules()) == 2
    x = torch.rand(1, 256, 6, 5)
    with torch.no_grad():
        a, b = net(x), fast(x)
    assert a.shape == b.shape == (1, 3, 24, 20) and 0.01 < a.std() < 0.4  # neither flat nor saturated
    assert (a - b).abs().max() < 1e-5


def test_exported_style_network_has_no_full_resolution_upsampling(tmp_path, tiny_model):
    from percept.inference.export import export_onnx

    export_onnx(tiny_model, tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    ops = [n.op_type for n in model.graph.node]
    assert "Resize" not in ops and ops.count("DepthToSpace") == 2
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["percept.min_size"] == "8"
