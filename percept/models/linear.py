"""Linear style transfer (Li, Liu, Li & Yang, CVPR 2019, "Learning Linear Transformations for Fast Image
and Video Style Transfer"): any painting in one feed-forward pass, one ONNX graph.

The photo's and the painting's VGG19 ``relu3_1`` features are centred; two small CNNs (:class:`_MatrixNet`)
each turn one of them into a ``rank x rank`` matrix (from the covariance of a compressed, ``rank``-channel
projection, through a fully connected layer), and their product ``T = M_style @ M_content`` is the learned
counterpart of WCT's whitening-then-colouring. ``T`` is applied to the photo's features compressed to
``rank`` channels (a 1x1 convolution), lifted back to the layer's width (another), the painting's mean
added, and a feature decoder (:class:`percept.models.decoder.FeatureDecoder`, trained for reconstruction,
frozen) turns the result into the picture. Only the transform is trained (encoder and decoder frozen), with
the perceptual losses, on photo/painting pairs; no eigen-decomposition runs at inference, so the whole
thing (encoder, transform, decoder) exports to ONNX as one graph with two inputs, photo and painting.

Caffe VGG19's ``relu3_1`` activations are in the hundreds; the transform works on features divided by the
decoder's per-channel RMS scale (its ``in_scale``), so its weights see numbers near 1.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from percept.checkpoint import load_network
from percept.models.decoder import FeatureDecoder, build_decoder
from percept.models.transformer import pad_to_multiple
from percept.models.vgg import LossNetwork, layer_channels, layer_stride
from percept.registry import ModelKind, find_model

__all__ = ["LINEAR_LAYER", "BakedLinear", "LinearTransform", "LinearStyleNet", "build_linear", "load_linear"]

LINEAR_LAYER = "relu3_1"
"""The layer the transform works on (Li et al.'s lighter model; their relu4_1 model is slower to decode)."""
RANK = 32
"""Channels of the compressed features the matrix acts on (Li et al.'s 32)."""


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class _MatrixNet(nn.Module):
    """Centred features (N, C, H, W) -> a (N, rank, rank) matrix: three 3x3 convolutions down to ``rank``
    channels, their (rank x rank) covariance over the positions, a fully connected layer."""

    def __init__(self, cin: int, rank: int) -> None:
        super().__init__()
        self.rank = rank
        self.conv = nn.Sequential(_conv(cin, 128), nn.ReLU(inplace=True), _conv(128, 64), nn.ReLU(inplace=True),
                                  _conv(64, rank))
        self.fc = nn.Linear(rank * rank, rank * rank)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        y = self.conv(f)
        n, r = y.shape[0], self.rank
        y = y.flatten(2)
        cov = torch.bmm(y, y.transpose(1, 2)) / y.shape[2]
        return self.fc(cov.reshape(n, r * r)).reshape(n, r, r)


class LinearTransform(nn.Module):
    """(content features, style features) of one VGG19 layer -> transformed features, same shape as the
    content's. ``alpha`` blends them with the content features (1: all style)."""

    def __init__(self, layer: str = LINEAR_LAYER, rank: int = RANK) -> None:
        super().__init__()
        cin = layer_channels(layer)
        self.layer, self.rank = layer, rank
        self.register_buffer("scale", torch.ones(1, cin, 1, 1))
        self.cnet, self.snet = _MatrixNet(cin, rank), _MatrixNet(cin, rank)
        self.compress = nn.Conv2d(cin, rank, 1)
        self.unzip = nn.Conv2d(rank, cin, 1)

    scale: torch.Tensor

    def style_code(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the transform needs of a painting: (its matrix (N, rank, rank), its scaled feature mean
        (N, C, 1, 1)); computed once per painting where it does not change (a webcam, a folder of photos)."""
        sf = style * self.scale.to(style.dtype)
        sm = sf.mean((2, 3), keepdim=True)
        return self.snet(sf - sm), sm

    def transfer(self, content: torch.Tensor, code: tuple[torch.Tensor, torch.Tensor], alpha: float = 1.0) -> torch.Tensor:
        """Content features transformed by a painting's :meth:`style_code`."""
        m_style, sm = code
        s = self.scale.to(content.dtype)
        cf = content * s
        cc = cf - cf.mean((2, 3), keepdim=True)
        n = cf.shape[0]  # one painting for a batch of photos, or one each (expand is a no-op then)
        m_style, sm = m_style.expand(n, -1, -1), sm.expand(n, -1, -1, -1)
        t = torch.bmm(m_style, self.cnet(cc))
        h, w = cf.shape[2], cf.shape[3]
        moved = torch.bmm(t, self.compress(cc).flatten(2)).reshape(n, self.rank, h, w)
        out = (self.unzip(moved) + sm) / s
        return out if alpha >= 1.0 else alpha * out + (1.0 - alpha) * content

    def forward(self, content: torch.Tensor, style: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
        return self.transfer(content, self.style_code(style), alpha)


class LinearStyleNet(nn.Module):
    """Photo (N, 3, H, W) and painting (N or 1, 3, h, w), RGB in [0, 1] -> the stylised photo (N, 3, H, W).

    The encoder is percept's VGG19 (up to ``relu3_1``, never trained); ``transform`` and ``decoder`` come
    from the checkpoint. Any photo size from :attr:`min_size` up (padded to the layer's stride inside and
    cropped back); the painting at any size from 16 px (the style side's statistics are averages).

    Example:
        >>> net = LinearStyleNet(FeatureDecoder("relu3_1", 64, 1))
        >>> net(torch.rand(1, 3, 64, 80), torch.rand(1, 3, 64, 64)).shape
        torch.Size([1, 3, 64, 80])
    """

    min_size = 16

    def __init__(self, decoder: FeatureDecoder, transform: LinearTransform | None = None) -> None:
        super().__init__()
        layer = decoder.layer
        self.transform = transform or LinearTransform(layer)
        if self.transform.layer != layer:
            raise ValueError(f"the transform works on {self.transform.layer}, the decoder inverts {layer}")
        self.decoder = decoder
        self.encoder = LossNetwork(layer)
        self.layer, self.stride = layer, layer_stride(layer)
        self.config = {"layer": layer, "rank": self.transform.rank, "decoder": dict(decoder.config)}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, [self.layer])[self.layer]

    def state_dict(self, *args, **kwargs):  # the encoder is percept's VGG19: not stored in checkpoints
        state = super().state_dict(*args, **kwargs)
        return type(state)((k, v) for k, v in state.items() if not k.startswith("encoder."))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        own = {k: v for k, v in super().state_dict().items() if k.startswith("encoder.")}
        return super().load_state_dict({**state_dict, **own}, strict=strict, assign=assign)

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h, w = content.shape[-2:]
        x = pad_to_multiple(content, self.stride)
        return self.decoder(self.transform(self.features(x), self.features(style)))[..., :h, :w]


class BakedLinear(torch.nn.Module):
    """A linear style model with one painting's code held as buffers: photo (N, 3, H, W) -> picture."""

    def __init__(self, net: LinearStyleNet, painting: torch.Tensor) -> None:
        super().__init__()
        self.net = net.eval()
        x = painting
        with torch.inference_mode():
            m, mean = net.transform.style_code(net.features(x))
        self.matrix: torch.Tensor
        self.mean: torch.Tensor
        self.register_buffer("matrix", m.clone())
        self.register_buffer("mean", mean.clone())
        self.min_size = net.min_size

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        f = self.net.features(pad_to_multiple(image, self.net.stride))
        return self.net.decoder(self.net.transform.transfer(f, (self.matrix, self.mean)))[..., :h, :w]


def build_linear(config: dict) -> LinearStyleNet:
    """The network a checkpoint's ``config`` describes (sizes checked by :func:`build_decoder`)."""
    rank = config.get("rank", RANK)
    if not (isinstance(rank, int) and 1 <= rank <= 256):
        raise ValueError(f"rank must be a whole number from 1 to 256, got {rank!r}")
    decoder = build_decoder(config["decoder"])
    if decoder.layer != config.get("layer", decoder.layer):
        raise ValueError(f"layer {config.get('layer')} but a decoder for {decoder.layer}")
    return LinearStyleNet(decoder, LinearTransform(decoder.layer, rank))


def load_linear(model: str | os.PathLike = "linear_relu3_1") -> tuple[LinearStyleNet, dict]:
    """Load a linear style transfer model by name or ``.pt`` path; returns (network in eval mode, card)."""
    path = find_model(model).require_pt("the linear method runs from its PyTorch weights here")
    net, card = load_network(path, ModelKind.LINEAR, "a linear style transfer model", build_linear)
    assert isinstance(net, LinearStyleNet)
    return net, card
