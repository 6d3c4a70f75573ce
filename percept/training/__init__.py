"""Fitting network weights: the image-folder data pipeline, the training loop and its tasks (style
networks, feature decoders, distillation), checkpoints and TensorBoard logging.

Submodules load lazily; the names below are the public ones.
"""

__all__ = ["StyleTrainConfig", "train_style", "DecoderTrainConfig", "train_decoder", "DistillConfig",
           "distill_style"]

_WHERE = {"StyleTrainConfig": "style", "train_style": "style", "DecoderTrainConfig": "decoder",
          "train_decoder": "decoder", "DistillConfig": "distill", "distill_style": "distill"}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"percept.training.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'percept.training' has no attribute {name!r}")
