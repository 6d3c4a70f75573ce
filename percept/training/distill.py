"""Distilling a trained style network into a smaller, faster one (Hinton et al. 2015, applied to
image-to-image networks).

Training a style network with perceptual losses costs a VGG19 forward and backward pass per step;
on a 2-core CPU that is ~3 s a step. A student that only has to reproduce its teacher's pictures
needs no loss network at all: the teacher stylises a fixed set of random training crops once, and
the student learns to map the same crops to the same pictures (L1 in pixel space, random flips of
both). The student inherits the teacher's style and content trade-off; its speed is its own.

``percept distill --teacher starry_night --arch rt --data DIR --out DIR`` writes ``NAME.pt`` and
``NAME.json`` (a model card naming the teacher) and TensorBoard logs (loss, held-out teacher |
student previews).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from percept.checkpoint import save_style_model
from percept.device import device_name, resolve_device
from percept.errors import PerceptError
from percept.images import resize_long_side, to_tensor
from percept.models.transformer import build_transformer
from percept.models.transformer import load_style_network as load_style_model
from percept.training.common import finish_step, held_out_entry, prepare_run
from percept.training.configs import DistillConfig
from percept.training.data import RandomCropDataset, first_readable
from percept.version import __version__

MIN_STEPS = 50
"""Distillation steps a time limit cannot cut (a budget the teacher's pictures used up still trains a little)."""


def distill_style(cfg: DistillConfig, progress: bool = True, teacher: tuple[torch.nn.Module, dict] | None = None) -> Path:
    """Train a student network to reproduce ``cfg.teacher``; returns the student's ``.pt`` path.

    ``teacher``: (network, card) to imitate instead of loading ``cfg.teacher`` (any module that maps photos
    (N, 3, H, W) in [0, 1] to pictures, e.g. the linear style model with a painting baked in)."""
    device = resolve_device(cfg.device)
    from percept.training import distributed

    d = distributed.init(device)
    device = d.device(device)
    per = d.check_batch(cfg.batch_size)
    teacher_net, teacher_card = teacher if teacher is not None else load_style_model(cfg.teacher)
    teacher_net.to(device)
    name = cfg.name or f"{teacher_card.get('name', Path(cfg.teacher).stem)}_{cfg.arch}"
    cfg.name = name
    train_files, held, out = prepare_run(cfg)
    d.agree({**{k: v for k, v in asdict(cfg).items() if k not in distributed.LOCAL_OPTIONS},
             "photos": len(train_files), "photos_digest": distributed.files_digest(train_files, cfg.data)})
    progress = progress and d.main
    try:
        student = build_transformer({"arch": cfg.arch, "channels": cfg.channels, "n_residual": cfg.n_residual})
    except ValueError as exc:
        raise PerceptError(str(exc)) from None
    student.to(device).train()
    net = d.wrap(student, device)  # every rank makes the same teacher pictures; each learns its slice of a batch

    t0 = time.perf_counter()
    crops = RandomCropDataset(train_files, cfg.image_size, cfg.pairs, seed=cfg.seed)
    xs, ys = [], []
    with torch.inference_mode():
        for i in tqdm(range(0, cfg.pairs, 16), desc="teacher pictures", disable=not progress, unit="batch"):
            x = torch.stack([crops[j] for j in range(i, min(i + 16, cfg.pairs))]).to(device)
            xs.append(x.cpu())
            ys.append(teacher_net(x).float().cpu())
    inputs, targets = torch.cat(xs), torch.cat(ys)
    t_teacher = time.perf_counter() - t0

    from percept.training.common import _NullWriter

    if d.main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(Path(cfg.logdir) if cfg.logdir else out / "tb" / name))
    else:
        writer = _NullWriter()
    preview = [to_tensor(resize_long_side(img, 256)) for img in first_readable(held or train_files, 3)] if d.main else []
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    running = None
    bar = tqdm(range(1, cfg.iterations + 1), desc=f"distill {name}", disable=not progress, unit="it")
    budget = 60.0 * cfg.time_limit if cfg.time_limit else None
    step = 0
    try:
        for step in bar:
            done = (step - 1) / cfg.iterations
            if budget is not None:  # the schedule fits in the time left after the teacher's pictures
                elapsed = time.perf_counter() - t0
                if d.decide(elapsed >= budget and step > MIN_STEPS):  # rank 0's clock decides for every rank
                    step -= 1
                    break
                done = max(done, (elapsed - t_teacher) / max(budget - t_teacher, 1e-9))
            for group in opt.param_groups:  # cosine from lr to 5% of it
                group["lr"] = cfg.lr * (0.05 + 0.475 * (1 + math.cos(math.pi * min(1.0, done))))
            idx = torch.randint(len(inputs), (cfg.batch_size,), generator=gen)[d.rank * per:(d.rank + 1) * per]
            x, y = inputs[idx].to(device), targets[idx].to(device)
            if torch.rand((), generator=gen) < 0.5:
                x, y = x.flip(-1), y.flip(-1)
            terms = d.guard(_distill_step, net, opt, x, y, cfg.temporal_weight, gen, d.mean if d.enabled else None,
                            (cfg.batch_size, d.rank * per))
            loss = terms["total"]
            if "temporal" in terms and (step % 10 == 0 or step == cfg.iterations):
                writer.add_scalar("loss/temporal", float(terms["temporal"]), step)
            if not torch.isfinite(loss):
                raise PerceptError(f"the loss became {loss.item()} at step {step}; distillation stopped")
            v = float(loss)
            running = v if running is None else 0.95 * running + 0.05 * v
            if step % 10 == 0 or step == cfg.iterations:
                writer.add_scalar("loss/l1_to_teacher", v, step)
                bar.set_postfix(l1=f"{running:.4f}")
            if step % 250 == 0 or step == cfg.iterations:
                _log_preview(writer, teacher_net, student, preview, device, step)
    finally:
        bar.close()
        writer.close()
    wall = time.perf_counter() - t0
    if not d.main:
        return out / f"{name}.pt"
    student.eval()
    with torch.inference_mode():
        held_l1 = [float(F.l1_loss(student(p.to(device)), teacher_net(p.to(device)))) for p in preview]
    card = {
        "name": name, "kind": "style-transformer", "percept_version": __version__,
        "style": teacher_card.get("style", {}),
        "data": {"folder": str(cfg.data), "train_images": len(train_files), **held_out_entry(held)},
        "architecture": {"class": type(student).__name__, **student.config,
                         "parameters": sum(p.numel() for p in student.parameters())},
        "distilled_from": {"model": teacher_card.get("name", str(cfg.teacher)),
                           "architecture": teacher_card.get("architecture", {}),
                           "hyperparameters": teacher_card.get("hyperparameters", {})},
        "hyperparameters": {k: v for k, v in asdict(cfg).items()
                            if k not in ("teacher", "data", "out", "name", "logdir", "device")},
        "iterations": step, "stopped_by_time_limit": step < cfg.iterations, "device": device_name(device), "wall_time_s": round(wall, 1),
        "distributed": {"world_size": d.world, "backend": d.backend or None, "global_batch": cfg.batch_size,
                        "per_process_batch": per},
        "teacher_seconds": round(t_teacher, 1),
        "final_losses_running_avg": {"l1_to_teacher": round(running or float("nan"), 5)},
        "held_out_l1_to_teacher": round(sum(held_l1) / max(len(held_l1), 1), 5),
    }
    return save_style_model(student, card, out, name)


