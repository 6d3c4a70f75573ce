"""A new per-style network in minutes on a CPU: distil it from an arbitrary-style teacher, then fine-tune
it with the perceptual losses (``percept train-style --teacher linear``).

Training a style network from scratch with perceptual losses costs a VGG19 forward and backward pass per
step; on two CPU cores ten minutes are a few hundred steps, too few for a new painting. An arbitrary-style
method (the linear model, WCT, AdaIN; :mod:`percept.inference.anystyle`) already knows how to paint any
picture in that painting's manner, so:

1. the teacher stylises a fixed set of random training crops once (a progress bar);
2. the student (``--arch``, the real-time network by default on a CPU) learns to reproduce them
   (:func:`percept.training.distill.distill_style`: L1 in pixel space, no loss network: thousands of steps
   in a few minutes);
3. the student is fine-tuned with the perceptual losses for the rest of the time
   (:func:`percept.training.style.train_style` with ``init``), which sharpens the painting's texture
   beyond the teacher's.

The teacher is given as a module (photos -> pictures); the command line builds it (``inference`` sits
beside ``training``, not below it). The model card records the teacher, both phases and their times.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch

from percept.checkpoint import save_style_model
from percept.errors import PerceptError
from percept.training.configs import DistillConfig, StyleTrainConfig

__all__ = ["DISTILL_SHARE", "TEACHERS", "train_style_from_teacher"]

TEACHERS = ("linear", "wct", "adain")
DISTILL_SHARE = 0.45
"""Share of ``--time-limit`` the teacher's pictures and the distillation get; the fine-tuning takes the rest."""
DISTILL_ITERATIONS = 4000
"""Distillation steps when there is no time limit (and at most, when there is)."""
PAIRS = 320
"""Teacher pictures (random training crops at the run's ``image_size``)."""


def train_style_from_teacher(cfg: StyleTrainConfig, teacher: torch.nn.Module, teacher_card: dict,
                             progress: bool = True) -> Path:
    """Distil ``cfg.arch`` from ``teacher`` (the painting baked in), then fine-tune it with the perceptual
    losses of ``cfg``; returns the finished ``{name}.pt`` (one model, one card, as :func:`train_style` writes)."""
    from percept.training.distill import distill_style
    from percept.training.style import train_style

    if cfg.init:
        raise PerceptError("--teacher trains the network from the teacher's pictures; it does not take --init")
    name = cfg.name or Path(cfg.style).stem
    out = Path(cfg.out)
    work = out / f".{name}.teacher"
    limit = cfg.time_limit
    t0 = time.perf_counter()
    dcfg = DistillConfig(teacher=str(teacher_card.get("name", "teacher")), data=cfg.data, out=str(work),
                         name=f"{name}_student", arch=cfg.arch, channels=cfg.channels, n_residual=cfg.n_residual,
                         image_size=max(cfg.image_size, 256), pairs=PAIRS, batch_size=8,
                         iterations=DISTILL_ITERATIONS, temporal_weight=cfg.temporal_weight,
                         time_limit=limit * DISTILL_SHARE if limit else None, seed=cfg.seed,
                         holdout_every=cfg.holdout_every, device=cfg.device,
                         logdir=str(out / "tb" / f"{name}_distill"))
    try:
        student = distill_style(dcfg, progress=progress, teacher=(teacher, teacher_card))
        distilled = time.perf_counter() - t0
        import json

        student_card = json.loads(student.with_suffix(".json").read_text())
        fine = replace(cfg, name=name, init=str(student), teacher=None,
                       time_limit=max(0.05, limit - distilled / 60.0) if limit else None)
        path = train_style(fine, progress=progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    from percept.checkpoint import load_checkpoint
    from percept.models.transformer import load_style_network

    net, card = load_style_network(path)
    card = {**card, "hyperparameters": {**card.get("hyperparameters", {}), "teacher": cfg.teacher, "init": None,
                                        "time_limit_minutes": limit},
            "teacher": {"method": cfg.teacher, **{k: teacher_card[k] for k in ("name", "trained_at") if k in teacher_card},
                        "pictures": PAIRS, "picture_size": dcfg.image_size,
                        "seconds": student_card.get("teacher_seconds")},
            "distillation": {"iterations": student_card.get("iterations"), "seconds": round(distilled, 1),
                             "held_out_l1_to_teacher": student_card.get("held_out_l1_to_teacher")},
            "wall_time_s": round(time.perf_counter() - t0, 1)}
    assert load_checkpoint(path)["kind"] == "style-transformer"
    return save_style_model(net, card, out, name)
