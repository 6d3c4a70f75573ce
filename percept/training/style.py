"""Training a per-style transformer network with perceptual losses (Johnson et al. 2016).

One call of :func:`train_style` runs (or resumes) a training run in ``out``: :class:`StyleTask` (the network,
the loss, the step) under the one training loop, :func:`percept.training.loop.fit`, which writes:

* ``{name}.train.pt``: the training state (weights, optimizer, step), written atomically every
  ``checkpoint_every`` steps; ``resume=True`` continues from it exactly (the data of step ``n`` is a
  function of the seed and ``n``, see :mod:`percept.training.data`), also after a kill;
* ``{name}.pt`` + ``{name}.json``: the finished model and its model card;
* TensorBoard logs in ``logdir``: every loss term (and each style layer), speed, and grids of
  held-out photos with their stylisations.

A NaN or infinite loss stops the run with a message naming the step; the last good checkpoint stays.

With ``content_target`` the style weight is not fixed: :class:`StyleWeightController` steers it so that the
content loss settles at the target (logged as ``loss/style_weight``; the card records where it started and
ended).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Iterable

import torch

from percept.checkpoint import save_style_model
from percept.device import cpu_has_bf16
from percept.errors import PerceptError
from percept.images import load_image, resize_long_side, to_tensor
from percept.models.losses import PerceptualLoss
from percept.models.transformer import build_transformer, load_style_network
from percept.training.common import Sync, finish_step, preview_pairs
from percept.training.configs import DEFAULT_STYLE_WEIGHT, StyleTrainConfig
from percept.training.data import RandomCropDataset, first_readable
from percept.training.loop import RUN_OPTIONS, FitOptions, FitResult, Run, Task, fit
from percept.training.temporal import compound_inputs, compound_terms

__all__ = ["StyleTask", "StyleTrainConfig", "StyleWeightController", "step_precision", "train_step", "train_style"]


class StyleWeightController:
    """Steers the style weight towards a content loss: after ``warmup`` steps, every ``every`` steps the
    weight is multiplied by ``exp(gain * (target - c) / target)``, the factor kept within
    ``1 +- max_change`` and the weight within ``bounds``; ``c`` is an exponential average of the content
    loss (the terms a distributed step returns are the ranks' mean, so every rank takes the same steps).
    A content loss under the target means the photo is kept more than it needs to be: more style; over it,
    less. Small, slow steps: the network answers a new weight over tens of steps. The warm-up lets the first
    steps' transient pass: fine-tuning a distilled network, the content loss first rises, then settles. On
    frida_kahlo the weight fell from 2.5 to 1.4 with a 20-step warm-up, and still from 2.6 to 1.3 with 100,
    taking 400 steps to climb back; so the teacher route also sets a floor (``bounds``) at its start weight."""

    def __init__(self, target: float, weight: float, bounds: tuple[float, float] = (0.5, 50.0),
                 warmup: int = 100, every: int = 10, gain: float = 1.0, max_change: float = 0.1,
                 smoothing: float = 0.9) -> None:
        if not target > 0:
            raise PerceptError(f"the content target must be above 0, got {target}")
        self.target, self.weight, self.bounds = float(target), float(weight), bounds
        self.warmup, self.every, self.gain, self.max_change, self.smoothing = warmup, every, gain, max_change, smoothing
        self.average: float | None = None
        self.steps = 0
        self.trace: list[tuple[int, float]] = [(0, round(self.weight, 4))]

    def update(self, content: float) -> float:
        """Take one step's content loss; returns the style weight for the next step."""
        self.steps += 1
        self.average = content if self.average is None else self.smoothing * self.average + (1 - self.smoothing) * content
        if self.steps > self.warmup and self.steps % self.every == 0:
            change = self.gain * (self.target - self.average) / self.target
            change = max(math.log1p(-self.max_change), min(math.log1p(self.max_change), change))
            self.weight = min(self.bounds[1], max(self.bounds[0], self.weight * math.exp(change)))
            if self.steps % (10 * self.every) == 0:
                self.trace.append((self.steps, round(self.weight, 4)))
        return self.weight

    def summary(self) -> dict:
        return {"content_target": self.target, "start": self.trace[0][1], "final": round(self.weight, 4),
                "bounds": [round(b, 4) for b in self.bounds],
                "content_average": None if self.average is None else round(self.average, 4),
                "trace": self.trace}


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _preview_batch(files: list[Path], size: int = 256) -> list[torch.Tensor]:
    return [to_tensor(resize_long_side(img, size)) for img in first_readable(files, 4)]


class StyleTask(Task):
    """A style network trained with the perceptual losses (see the module's docstring), as :func:`fit` runs it."""

    kind = "style-transformer"
    state_kind = "style-transformer-training"
    resume_keys = ("arch", "channels", "n_residual", "output", "batch_size", "image_size", "seed")
    shown = {"content": ".3f", "style": ".3f"}
    private = ("style",)  # compared by content (style_sha1)
    card_leaves_out = (*RUN_OPTIONS, "style")

    def __init__(self, cfg: StyleTrainConfig, resume: bool = False) -> None:
        if cfg.content_target is not None and resume:
            raise PerceptError("--resume: a run that adapts its style weight (--content-target) cannot be resumed "
                               "exactly; start it again")
        if cfg.content_target is not None and not cfg.content_target > 0:
            raise PerceptError(f"--content-target must be above 0, got {cfg.content_target}")
        self.painting = load_image(cfg.style)
        if cfg.style_weight is None:
            cfg.style_weight = DEFAULT_STYLE_WEIGHT
        cfg.name = cfg.name or Path(cfg.style).stem
        self.cfg = cfg
        self.controller: StyleWeightController | None = None

    def agreement(self) -> dict:
        return {"style_sha1": _sha1(Path(self.cfg.style))}

    def input_files(self) -> dict[str, tuple[str, str]]:
        return {"painting_sha1": (_sha1(Path(self.cfg.style)), str(self.cfg.style))}

    def setup(self, run: Run) -> None:
        cfg, device = self.cfg, run.device
        self.run = run
        try:
            self.model = build_transformer({"arch": cfg.arch, "channels": cfg.channels, "n_residual": cfg.n_residual,
                                            "output": cfg.output})
        except ValueError as exc:
            raise PerceptError(str(exc)) from None
        if cfg.init and not run.resume:
            init_net, _ = load_style_network(cfg.init)
            if init_net.config != self.model.config:
                raise PerceptError(f"--init: {cfg.init} is a {init_net.config} network, this run trains "
                                   f"{self.model.config}")
            self.model.load_state_dict(init_net.state_dict())
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.model.to(device)
        self.memory_format, self.use_amp = step_precision(device, cfg.batch_size, cfg.channels_last, cfg.amp)
        self.model.to(memory_format=self.memory_format)
        self.loss_fn = PerceptualLoss(cfg.content_weight, cfg.style_weight, cfg.tv_weight,
                                      cfg.content_layers, cfg.style_layers).to(device)
        self.loss_fn.net.to(memory_format=self.memory_format)
        self.loss_fn.set_style(to_tensor(resize_long_side(self.painting, cfg.style_size)).to(device))
        self.dataset = RandomCropDataset(run.train_files, cfg.image_size, cfg.iterations * cfg.batch_size,
                                         seed=cfg.seed)
        if cfg.content_target is not None:
            low = cfg.style_weight_min if cfg.style_weight_min is not None else 0.5
            self.controller = StyleWeightController(cfg.content_target, cfg.style_weight,
                                                    bounds=(min(low, cfg.style_weight), 50.0))

    def state(self) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        return self.model, self.optimizer

    def start(self, run: Run, start_step: int) -> Iterable:
        loader = run.loader(self.dataset, start_step)
        self.net = run.dist.wrap(self.model, run.device)  # gradients averaged over the ranks in a distributed job
        self.previews = _preview_batch(run.preview_files) if run.dist.main else []
        self.model.train()
        return loader

    def step(self, batch: torch.Tensor, step: int, seconds: float) -> dict[str, torch.Tensor]:
        cfg, d = self.cfg, self.run.dist
        x = batch.to(self.run.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step) if cfg.temporal_weight else None
        losses = d.guard(train_step, self.net, self.loss_fn, self.optimizer, x, self.use_amp, torch.bfloat16,
                         cfg.temporal_weight, gen, self.run.sync, (cfg.batch_size, d.rank * x.shape[0]))
        if self.controller is not None:
            self.loss_fn.style_weight = self.controller.update(float(losses["content"]))
        return losses

    def preview(self) -> dict[str, torch.Tensor]:
        return {"held_out/photo_vs_stylized": preview_pairs(self.model, self.previews, self.model, self.run.device)}

    def scalars(self) -> dict[str, float]:
        return {"data/unreadable_skipped": self.dataset.skipped, "loss/style_weight": self.loss_fn.style_weight}

    def card(self, run: Run, result: FitResult) -> dict:
        path = Path(self.cfg.style)
        fields = {"style": {"file": path.name, "sha1": _sha1(path), "size": self.cfg.style_size},
                  "data": {"unreadable_skipped": self.dataset.skipped},
                  "precision": {"amp_bf16": self.use_amp, "channels_last": self.memory_format == torch.channels_last}}
        if self.controller is not None:
            fields["style_weight_adapted"] = self.controller.summary()
        return fields

    def save(self, run: Run, card: dict) -> Path:
        return save_style_model(self.model, card, run.out, self.cfg.name)


def train_style(cfg: StyleTrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) a style network; returns the path of the finished ``{name}.pt``."""
    return fit(StyleTask(cfg, resume), FitOptions.of(cfg, resume, progress))


def step_precision(device: torch.device, batch_size: int, channels_last: bool | None = None,
                   amp: bool | None = None) -> tuple[torch.memory_format, bool]:
    """Memory format and autocast for a training step, measured rather than assumed (``scripts/bench_train.py``).

    CPU: channels_last, and bf16 autocast where the CPU computes bf16 natively (AVX512-BF16 or AMX,
    :func:`percept.device.cpu_has_bf16`): on a 2-core Zen 4 at the CPU defaults (batch 2, 192 px) the step
    runs 2.05x the reference loop with bf16 against 1.18x in fp32, and its loss curve follows fp32's
    (docs/train_precision_curve.png); without native bf16 it would be emulated, slower than fp32. GPU (H100):
    the 32-64-128 network at batch 4, 256 px, is launch-bound: fp32 NCHW (TF32 convolutions) ran 38 it/s, bf16
    autocast 33, bf16 + channels_last 30; at batch 16 bf16 wins (24 vs 17 it/s). ``None`` picks those
    defaults; a bool forces the choice.
    """
    if channels_last is None:
        channels_last = device.type == "cpu"
    if amp is None:
        amp = (device.type == "cuda" and batch_size >= 8) or (device.type == "cpu" and cpu_has_bf16())
    return (torch.channels_last if channels_last else torch.contiguous_format), bool(amp)


def train_step(model: torch.nn.Module, loss_fn: PerceptualLoss, optimizer: torch.optim.Optimizer,
               x: torch.Tensor, use_amp: bool = False, amp_dtype: torch.dtype = torch.bfloat16,
               temporal_weight: float = 0.0, generator: torch.Generator | None = None,
               sync: Sync | None = None,
               part: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
    """One optimisation step on a batch of photos; returns the (detached) loss terms.

    The content targets are computed without gradients and only as deep as the content layer; the
    stylised batch goes through the loss network only as deep as the deepest style/content layer.
    ``temporal_weight`` adds the compound temporal regulariser (its random flow and noise drawn from
    ``generator``, so a resumed run draws the same; ``part`` = (global batch, this slice's offset) in a
    distributed job). A non-finite loss is returned without touching the weights. ``sync`` (a
    distributed job) averages the loss terms over the ranks before the finiteness check, so every rank
    takes the same decision; the terms returned are those averages.
    The network runs once per step: with the regulariser, the photos and their moved and noisy twins
    go through it as one batch (every layer works per sample, so this is the same function).
    """
    with torch.autocast(x.device.type, dtype=amp_dtype, enabled=use_amp):
        if temporal_weight:
            gen = generator if generator is not None else torch.Generator().manual_seed(0)
            total, offset = part if part is not None else (x.shape[0], 0)
            flow, moved_in, noisy_in = compound_inputs(x, gen, total=total, offset=offset)
            y, moved, noisy = model(torch.cat([x, moved_in, noisy_in])).chunk(3)
        else:
            y = model(x)
        losses = loss_fn(y, x)
        if temporal_weight:
            t = compound_terms(y, moved, noisy, flow)
            losses["temporal"] = t
            losses["total"] = losses["total"] + temporal_weight * t
    return finish_step(losses, losses["total"], optimizer, sync)

