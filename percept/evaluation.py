"""The quality metrics that the evaluation scripts, the inference API and the tools report.

Feature inversion (Mahendran & Vedaldi 2015; Dosovitskiy & Brox 2016): :func:`image_space_error`
and :func:`feature_space_error`, normalised so 0 is perfect and 1 is "no information".

Style transfer: :class:`StyleMetric`.

For a stylised image ``y`` of photo ``x`` and painting ``s`` (all with the long side at ``size``):

* style loss: the library's default :class:`~percept.models.losses.StyleLoss` between ``y`` and
  ``s`` (relative Gram error, relu1_1 .. relu5_1, averaged over layers);
* content loss: the default content loss between ``y`` and ``x`` at relu4_2;
* raw style loss: the same Gram matrices without the per-layer normalisation (plain mean squared
  Gram difference, summed over the five layers, as in Johnson et al.'s code). With the Caffe
  weights it is dominated by relu4_1; it is reported as a second opinion.

Lower is better for both. The same numbers are computed for every method (our networks, the peer,
the Gatys baseline), so they compare like with like.

Video: :func:`warping_error` (Lai et al. 2018, "Learning Blind Video Temporal Consistency"), the flicker of
a stylised clip measured along the motion of its source clip; (:func:`percept.inference.video.read_clip`
reads a clip's frames).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from percept.errors import PerceptError
from percept.flow import FlowEstimator, consistent, warp
from percept.images import resize_long_side, to_float, to_tensor
from percept.models.losses import PerceptualLoss, gram_matrix
from percept.models.vgg import LossNetwork, check_layers

__all__ = ["StyleMetric", "StyleScore", "feature_space_error", "image_space_error", "warping_error",
           "WarpingError"]


@dataclass
class StyleScore:
    style: float
    content: float
    style_raw: float = float("nan")


class StyleMetric:
    """Scores stylised images against one painting (its Gram matrices are computed once)."""

    def __init__(self, painting: Image.Image, size: int = 512, loss: PerceptualLoss | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.size = size
        self.device = torch.device(device)
        self.loss = (loss or PerceptualLoss()).to(self.device)
        self.loss.set_style(to_tensor(resize_long_side(painting, size)).to(self.device))

    @torch.no_grad()
    def __call__(self, stylized: Image.Image, photo: Image.Image) -> StyleScore:
        x = to_tensor(resize_long_side(photo, self.size)).to(self.device)
        y = stylized if stylized.size == (x.shape[3], x.shape[2]) else stylized.resize((x.shape[3], x.shape[2]), Image.Resampling.LANCZOS)
        yt = to_tensor(y).to(self.device)
        out = self.loss(yt, x)
        feats = self.loss.net(yt, self.loss.style.layers)
        raw = sum(F.mse_loss(gram_matrix(feats[k]), t) for k, t in self.loss.style.targets.items())
        return StyleScore(style=float(out["style"]), content=float(out["content"]), style_raw=float(raw))


def image_space_error(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    """Normalised image error ``||x_hat - x|| / ||x - mean(x)||`` (mean over all of ``x``'s pixels and
    channels); for a batch, the mean over images. 0 is perfect; a flat image at ``x``'s mean scores 1."""
    x_hat = x_hat.detach().float().cpu()
    x = x.detach().float().cpu()
    if x_hat.shape != x.shape:
        raise ValueError(f"shapes differ: {tuple(x_hat.shape)} vs {tuple(x.shape)}")
    if x.dim() == 3:
        x, x_hat = x[None], x_hat[None]
    n = x.shape[0]
    x, x_hat = x.reshape(n, -1), x_hat.reshape(n, -1)
    num = (x_hat - x).norm(dim=1)
    den = (x - x.mean(dim=1, keepdim=True)).norm(dim=1).clamp_min(1e-12)
    return float((num / den).mean())


@torch.no_grad()
def feature_space_error(net: LossNetwork, x_hat: torch.Tensor, x: torch.Tensor, layer: str) -> float:
    """Normalised feature error ``||phi(x_hat) - phi(x)|| / ||phi(x)||`` at ``layer``; for a batch,
    the mean over images."""
    check_layers([layer])
    dev = next(net.parameters()).device
    a = net(x_hat.to(dev).float(), [layer])[layer]
    b = net(x.to(dev).float(), [layer])[layer]
    return _relative_error(a, b)


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    n = b.shape[0]
    a, b = a.reshape(n, -1).float(), b.reshape(n, -1).float()
    return float(((a - b).norm(dim=1) / b.norm(dim=1).clamp_min(1e-12)).mean())


# ----------------------------------------------------------------------------------- video

@dataclass
class WarpingError:
    """:func:`warping_error`'s answer: ``value`` the mean over frame pairs; ``per_pair`` each pair's;
    ``valid`` the mean fraction of pixels the mask kept."""

    value: float
    per_pair: list[float]
    valid: float


def warping_error(source: "list", stylised: "list", preset: str = "medium") -> WarpingError:
    """E_warp of Lai et al. 2018: the mean over consecutive pairs of
    ``sum(M * |W(O_t) - O_{t-1}|^2) / sum(M)``, images in [0, 1], the squares summed over the colour
    channels. The flow t-1 -> t is DIS optical flow (OpenCV, ``preset``) on the *source* frames;
    ``W(O_t)`` is frame t of ``stylised`` warped into frame t-1 by it; ``M`` keeps the pixels that pass
    the forward-backward occlusion check and do not flow out of the frame. ``source`` itself as
    ``stylised`` gives the clip's own E_warp (the floor: what warping and occlusion leave).

    Both are lists of RGB uint8 frames (H, W, 3); ``stylised`` may have another size (the flow is
    resized to it).
    """
    import numpy as np

    if len(source) != len(stylised):
        raise PerceptError(f"the clips have different lengths: {len(source)} and {len(stylised)} frames")
    if len(source) < 2:
        raise PerceptError("a warping error needs at least two frames")
    est = FlowEstimator(preset)
    errors, valid = [], []
    for t in range(1, len(source)):
        a, b = source[t - 1], source[t]
        if a.shape != b.shape:
            raise PerceptError(f"the source clip changes size at frame {t}: {a.shape[1]}x{a.shape[0]} -> "
                               f"{b.shape[1]}x{b.shape[0]}")
        fw, bw = est(a, b), est(b, a)
        mask = consistent(fw, bw)
        o_prev, o_t = stylised[t - 1], stylised[t]
        if o_prev.shape[:2] != a.shape[:2]:
            import cv2

            h, w = o_prev.shape[:2]
            sx, sy = w / a.shape[1], h / a.shape[0]
            fw = cv2.resize(fw, (w, h), interpolation=cv2.INTER_LINEAR) * np.array([sx, sy], np.float32)
            mask = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
        warped, _ = warp(to_float(o_t), fw)
        d = ((warped - to_float(o_prev)) ** 2).sum(-1)
        n = int(mask.sum())
        errors.append(float((d * mask).sum() / n) if n else 0.0)
        valid.append(n / mask.size)
    return WarpingError(float(np.mean(errors)), errors, float(np.mean(valid)))
