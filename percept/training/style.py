"""Training a per-style transformer network with perceptual losses (Johnson et al. 2016).

One call of :func:`train_style` runs (or resumes) a training run in ``out``:

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
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from percept.checkpoint import save_style_model
from percept.device import cpu_has_bf16, device_name, resolve_device
from percept.errors import PerceptError
from percept.images import load_image, resize_long_side, to_tensor
from percept.models.losses import PerceptualLoss
from percept.models.transformer import build_transformer
from percept.training.common import (
    finish_step,
    held_out_entry,
    log_previews,
    optimizer_to,
    prepare_run,
    resume_state,
    run_loop,
    save_training_state,
)
from percept.training.configs import StyleTrainConfig
from percept.training.data import RandomCropDataset, first_readable, make_loader
from percept.version import __version__


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
        import math

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


def train_style(cfg: StyleTrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) a style network; returns the path of the finished ``{name}.pt``."""
    if cfg.content_target is not None and resume:
        raise PerceptError("--resume: a run that adapts its style weight (--content-target) cannot be resumed "
                           "exactly; start it again")
    if cfg.content_target is not None and not cfg.content_target > 0:
        raise PerceptError(f"--content-target must be above 0, got {cfg.content_target}")
    style_path = Path(cfg.style)
    style_img = load_image(style_path)
    if cfg.style_weight is None:
        from percept.training.configs import DEFAULT_STYLE_WEIGHT

        cfg.style_weight = DEFAULT_STYLE_WEIGHT
    name = cfg.name or style_path.stem
    cfg.name = name
    device = resolve_device(cfg.device)
    from percept.training import distributed

    d = distributed.init(device)
    device = d.device(device)
    d.check_batch(cfg.batch_size)
    train_files, held, out = prepare_run(cfg)
    state_path = out / f"{name}.train.pt"
    d.agree({**{k: v for k, v in asdict(cfg).items() if k not in distributed.LOCAL_OPTIONS + ("style",)},
             "photos": len(train_files), "photos_digest": distributed.files_digest(train_files, cfg.data),
             "style_sha1": _sha1(style_path)})

    try:
        model = build_transformer({"arch": cfg.arch, "channels": cfg.channels, "n_residual": cfg.n_residual,
                                   "output": cfg.output})
    except ValueError as exc:
        raise PerceptError(str(exc)) from None
    if cfg.init and not resume:
        from percept.models.transformer import load_style_network as load_style_model

        init_net, _ = load_style_model(cfg.init)
        if init_net.config != model.config:
            raise PerceptError(f"--init: {cfg.init} is a {init_net.config} network, this run trains {model.config}")
        model.load_state_dict(init_net.state_dict())
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start_step, elapsed_before = 0, 0.0
    if resume:
        start_step, elapsed_before = d.share_resume(lambda: resume_state(  # rank 0 reads; the others are sent it
            state_path, cfg, ("arch", "channels", "n_residual", "output", "batch_size", "image_size", "seed"),
            model, optimizer, world_size=d.world))
        d.share_optimizer(optimizer)

    model.to(device)
    optimizer_to(optimizer, device)
    memory_format, use_amp = step_precision(device, cfg.batch_size, cfg.channels_last, cfg.amp)
    model.to(memory_format=memory_format)
    loss_fn = PerceptualLoss(cfg.content_weight, cfg.style_weight, cfg.tv_weight,
                             cfg.content_layers, cfg.style_layers).to(device)
    loss_fn.net.to(memory_format=memory_format)
    style_t = to_tensor(resize_long_side(style_img, cfg.style_size)).to(device)
    loss_fn.set_style(style_t)

    amp_dtype = torch.bfloat16
    dataset = RandomCropDataset(train_files, cfg.image_size, cfg.iterations * cfg.batch_size, seed=cfg.seed)
    workers = cfg.workers if cfg.workers is not None else (4 if device.type == "cuda" else 0)
    loader = make_loader(dataset, cfg.batch_size, start_step, workers, d.rank, d.world)
    net = d.wrap(model, device)  # what the step runs: gradients averaged over the ranks in a distributed job

    writer = None
    if d.main:
        from torch.utils.tensorboard import SummaryWriter  # imported late: it is slow to import

        logdir = Path(cfg.logdir) if cfg.logdir else out / "tb" / name
        writer = SummaryWriter(str(logdir), purge_step=start_step if resume else None)
    preview = _preview_batch(held or train_files) if d.main else []

    def save_state(step: int, elapsed: float) -> None:
        save_training_state(state_path, "style-transformer-training", model, optimizer, step, elapsed, cfg,
                            world_size=d.world)

    def log_preview(step: int) -> None:
        log_previews(writer, "held_out/photo_vs_stylized", model, preview, model, device, step)

    def step_fn(batch: torch.Tensor, step: int, seconds: float) -> dict[str, torch.Tensor]:
        x = batch.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step) if cfg.temporal_weight else None
        losses = d.guard(train_step, net, loss_fn, optimizer, x, use_amp, amp_dtype, cfg.temporal_weight, gen,
                         d.mean if d.enabled else None, (cfg.batch_size, d.rank * x.shape[0]))
        if controller is not None:
            loss_fn.style_weight = controller.update(float(losses["content"]))
        return losses

    controller = None
    if cfg.content_target is not None:
        low = cfg.style_weight_min if cfg.style_weight_min is not None else 0.5
        controller = StyleWeightController(cfg.content_target, cfg.style_weight, bounds=(min(low, cfg.style_weight), 50.0))

    def scalars() -> dict[str, float]:
        return {"data/unreadable_skipped": dataset.skipped, "loss/style_weight": loss_fn.style_weight}

    model.train()
    res = run_loop(cfg, loader, step_fn, name=name, start_step=start_step, elapsed_before=elapsed_before,
                   state_path=state_path, save_state=save_state, log_preview=log_preview, writer=writer,
                   postfix=lambda r: {"content": f"{r['content']:.3f}", "style": f"{r['style']:.3f}"},
                   scalars=scalars, progress=progress, dist=d)
    step, wall, running = res.step, res.wall, res.running
    if not d.main:  # rank 0 writes the model; the others are done
        return out / f"{name}.pt"

    # final losses: a clean pass over held-out photos (or the last running averages when none)
    card = {
        "name": name, "kind": "style-transformer", "percept_version": __version__,
        "style": {"file": style_path.name, "sha1": _sha1(style_path), "size": cfg.style_size},
        "data": {"folder": str(cfg.data), "train_images": len(train_files), "unreadable_skipped": dataset.skipped,
                 **held_out_entry(held)},
        "architecture": {"class": type(model).__name__, **model.config,
                         "parameters": sum(p.numel() for p in model.parameters())},
        "hyperparameters": {k: v for k, v in asdict(cfg).items()
                            if k not in ("style", "data", "out", "name", "logdir", "device", "workers", "time_limit")},
        "precision": {"amp_bf16": use_amp, "channels_last": memory_format == torch.channels_last},
        "iterations": step, "stopped_by_time_limit": step < cfg.iterations,
        "device": device_name(device), "wall_time_s": round(wall, 1),
        "distributed": {"world_size": d.world, "backend": d.backend or None, "global_batch": cfg.batch_size,
                        "per_process_batch": cfg.batch_size // d.world},
        "final_losses_running_avg": {k: round(v, 5) for k, v in running.items()},
    }
    if controller is not None:
        card["style_weight_adapted"] = controller.summary()
    return save_style_model(model, card, out, name)


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
               sync: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
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
            from percept.training.temporal import compound_inputs, compound_terms

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

