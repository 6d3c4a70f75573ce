"""Perceptual losses: Gram size normalisation, zero at the target, cached style targets, blending."""

import torch

from percept.models.losses import PerceptualLoss, StyleLoss, content_loss, gram_matrix, tv_loss
from percept.models.vgg import LossNetwork


def test_gram_is_size_normalised_and_symmetric():
    f = torch.rand(2, 8, 5, 7)
    g = gram_matrix(f)
    assert g.shape == (2, 8, 8)
    assert torch.allclose(g, g.transpose(1, 2))
    tiled = f.repeat(1, 1, 2, 3)  # the same statistics over a larger area
    assert torch.allclose(gram_matrix(tiled), g, atol=1e-6)


def test_content_loss_is_relative_and_zero_at_target():
    t = torch.rand(1, 4, 6, 6) + 1
    assert content_loss(t, t) == 0
    assert torch.isclose(content_loss(torch.zeros_like(t), t), torch.tensor(1.0))
    assert torch.isclose(content_loss(t * 0, t * 1000), torch.tensor(1.0))  # scale-free


def test_tv_is_zero_for_flat_images_and_grows_with_noise():
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert tv_loss(flat) == 0
    assert tv_loss(torch.rand(1, 3, 16, 16)) > tv_loss(torch.rand(1, 3, 16, 16) * 0.1)
    assert tv_loss(torch.rand(1, 3, 16, 16), beta=1.0) > 0


def test_style_loss_is_zero_for_the_style_image_and_targets_are_cached():
    net = LossNetwork("relu3_1")
    style = torch.rand(1, 3, 48, 48)
    loss = StyleLoss(["relu1_1", "relu2_1", "relu3_1"])
    loss.set_target(net, style)
    cached = {k: v.clone() for k, v in loss.targets.items()}
    feats = net(style, loss.layers)
    assert loss(feats) < 1e-10
    other = net(torch.rand(1, 3, 48, 48) * 0.2, loss.layers)
    assert loss(other) > 0.01
    assert all(torch.equal(cached[k], loss.targets[k]) for k in cached)  # computing a loss changes nothing


def test_style_blend_is_weighted_mean_of_grams():
    net = LossNetwork("relu2_1")
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32) * 0.5
    la, lb, lab = StyleLoss(["relu2_1"]), StyleLoss(["relu2_1"]), StyleLoss(["relu2_1"])
    la.set_target(net, a)
    lb.set_target(net, b)
    lab.set_target(net, [a, b], blend=[3, 1])
    expect = 0.75 * la.targets["relu2_1"] + 0.25 * lb.targets["relu2_1"]
    assert torch.allclose(lab.targets["relu2_1"], expect, rtol=1e-5)


def test_perceptual_loss_terms_and_gradients():
    loss = PerceptualLoss(content_weight=1.0, style_weight=5.0, tv_weight=2.0,
                          content_layers=["relu2_2"], style_layers=["relu1_1", "relu2_1"])
    assert loss.net.names[-1] == "relu2_2"  # built only as deep as needed
    loss.set_style(torch.rand(1, 3, 32, 32))
    x = torch.rand(1, 3, 32, 32)
    y = torch.rand(1, 3, 32, 32, requires_grad=True)
    out = loss(y, x)
    assert set(out) == {"content", "style", "tv", "total"}
    assert torch.isclose(out["total"], out["content"] + 5 * out["style"] + 2 * out["tv"])
    out["total"].backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    same = loss(x, x)
    assert same["content"] == 0
