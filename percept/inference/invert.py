"""Feature inversion with a trained decoder (Dosovitskiy & Brox 2016): image -> VGG19 features of a
layer -> decoder -> image. One forward pass; compare :func:`percept.visualize.inversion.invert_optimize`
(Mahendran & Vedaldi), which optimises the image instead.

>>> from percept.inference.invert import invert_decoder
>>> res = invert_decoder("photo.jpg", "relu3_1")
>>> res.image.save("relu3_1.png"); print(res.image_error, res.feature_error, res.seconds)

Shipped decoders are ``checkpoints/decoder_{layer}.pt``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch
from PIL import Image

from percept.device import resolve_device
from percept.errors import PerceptError
from percept.evaluation import feature_space_error, image_space_error
from percept.images import ImageLike, load_image, resize_long_side, to_image, to_tensor
from percept.models.decoder import check_decoder_layer, crop_to_stride, load_decoder, shipped_decoder
from percept.models.vgg import LossNetwork, layer_stride

__all__ = ["DecoderInversion", "Inverter", "crop_to_stride", "invert_decoder", "load_decoder", "shipped_decoder"]


@dataclass
class DecoderInversion:
    image: Image.Image
    tensor: torch.Tensor
    """(1, 3, H, W) in [0, 1], the reconstruction (H, W: the photo's, cropped to the layer's stride)."""
    target: torch.Tensor
    """The photo as the decoder saw it (same crop)."""
    seconds: float
    """Wall time of features + decoder (what one inversion costs)."""
    image_error: float
    feature_error: float


class Inverter:
    """A decoder and the loss network as deep as its layer, on a device; call it on images."""

    def __init__(self, layer: str | None = None, model: str | os.PathLike | None = None, device: str = "auto",
                 net: LossNetwork | None = None) -> None:
        if model is None:
            if layer is None:
                raise PerceptError("give a layer or a decoder model")
            model = shipped_decoder(layer)
        self.decoder, self.card = load_decoder(model)
        if layer is not None:
            check_decoder_layer(layer)
            if layer != self.decoder.layer:
                raise PerceptError(f"{model} inverts {self.decoder.layer} features, not {layer}")
        self.layer = self.decoder.layer
        self.device = resolve_device(device)
        self.decoder.to(self.device)
        self.net = (net or LossNetwork(self.layer)).to(self.device)

    @torch.inference_mode()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(self.device), [self.layer])[self.layer]

    @torch.inference_mode()
    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Features of this decoder's layer -> image (N, 3, s*h, s*w) in [0, 1], on the CPU."""
        self.decoder.check_features(features)
        return self.decoder(features.to(self.device)).float().cpu()

    def __call__(self, image: ImageLike, size: int | None = None) -> DecoderInversion:
        x = crop_to_stride(to_tensor(resize_long_side(load_image(image), size)), layer_stride(self.layer))
        t0 = time.perf_counter()
        y = self.decode(self.features(x))
        seconds = time.perf_counter() - t0
        return DecoderInversion(to_image(y), y, x, seconds, image_space_error(y, x),
                                feature_space_error(self.net, y.to(self.device), x.to(self.device), self.layer))


def invert_decoder(image: ImageLike, layer: str | None = None, model: str | os.PathLike | None = None,
                   size: int | None = None, device: str = "auto") -> DecoderInversion:
    """Invert ``image``'s features at ``layer`` with the shipped decoder (or ``model``)."""
    return Inverter(layer, model, device)(image, size)
