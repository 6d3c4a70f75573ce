"""Feature inversion by image optimisation: the Mahendran & Vedaldi baseline.

Given the features ``phi0 = phi(x0)`` of a photo at one layer of the VGG19 loss network, find the
image whose features match them under a natural-image prior (Mahendran & Vedaldi 2015,
"Understanding Deep Image Representations by Inverting Them", CVPR, Eq. 1-5; and the revised
method of Mahendran & Vedaldi 2016, "Visualizing Deep Convolutional Neural Networks Using Natural
Pre-Images", IJCV 120(3), Sec. 3, whose reference code is ``aravindhm/nnpreimage``). It is the
slow baseline that the trained feature-to-image decoders (Dosovitskiy & Brox 2016) are compared
with, so it follows the papers closely:

.. math::

    E(z) = C\\,\\frac{\\lVert\\phi(\\tau z) - \\phi_0\\rVert^2}{\\lVert\\phi_0\\rVert^2}
         + \\frac{1}{HW B^\\alpha} \\sum_{uv} \\lVert z_{uv}\\rVert^\\alpha
         + \\frac{1}{HW V^\\beta} \\sum_{uvk} \\big((z_{u,v+1,k}-z_{uvk})^2 + (z_{u+1,v,k}-z_{uvk})^2\\big)^{\\beta/2}

* ``z`` is the image in the representation the papers regularise: **mean-subtracted 0-255 pixels**
  (``z = 255 x - mean`` with the ImageNet/Caffe channel means; ``x`` is our RGB image in [0, 1]).
  So the published constants apply unchanged: alpha = 6, beta = 2, B = 80 (the typical norm of a
  mean-subtracted pixel), V = B / 6.5 (the typical difference between neighbours). Expressed on
  ``x`` in [0, 1] this is the same as B = 80/255 and V = B/6.5 on ``x - mean/255``.
* ``C`` trades the data term against the prior; the IJCV paper sweeps C in {1, 20, 100, 300}
  (larger = more faithful, noisier). Our per-layer defaults come from that grid, picked by the
  image-space error of the reconstruction on training photos (never the held-out evaluation
  photos): 300 up to conv4, 20 for conv5 - less data weight with depth, as the CVPR paper's
  regulariser weights grow with depth (its lambda_TV is 1 for conv1-2, 10 for conv3-4, 100 for
  conv5 and above). The numbers are in the comments of ``MV_DEFAULTS``.
* ``tau`` is jitter (IJCV Sec. 3.3): each step the network sees a random crop of a canvas
  ``J - 1`` pixels larger than the image, ``J = max(1, round(stride / 4))`` with ``stride`` the
  layer's downsampling factor (as in the reference code); the prior acts on the whole canvas and the
  centre crop is the result.
* The optimiser is the reference code's: momentum 0.9 on an AdaGrad-normalised gradient
  (``G <- 0.9 G + g^2``, ``m <- 0.9 m - g / (1/(HW lr) + sqrt(G))``), ``lr = 0.05 B^2 / alpha``,
  300 steps with jitter then 50 steps at a tenth of the rate without jitter, restarted from the
  first stage's result. Adam with a cosine-decaying rate is available (``optimizer="adam"``) for
  comparison; see ``MV_DEFAULTS`` for which was measured to be better.
* Box constraint: the papers bound each pixel's norm by B+ = 2B = 160. Our pixels live in [0, 1],
  so after every step ``z`` is projected onto ``255 x - mean`` with ``x`` in [0, 1] instead (the exact
  range the output can take; B+ would also clip bright, valid pixels, whose norm reaches ~240).
  ``bound=160`` adds the paper's norm bound on top.

Initialisation is the reference code's: uniform noise whose 95% quantile is B / sqrt(3).

Typical use::

    result = invert_optimize(photo, "relu3_1")
    result.image.save("recon.png"); print(result.feature_error, result.seconds)
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from PIL import Image
from tqdm import tqdm

from percept.device import resolve_device
from percept.errors import PerceptError
from percept.evaluation import _relative_error, feature_space_error, image_space_error
from percept.images import to_image, to_tensor
from percept.models.vgg import CAFFE_MEAN_BGR, LossNetwork, check_layers, layer_stride

MEAN_RGB_255 = tuple(reversed(CAFFE_MEAN_BGR))
"""ImageNet channel means (R, G, B) on the 0-255 scale: the regularisers act on ``255 x - mean``."""

MV_DEFAULTS: dict[str, Any] = {
    # --- the objective (IJCV 2016, Sec. 3.3 "Balancing the different terms"; nnpreimage get_defaults.m)
    "C": {1: 300.0, 2: 300.0, 3: 300.0, 4: 300.0, 5: 20.0},
    # data-term weight per VGG block, from the IJCV grid {1, 20, 100, 300}, picked by the image-space
    # error on 128-px crops of two training photos (kodim05, wiki003; mean over both):
    #   relu2_1: C=1 1.32, 20 0.95, 100 0.67, 300 0.52    relu3_1: 1.27, 1.10, 0.87, 0.70
    #   relu4_1: C=1 1.24, 20 1.06, 100 1.00, 300 0.97    relu5_1: 1.24, 1.17, 1.18, 1.23
    # so the largest C up to conv4 and less data weight (more prior) for conv5, as in both papers
    # (CVPR: lambda_TV 1 / 10 / 100 for conv1-2 / conv3-4 / conv5+). Block 1 follows block 2.
    "alpha": 6.0,             # exponent of the alpha-norm prior (both papers)
    "beta": 2.0,              # exponent of the TV^beta prior (both papers; beta=2 avoids spikes)
    "B": 80.0,                # typical norm of a mean-subtracted 0-255 pixel (IJCV: B = 80)
    "V": 80.0 / 6.5,          # typical neighbour difference (IJCV: V = B / 6.5)
    "alpha_weight": 1.0,      # extra multiplier of the alpha-norm term (1 = the paper's 1/(HW B^alpha))
    "tv_weight": 1.0,         # extra multiplier of the TV term (1 = the paper's 1/(HW V^beta))
    "bound": None,            # optional per-pixel norm bound B+ (IJCV: 2B = 160); None = [0, 1] box only
    # --- the optimiser
    "optimizer": "mv",        # "mv": the reference code's momentum + AdaGrad rule; "adam": Adam, cosine decay.
    # Measured on kodim05 (final objective, lower is better): relu4_1 mv 4.41 vs Adam lr 1.5 / 10 / 30:
    # 5.60 / 4.49 / 4.33; relu5_1 mv 0.490 vs 0.664 / 0.535 / 0.501; relu2_1 a tie (30.00 vs 29.99).
    # Adam at its best rate is no better, so the authors' optimiser is the default.
    "lr": None,               # None: 0.05 B^2 / alpha for "mv" (reference code); 4.0 (0-255 units) for "adam"
    "momentum": 0.9,          # reference code
    "iterations": 300,        # first stage, with jitter (reference code: 300)
    "fine_iterations": 50,    # second stage, no jitter, lr x fine_lr_scale (reference code: 50 at 0.1)
    "fine_lr_scale": 0.1,
    "jitter": None,           # None: max(1, round(stride / 4)) as in the reference code; an int J: shifts 0..J-1
    "init": "noise",          # "noise" (reference code) or "grey" (the mean colour)
}
"""Defaults of :func:`invert_optimize`; every key can be overridden by a keyword argument. ``C``
may be a number or a dict keyed by VGG block (1-5)."""

_ADAM_LR = 4.0


@dataclass
class InversionResult:
    """What :func:`invert_optimize` returns."""

    image: Image.Image          # the reconstruction, RGB uint8
    tensor: torch.Tensor        # (1, 3, H, W) float in [0, 1], on the CPU
    seconds: float              # wall time of the optimisation
    feature_error: float        # ||phi(x_hat) - phi0|| / ||phi0|| at the layer, no jitter
    history: list[float] = field(default_factory=list)  # the objective at each step
    settings: dict[str, Any] = field(default_factory=dict)  # the resolved settings used


def _block(layer: str) -> int:
    return int(layer[4]) if layer.startswith("pool") else int(layer.split("_")[0][-1])


def resolve_settings(layer: str, **overrides: Any) -> dict[str, Any]:
    """The settings :func:`invert_optimize` uses for ``layer``: ``MV_DEFAULTS`` with per-block entries
    resolved, the automatic ones filled in, and ``overrides`` applied."""
    check_layers([layer])
    unknown = set(overrides) - set(MV_DEFAULTS)
    if unknown:
        raise PerceptError(f"unknown inversion setting(s) {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(MV_DEFAULTS)}")
    s = {**MV_DEFAULTS, **overrides}
    if isinstance(s["C"], Mapping):
        s["C"] = float(s["C"][_block(layer)])
    if s["optimizer"] not in ("mv", "adam"):
        raise PerceptError(f"unknown optimizer '{s['optimizer']}'; use mv or adam")
    if s["init"] not in ("noise", "grey"):
        raise PerceptError(f"unknown init '{s['init']}'; use noise or grey")
    if s["lr"] is None:
        s["lr"] = 0.05 * s["B"] ** 2 / s["alpha"] if s["optimizer"] == "mv" else _ADAM_LR
    if s["jitter"] is None:
        s["jitter"] = max(1, math.floor(layer_stride(layer) / 4 + 0.5))  # MATLAB round()
    s["jitter"] = int(s["jitter"])
    if s["jitter"] < 1:
        raise PerceptError("jitter must be at least 1 (1 = no jitter)")
    return s


# ----------------------------------------------------------------------------- error measures

# ----------------------------------------------------------------------------- the objective

def alpha_norm(z: torch.Tensor, alpha: float, B: float) -> torch.Tensor:
    """``(1 / (H W B^alpha)) sum_uv ||z_uv||^alpha`` with ``||.||`` the norm over colour channels."""
    sq = z.float().pow(2).sum(1) / (B * B)
    return sq.pow(alpha / 2).mean()


def tv_beta(z: torch.Tensor, beta: float, V: float) -> torch.Tensor:
    """``(1 / (H W V^beta)) sum_uvk ((z_{u,v+1,k}-z_uvk)^2 + (z_{u+1,v,k}-z_uvk)^2)^(beta/2)``; the last
    row and column have zero forward difference (as in the reference code)."""
    z = z.float()
    dx = torch.zeros_like(z)
    dy = torch.zeros_like(z)
    dx[..., :, :-1] = z[..., :, 1:] - z[..., :, :-1]
    dy[..., :-1, :] = z[..., 1:, :] - z[..., :-1, :]
    sq = (dx * dx + dy * dy) / (V * V)
    v = sq if beta == 2.0 else (sq + 1e-8).pow(beta / 2)
    return v.sum(1).mean()


def _mean(device: torch.device) -> torch.Tensor:
    return torch.tensor(MEAN_RGB_255, device=device).view(1, 3, 1, 1)


def _to_z(x: torch.Tensor) -> torch.Tensor:
    return x * 255.0 - _mean(x.device)


def _to_x(z: torch.Tensor) -> torch.Tensor:
    return (z + _mean(z.device)) / 255.0


def _project(z: torch.Tensor, bound: float | None) -> None:
    """In place: optional per-pixel norm bound B+, then the [0, 1] box of the image."""
    if bound is not None:
        nrm = z.pow(2).sum(1, keepdim=True).sqrt().clamp_min(1e-12)
        z.mul_((bound / nrm).clamp(max=1.0))
    mean = _mean(z.device)
    z.copy_(torch.maximum(torch.minimum(z, 255.0 - mean), -mean))


# ----------------------------------------------------------------------------- the optimisation

def _as_target(target: Any, features: torch.Tensor | None) -> tuple[torch.Tensor | None, tuple[int, int]]:
    """(image tensor or None, (H, W)) from a PIL image, a tensor, or an (H, W) size."""
    if isinstance(target, Image.Image):
        x = to_tensor(target)
        return x, (x.shape[2], x.shape[3])
    if isinstance(target, torch.Tensor):
        x = target.detach().float().cpu()
        if x.dim() == 3:
            x = x[None]
        if x.dim() != 4 or x.shape[:2] != (1, 3):
            raise PerceptError(f"target must be one RGB image (1, 3, H, W); got shape {tuple(target.shape)}")
        return x.clamp(0, 1), (x.shape[2], x.shape[3])
    if isinstance(target, (tuple, list)) and len(target) == 2 and all(isinstance(v, int) for v in target):
        if features is None:
            raise PerceptError("a size alone is not enough: give the target features too (features=...)")
        return None, (int(target[0]), int(target[1]))
    raise PerceptError("target must be a PIL image, a (1, 3, H, W) tensor in [0, 1], or an (H, W) size "
                       "together with features=")


def _initial_canvas(s: dict, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """The canvas the optimisation starts from (the reference code's: uniform noise, its 95% quantile scaled to
    B / sqrt(3); or zeros)."""
    if s["init"] != "noise":
        return torch.zeros((1, 3, h, w))
    z = torch.rand((1, 3, h, w), generator=gen) * 2 - 1
    return z / torch.quantile(z.flatten(), 0.95) * s["B"] / math.sqrt(3)


def invert_optimize(target: Image.Image | torch.Tensor | tuple[int, int], layer: str, *,
                    features: torch.Tensor | None = None, iterations: int | None = None,
                    net: LossNetwork | None = None, device: str = "cpu", seed: int = 0,
                    progress: bool = True, **overrides: Any) -> InversionResult:
    """Reconstruct an image from its VGG19 features at ``layer`` (Mahendran & Vedaldi 2015/2016).

    Args:
        target: the photo whose features are inverted (PIL image or (1, 3, H, W) tensor in [0, 1]),
            which also sets the output size; or just an ``(H, W)`` size when ``features`` are given.
        layer: a VGG19 layer name (``relu1_1`` ... ``pool5``).
        features: the target features ``phi0`` to match (1, C, h, w); default: ``target``'s.
        iterations: steps of the first (jittered) stage; default ``MV_DEFAULTS["iterations"]``.
            The second stage adds ``fine_iterations`` steps.
        net: a loss network to reuse (must reach ``layer``); built when omitted.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        seed: seeds the initial noise and the jitter; a fixed seed gives the same result.
        progress: show a tqdm bar.
        **overrides: any ``MV_DEFAULTS`` entry (``C``, ``lr``, ``alpha_weight``, ``tv_weight``,
            ``jitter``, ``optimizer``, ``fine_iterations``, ``bound``, ...).

    Returns:
        an :class:`InversionResult`; ``feature_error`` is measured on the final image without jitter.

    Raises:
        PerceptError: unknown layer (the message lists the valid ones), bad target or setting.
    """
    check_layers([layer])
    if iterations is not None:
        overrides["iterations"] = iterations
    s = resolve_settings(layer, **overrides)
    dev = resolve_device(device)
    x0, (h, w) = _as_target(target, features)
    if net is None:
        net = LossNetwork(layer)
    elif layer not in net.names:
        raise PerceptError(f"the given loss network stops at {net.names[-1]}, before {layer}")
    net = net.to(dev)

    t_start = time.perf_counter()
    with torch.no_grad():
        phi0 = (features.detach().float().to(dev) if features is not None
                else net(x0.to(dev), [layer])[layer].float())
    norm0 = phi0.pow(2).sum().clamp_min(1e-12)
    gen = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)

    def objective(z: torch.Tensor, jitter: int) -> tuple[torch.Tensor, torch.Tensor]:
        jy, jx = rng.randrange(jitter), rng.randrange(jitter)
        crop = z[:, :, jy:jy + h, jx:jx + w]
        phi = net(_to_x(crop), [layer])[layer]
        if phi.shape != phi0.shape:
            raise PerceptError(f"features have shape {tuple(phi0.shape)} but a {h}x{w} image gives "
                               f"{tuple(phi.shape)} at {layer}")
        data = s["C"] * (phi.float() - phi0).pow(2).sum() / norm0
        total = data
        if s["alpha_weight"]:
            total = total + s["alpha_weight"] * alpha_norm(z, s["alpha"], s["B"])
        if s["tv_weight"]:
            total = total + s["tv_weight"] * tv_beta(z, s["beta"], s["V"])
        return total, data

    J = s["jitter"]
    z = _initial_canvas(s, h + J - 1, w + J - 1, gen).to(dev)
    _project(z, s["bound"])

    stages = [(s["iterations"], s["lr"], J)]
    if s["fine_iterations"]:
        stages.append((s["fine_iterations"], s["lr"] * s["fine_lr_scale"], 1))
    total_steps = sum(n for n, _, _ in stages)
    history: list[float] = []
    bar = tqdm(total=total_steps, desc=f"invert {layer}", disable=not progress, dynamic_ncols=True)
    try:
        for n_steps, lr, jitter in stages:
            if z.shape[2] != h + jitter - 1:  # new stage without jitter: restart from the centre crop
                off = (z.shape[2] - h) // 2, (z.shape[3] - w) // 2
                z = z[:, :, off[0]:off[0] + h, off[1]:off[1] + w].contiguous()
            z = z.detach().requires_grad_(True)
            if s["optimizer"] == "adam":
                opt = torch.optim.Adam([z], lr=lr)
                sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, n_steps), eta_min=lr * 0.01)
            else:
                grad_sq = torch.zeros_like(z)
                velocity = torch.zeros_like(z)
                lr_px = lr * h * w  # reference code: lr = numPixels * learningRate
            for _ in range(n_steps):
                total, data = objective(z, jitter)
                grad, = torch.autograd.grad(total, z)
                value = float(total.detach())
                if not math.isfinite(value):
                    raise PerceptError(f"the objective became non-finite at step {len(history) + 1}; "
                                       "try a smaller lr or C")
                with torch.no_grad():
                    if s["optimizer"] == "adam":
                        z.grad = grad
                        opt.step()
                        sched.step()
                    else:
                        grad_sq.mul_(s["momentum"]).add_(grad * grad)
                        velocity.mul_(s["momentum"]).sub_(grad / (1.0 / lr_px + grad_sq.sqrt()))
                        z.add_(velocity)
                    _project(z, s["bound"])
                history.append(value)
                bar.update(1)
                bar.set_postfix(obj=f"{value:.4g}", feat=f"{float(data.detach()) / s['C']:.4f}")
    finally:
        bar.close()

    with torch.no_grad():
        off = (z.shape[2] - h) // 2, (z.shape[3] - w) // 2
        x_hat = _to_x(z[:, :, off[0]:off[0] + h, off[1]:off[1] + w]).clamp(0, 1)
        x_hat = (x_hat * 255).round() / 255  # what the saved uint8 image holds
        seconds = time.perf_counter() - t_start
        err = _relative_error(net(x_hat, [layer])[layer], phi0)
    x_hat = x_hat.detach().cpu()
    return InversionResult(image=to_image(x_hat), tensor=x_hat, seconds=seconds, feature_error=err,
                           history=history, settings=s)


__all__ = ["MV_DEFAULTS", "InversionResult", "invert_optimize", "image_space_error", "feature_space_error",
           "resolve_settings", "alpha_norm", "tv_beta"]
