"""A new per-style network in minutes on a CPU: distil it from an arbitrary-style teacher, then fine-tune
it with the perceptual losses (``percept train-style --teacher linear``).

Training a style network from scratch with perceptual losses costs a VGG19 forward and backward pass per
step; on two CPU cores ten minutes are a few hundred steps, too few for a new painting. An arbitrary-style
method (the linear model, Li et al. 2019; WCT, Li et al. 2017; AdaIN, Huang & Belongie 2017;
:mod:`percept.inference.anystyle`) already knows how to paint any
picture in that painting's manner, so:

1. the teacher stylises a fixed set of random training crops once (a progress bar);
2. the student (``--arch``, the real-time network by default on a CPU) learns to reproduce them
   (:func:`percept.training.distill.distill_style`, Hinton et al. 2015's distillation: L1 in pixel space, no loss network: thousands of steps
   in a few minutes);
3. the student is fine-tuned with the perceptual losses (Johnson et al. 2016) for the rest of the time
   (:func:`percept.training.style.train_style` with ``init``), which sharpens the painting's texture
   beyond the teacher's.

The automatic style weight (no ``--style-weight``): it starts where the style and content gradients
balance at the distilled network (:func:`balanced_style_weight`), then the fine-tuning raises it while the
content loss stays under :data:`percept.training.configs.CONTENT_TARGET` (the shipped models' scene-keeping
end), never lowering it below the balance: a teacher that is weak on a painting no longer leaves its network
under-styled, and a painting whose manner moves the photo's features a lot (a Picasso's blocks) keeps the
weight the balance gave it. Steered both ways, the transient at the start of the fine-tuning pulled the
Picasso's weight from 4.3 down to 0.7 (1.4 at the end) and its style loss rose to the peer's (1.03x; with the
floor, 0.54x).

The teacher is given as a module (photos -> pictures); the command line builds it (``inference`` sits
beside ``training``, not below it). The model card records the teacher, both phases and their times.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import torch

from percept.checkpoint import load_checkpoint, save_style_model
from percept.errors import PerceptError
from percept.images import load_image, resize_long_side, to_tensor
from percept.models.losses import PerceptualLoss
from percept.models.transformer import load_style_network
from percept.training.configs import CONTENT_TARGET, DistillConfig, StyleTrainConfig
from percept.training.data import RandomCropDataset, list_images, split_holdout
from percept.training.distill import distill_style
from percept.training.loop import folders_to_make, remove_unused_folders
from percept.training.style import train_style

__all__ = ["DISTILL_SHARE", "TEACHERS", "balanced_style_weight", "train_style_from_teacher"]

TEACHERS = ("linear", "wct", "adain")
TEACHER_INIT = "--teacher trains the network from the teacher's pictures; it does not take --init"
DISTILL_SHARE = 0.45
"""Share of ``--time-limit`` the teacher's pictures and the distillation get; the fine-tuning takes the rest."""
DISTILL_ITERATIONS = 4000
"""Distillation steps when there is no time limit (and at most, when there is)."""
PAIRS = 320
"""Teacher pictures (random training crops at the run's ``image_size``)."""
BALANCE_BATCHES = 3
"""Batches of training crops the automatic style weight is measured on."""
WEIGHT_RANGE = (0.5, 50.0)
"""The automatic style weight stays within this range."""


