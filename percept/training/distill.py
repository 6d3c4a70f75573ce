"""Distilling a trained style network into a smaller, faster one (Hinton et al. 2015, applied to
image-to-image networks).

Training a style network with perceptual losses costs a VGG19 forward and backward pass per step;
on a 2-core CPU that is ~3 s a step. A student that only has to reproduce its teacher's pictures
needs no loss network at all: the teacher stylises a fixed set of random training crops once, and
the student learns to map the same crops to the same pictures (L1 in pixel space, random flips of
both). The student inherits the teacher's style and content trade-off; its speed is its own.

:class:`DistillTask` runs under the one training loop (:func:`percept.training.loop.fit`; no training state:
a distillation is not resumed). ``percept distill --teacher starry_night --arch rt --data DIR --out DIR`` writes ``NAME.pt`` and
``NAME.json`` (a model card naming the teacher) and TensorBoard logs (loss, held-out teacher |
student previews).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from tqdm import tqdm

from percept.checkpoint import save_style_model
from percept.errors import PerceptError
from percept.images import resize_long_side, to_tensor
from percept.models.transformer import build_transformer
from percept.models.transformer import load_style_network as load_style_model
from percept.training.common import Sync, finish_step, preview_grid
from percept.training.configs import DistillConfig
from percept.training.data import RandomCropDataset, first_readable
from percept.training.loop import FitOptions, FitResult, Run, Task, fit
from percept.training.temporal import compound_inputs, compound_terms

__all__ = ["MIN_STEPS", "DistillConfig", "DistillTask", "distill_style"]

MIN_STEPS = 50
"""Distillation steps a time limit cannot cut (a budget the teacher's pictures used up still trains a little)."""
LOG_EVERY, PREVIEW_EVERY = 10, 250
"""Steps between TensorBoard's losses, and between its previews."""


class DistillTask(Task):
    """A student learning its teacher's pictures (see the module's docstring), as :func:`fit` runs it: the
    pictures are made in :meth:`setup` (their seconds count against the time limit), then each step draws a
    batch of them, flipped half of the time, from a generator seeded by the run's seed."""

    kind = "style-transformer"
    label = "distill"
    activity = "distillation"
    shown = {"l1_to_teacher": ".4f"}
    card_leaves_out = ("teacher", "data", "out", "name", "logdir", "device")
    follows_clock = True  # the learning rate's schedule fits in the time left after the teacher's pictures

    def __init__(self, cfg: DistillConfig, teacher: tuple[torch.nn.Module, dict] | None = None,
                 progress: bool = True) -> None:
        self.cfg, self.progress = cfg, progress
        self.teacher, self.teacher_card = teacher if teacher is not None else load_style_model(cfg.teacher)
        cfg.name = cfg.name or f"{self.teacher_card.get('name', Path(cfg.teacher).stem)}_{cfg.arch}"

    def setup(self, run: Run) -> None:
        cfg, device = self.cfg, run.device
        self.run, self.per = run, cfg.batch_size // run.dist.world
        self.teacher.to(device)
        try:
            self.student = build_transformer({"arch": cfg.arch, "channels": cfg.channels, "n_residual": cfg.n_residual})
        except ValueError as exc:
            raise PerceptError(str(exc)) from None
        self.student.to(device).train()
        t0 = time.perf_counter()
        crops = RandomCropDataset(run.train_files, cfg.image_size, cfg.pairs, seed=cfg.seed)
        xs, ys = [], []
        with torch.inference_mode():
            for i in tqdm(range(0, cfg.pairs, 16), desc="teacher pictures", unit="batch",
                          disable=not (self.progress and run.dist.main)):
                x = torch.stack([crops[j] for j in range(i, min(i + 16, cfg.pairs))]).to(device)
                xs.append(x.cpu())
                ys.append(self.teacher(x).float().cpu())
        self.inputs, self.targets = torch.cat(xs), torch.cat(ys)
        self.setup_seconds = time.perf_counter() - t0
        self.optimizer = torch.optim.Adam(self.student.parameters(), lr=cfg.lr)
        self.gen = torch.Generator().manual_seed(cfg.seed)

    def state(self) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        return self.student, self.optimizer

    def start(self, run: Run, start_step: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.net = run.dist.wrap(self.student, run.device)  # every rank has the same pictures; each learns its slice
        self.previews = [to_tensor(resize_long_side(img, 256)) for img in first_readable(run.preview_files, 3)] \
            if run.dist.main else []
        return self._batches(start_step)

    def _batches(self, start_step: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Each step's (photos, teacher's pictures): this rank's slice of a batch drawn from ``self.gen``, drawn
        lazily (the step's temporal draws come from the same generator, after its batch)."""
        cfg, rank, per, device = self.cfg, self.run.dist.rank, self.per, self.run.device
        for _ in range(start_step, cfg.iterations):
            idx = torch.randint(len(self.inputs), (cfg.batch_size,), generator=self.gen)[rank * per:(rank + 1) * per]
            x, y = self.inputs[idx].to(device), self.targets[idx].to(device)
            if torch.rand((), generator=self.gen) < 0.5:
                x, y = x.flip(-1), y.flip(-1)
            yield x, y

    def step(self, batch: tuple[torch.Tensor, torch.Tensor], step: int, seconds: float) -> dict[str, torch.Tensor]:
        cfg, d = self.cfg, self.run.dist
        done = step / cfg.iterations
        if cfg.time_limit:  # the schedule fits in the time left after the teacher's pictures
            done = max(done, seconds / max(60.0 * cfg.time_limit - self.setup_seconds, 1e-9))
        for group in self.optimizer.param_groups:  # cosine from lr to 5% of it
            group["lr"] = cfg.lr * (0.05 + 0.475 * (1 + math.cos(math.pi * min(1.0, done))))
        x, y = batch
        return d.guard(_distill_step, self.net, self.optimizer, x, y, cfg.temporal_weight, self.gen, self.run.sync,
                       (cfg.batch_size, d.rank * self.per))

    def preview(self) -> dict[str, torch.Tensor]:
        self.student.eval()
        tiles = []
        with torch.inference_mode():
            for p in self.previews:
                p = p.to(self.run.device)
                tiles += [p[0].cpu(), self.teacher(p)[0].float().cpu(), self.student(p)[0].float().cpu()]
        self.student.train()
        return {"held_out/photo_teacher_student": preview_grid(tiles, nrow=3)}

    def card(self, run: Run, result: FitResult) -> dict:
        self.student.eval()
        with torch.inference_mode():
            held = [float(F.l1_loss(self.student(p.to(run.device)), self.teacher(p.to(run.device))))
                    for p in self.previews]
        teacher = self.teacher_card
        return {"style": teacher.get("style", {}),
                "distilled_from": {"model": teacher.get("name", str(self.cfg.teacher)),
                                   "architecture": teacher.get("architecture", {}),
                                   "hyperparameters": teacher.get("hyperparameters", {})},
                "teacher_seconds": round(self.setup_seconds, 1),
                "held_out_l1_to_teacher": round(sum(held) / max(len(held), 1), 5)}

    def save(self, run: Run, card: dict) -> Path:
        return save_style_model(self.student, card, run.out, self.cfg.name)


def distill_style(cfg: DistillConfig, progress: bool = True, teacher: tuple[torch.nn.Module, dict] | None = None) -> Path:
    """Train a student network to reproduce ``cfg.teacher``; returns the student's ``.pt`` path.

    ``teacher``: (network, card) to imitate instead of loading ``cfg.teacher`` (any module that maps photos
    (N, 3, H, W) in [0, 1] to pictures, e.g. the linear style model with a painting baked in)."""
    options = FitOptions(cfg.iterations, log_every=LOG_EVERY, preview_every=PREVIEW_EVERY, checkpoint_every=None,
                         time_limit=cfg.time_limit or None, min_steps=MIN_STEPS, progress=progress)
    return fit(DistillTask(cfg, teacher, progress), options)


def _distill_step(net: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                  temporal_weight: float, gen: torch.Generator, sync: Sync | None = None,
                  part: tuple[int, int] = (0, 0)) -> dict[str, torch.Tensor]:
    """One step: L1 to the teacher's pictures (plus the temporal regulariser, its inputs in the same batch);
    returns the detached terms (averaged over the ranks with ``sync``); the weights move only when the
    total is finite."""
    if temporal_weight:
        flow, moved_in, noisy_in = compound_inputs(x, gen, total=part[0] or x.shape[0], offset=part[1])
        pred, moved, noisy = net(torch.cat([x, moved_in, noisy_in])).chunk(3)
        l1, t_loss = F.l1_loss(pred, y), compound_terms(pred, moved, noisy, flow)
        loss = l1 + temporal_weight * t_loss
        terms = {"l1_to_teacher": l1, "temporal": t_loss, "total": loss}
    else:
        loss = F.l1_loss(net(x), y)
        terms = {"l1_to_teacher": loss, "total": loss}
    return finish_step(terms, loss, opt, sync)
