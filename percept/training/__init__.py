"""Fitting network weights: the image-folder data pipeline (``data``), the one training loop (``loop.fit``:
distributed set-up, resume, time limit, NaN guard, progress, TensorBoard, checkpoints, model cards) and its
tasks: per-style networks (``style``, Johnson et al. 2016), feature decoders (``decoder``, Dosovitskiy & Brox
2016; AdaIN's, Huang & Belongie 2017), the linear style transform (``linear``, Li et al. 2019) and
distillation (``distill``; ``fast`` chains it with style training).

Modules import each other one way: ``configs``, ``common``, ``data``, ``state`` and ``temporal`` import no
other training module; ``distributed`` imports ``state``; ``loop`` imports those; the tasks import ``loop``;
``fast`` imports the tasks. Submodules load lazily; the names below are the public ones.
"""

__all__ = ["StyleTrainConfig", "train_style", "DecoderTrainConfig", "train_decoder", "DistillConfig",
           "distill_style", "LinearTrainConfig", "train_linear", "FitOptions", "Task", "fit"]

_WHERE = {"StyleTrainConfig": "style", "train_style": "style", "DecoderTrainConfig": "decoder",
          "train_decoder": "decoder", "DistillConfig": "distill", "distill_style": "distill",
          "LinearTrainConfig": "linear", "train_linear": "linear", "FitOptions": "loop", "Task": "loop", "fit": "loop"}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"percept.training.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'percept.training' has no attribute {name!r}")
