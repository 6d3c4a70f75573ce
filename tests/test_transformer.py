"""The transformer network: same size out as in, [0, 1] output, no transposed convolutions."""

import pytest
import torch
from torch import nn

from percept.models.transformer import TransformerNet


@pytest.mark.parametrize("h,w", [(16, 16), (17, 23), (33, 50), (64, 31)])
def test_output_size_equals_input_size(h, w):
    net = TransformerNet((8, 16, 16), n_residual=1).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, h, w))
    assert y.shape == (2, 3, h, w)
    assert y.min() >= 0 and y.max() <= 1


def test_paper_default_architecture():
    net = TransformerNet()
    assert net.config == {"channels": [32, 64, 128], "n_residual": 5, "output": "sigmoid"}
    assert len(net.residual) == 5
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())
    assert any(isinstance(m, nn.ReflectionPad2d) for m in net.modules())
    assert any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())
    assert 1.5e6 < sum(p.numel() for p in net.parameters()) < 1.8e6  # Johnson et al.: ~1.68M


def test_gradients_reach_every_parameter():
    net = TransformerNet((4, 8, 8), n_residual=2)
    net(torch.rand(1, 3, 20, 20)).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_residual_output_starts_near_the_identity():
    net = TransformerNet((4, 8, 8), n_residual=1, output="residual").eval()
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        y = net(x)
    assert torch.allclose(y, 0.05 + 0.9 * x, atol=1e-5)
    with pytest.raises(ValueError, match="unknown output"):
        TransformerNet(output="tanh")


@pytest.mark.parametrize("h,w", [(64, 64), (33, 47), (17, 100)])
def test_realtime_net_keeps_any_size_and_has_no_transposed_conv(h, w):
    from percept.models.transformer import RealtimeTransformerNet

    net = RealtimeTransformerNet().eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, h, w))
    assert y.shape == (2, 3, h, w) and 0 <= float(y.min()) and float(y.max()) <= 1
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())
    assert any(isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1 for m in net.modules())  # separable


def test_realtime_net_is_much_smaller_than_the_papers():
    from percept.models.transformer import RealtimeTransformerNet

    small = sum(p.numel() for p in RealtimeTransformerNet().parameters())
    full = sum(p.numel() for p in TransformerNet().parameters())
    assert small < full / 5


def test_build_transformer_from_config_round_trips():
    from percept.models.transformer import build_transformer

    for cfg in ({"arch": "rt", "channels": [8, 16, 32], "n_residual": 2},
                {"channels": [8, 16, 32], "n_residual": 2, "output": "sigmoid"}):
        net = build_transformer(cfg)
        again = build_transformer(net.config)
        again.load_state_dict(net.state_dict())
        assert again.config == net.config
    with pytest.raises(ValueError, match="unknown architecture 'vit'"):
        build_transformer({"arch": "vit"})
