"""Torch modules and loss math: the VGG loss network, perceptual losses, the transformer networks and
the feature decoders (``percept.models.specs`` holds the torch-free facts about them).

Nothing here imports ``percept.training``, ``percept.visualize`` or ``percept.inference``. The names
below load on first use, so importing a torch-free submodule does not import torch.
"""

__all__ = ["LAYERS", "VGG_LAYERS", "LossNetwork", "PerceptualLoss", "StyleLoss", "TransformerNet",
           "content_loss", "gram_matrix", "tv_loss"]

_WHERE = {"PerceptualLoss": "losses", "StyleLoss": "losses", "content_loss": "losses", "gram_matrix": "losses",
          "tv_loss": "losses", "TransformerNet": "transformer", "LAYERS": "vgg", "VGG_LAYERS": "vgg",
          "LossNetwork": "vgg"}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"percept.models.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'percept.models' has no attribute {name!r}")
