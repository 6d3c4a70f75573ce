"""Torch modules and loss math: the VGG loss network, perceptual losses and the transformer network.

Nothing here imports ``percept.training``, ``percept.visualize`` or ``percept.inference``.
"""

from percept.models.losses import PerceptualLoss, StyleLoss, content_loss, gram_matrix, tv_loss
from percept.models.transformer import TransformerNet
from percept.models.vgg import LAYERS, VGG_LAYERS, LossNetwork

__all__ = ["LAYERS", "VGG_LAYERS", "LossNetwork", "PerceptualLoss", "StyleLoss", "TransformerNet",
           "content_loss", "gram_matrix", "tv_loss"]