def _distill_step(net: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                  temporal_weight: float, gen: torch.Generator, sync=None,
                  part: tuple[int, int] = (0, 0)) -> dict[str, torch.Tensor]:
    """One step: L1 to the teacher's pictures (plus the temporal regulariser, its inputs in the same batch);
    returns the detached terms (averaged over the ranks with ``sync``); the weights move only when the
    total is finite."""
    if temporal_weight:
        from percept.training.temporal import compound_inputs, compound_terms

        flow, moved_in, noisy_in = compound_inputs(x, gen, total=part[0] or x.shape[0], offset=part[1])
        pred, moved, noisy = net(torch.cat([x, moved_in, noisy_in])).chunk(3)
        t_loss = compound_terms(pred, moved, noisy, flow)
        loss = F.l1_loss(pred, y) + temporal_weight * t_loss
        terms = {"total": loss, "temporal": t_loss}
    else:
        loss = F.l1_loss(net(x), y)
        terms = {"total": loss}
    return finish_step(terms, loss, opt, sync)


def _log_preview(writer, teacher, student, preview, device, step: int) -> None:
    from torchvision.utils import make_grid

    student.eval()
    tiles = []
    with torch.inference_mode():
        for p in preview:
            p = p.to(device)
            tiles += [p[0].cpu(), teacher(p)[0].float().cpu(), student(p)[0].float().cpu()]
    student.train()
    hmax, wmax = max(t.shape[1] for t in tiles), max(t.shape[2] for t in tiles)
    tiles = [F.pad(t, (0, wmax - t.shape[2], 0, hmax - t.shape[1]), value=1.0) for t in tiles]
    writer.add_image("held_out/photo_teacher_student", make_grid(tiles, nrow=3, padding=4, pad_value=1.0), step)

