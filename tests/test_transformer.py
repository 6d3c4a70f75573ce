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