def balanced_style_weight(cfg: StyleTrainConfig, model_path: Path) -> tuple[float, tuple[float, float]]:
    """The style weight for fine-tuning the distilled network ``model_path``: the ratio of the (weighted)
    content loss's gradient norm to the style loss's, over the network's weights, on a few batches of training crops
    (clipped to :data:`WEIGHT_RANGE`). The distilled network already paints as the teacher does; with this
    weight neither term outweighs the other there, so the fine-tuning refines the teacher's balance between
    the painting and the photo instead of tipping it (a weight tuned for other paintings can drown a new
    painting's scene in its motif). Returns (weight, (content gradient norm, style gradient norm))."""
    net, _ = load_style_network(model_path)
    net.train().requires_grad_(True)
    loss_fn = PerceptualLoss(1.0, 1.0, 0.0, cfg.content_layers, cfg.style_layers)
    loss_fn.set_style(to_tensor(resize_long_side(load_image(cfg.style), cfg.style_size)))
    files, _ = split_holdout(list_images(cfg.data), cfg.holdout_every)
    crops = RandomCropDataset(files, cfg.image_size, BALANCE_BATCHES * cfg.batch_size, seed=cfg.seed + 17)
    params = [p for p in net.parameters() if p.requires_grad]
    norms = {"content": 0.0, "style": 0.0}
    for b in range(BALANCE_BATCHES):
        x = torch.stack([crops[b * cfg.batch_size + i] for i in range(cfg.batch_size)])
        terms = loss_fn(net(x), x)
        for key in norms:
            grads = torch.autograd.grad(terms[key], params, retain_graph=key == "content", allow_unused=True)
            norms[key] += float(torch.stack([(g.float() ** 2).sum() for g in grads if g is not None]).sum().sqrt())
    c, s = norms["content"] / BALANCE_BATCHES, norms["style"] / BALANCE_BATCHES
    weight = min(WEIGHT_RANGE[1], max(WEIGHT_RANGE[0], cfg.content_weight * c / max(s, 1e-12)))
    return round(weight, 3), (c, s)


def train_style_from_teacher(cfg: StyleTrainConfig, teacher: torch.nn.Module, teacher_card: dict,
                             progress: bool = True) -> Path:
    """Distil ``cfg.arch`` from ``teacher`` (the painting baked in), then fine-tune it with the perceptual
    losses of ``cfg``; returns the finished ``{name}.pt`` (one model, one card, as :func:`train_style` writes)."""
    if cfg.init:
        raise PerceptError(TEACHER_INIT)
    name = cfg.name or Path(cfg.style).stem
    out = Path(cfg.out)
    made = folders_to_make(out)  # removed again if the run fails before writing a file into them
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
        student_card = json.loads(student.with_suffix(".json").read_text())
        weight, how, target, floor = cfg.style_weight, "given (--style-weight)", cfg.content_target, cfg.style_weight_min
        if weight is None:
            weight, grads = balanced_style_weight(cfg, student)
            how = (f"balanced at the distilled network: |grad content| {grads[0]:.3g} / |grad style| {grads[1]:.3g} "
                   f"over {BALANCE_BATCHES} batches of training crops")
            if target is None:
                target, floor = CONTENT_TARGET, weight
        if target is not None:
            how += (f", then steered to content loss {target:g} during the fine-tuning"
                    + (" (never below the balanced weight)" if floor == weight else ""))
        fine = replace(cfg, name=name, init=str(student), teacher=None, style_weight=weight, content_target=target,
                       style_weight_min=floor, time_limit=max(0.05, limit - distilled / 60.0) if limit else None)
        path = train_style(fine, progress=progress)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        remove_unused_folders(made)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    net, card = load_style_network(path)
    adapted = card.pop("style_weight_adapted", None)
    card = {**card, "hyperparameters": {**card.get("hyperparameters", {}), "teacher": cfg.teacher, "init": None,
                                        "time_limit_minutes": limit},
            "style_weight": {"value": weight, "chosen": how, **({"adapted": adapted} if adapted else {})},
            "teacher": {"method": cfg.teacher, **{k: teacher_card[k] for k in ("name", "trained_at", "runtime") if k in teacher_card},
                        "pictures": PAIRS, "picture_size": dcfg.image_size,
                        "seconds": student_card.get("teacher_seconds")},
            "distillation": {"iterations": student_card.get("iterations"), "seconds": round(distilled, 1),
                             "held_out_l1_to_teacher": student_card.get("held_out_l1_to_teacher")},
            "wall_time_s": round(time.perf_counter() - t0, 1)}
    assert load_checkpoint(path)["kind"] == "style-transformer"
    return save_style_model(net, card, out, name)
