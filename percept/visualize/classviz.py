"""What a network wants to see, and how little it takes to fool it.

* :func:`class_model` - class model visualisation (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside
  Convolutional Networks", section 2): gradient ascent on the *unnormalised* class score from a grey
  (or lightly noisy) image, regularised the way Yosinski et al. 2015 ("Understanding Neural Networks
  Through Deep Visualization") suggest: L2 decay, a Gaussian blur every few steps and clipping of
  pixels with a small norm. With a loss-network target (``"relu4_1:12"``) it maximises the channel's
  mean activation instead.
* :func:`fooling_image` - an adversarial ("fooling") image (Szegedy et al. 2014, "Intriguing properties
  of neural networks"; Goodfellow et al. 2015): small gradient steps from a photo until the network
  assigns a chosen class, with the size of the change measured (L2, Linf). With ``input_size`` the photo
  keeps its own size and the change is made to survive the usual ImageNet preprocessing (resize the
  short side to 256/224 of the input size and centre-crop; squash to a square): each step follows the
  gradient through those views and a few random resize-and-crops (expectation over transformation,
  Athalye et al. 2018), and success is checked on every usual view of the 8-bit picture.

Both take the same targets as :mod:`percept.visualize.attribution`: a classifier (RGB [0, 1] in,
logits out) and a class index, or a loss-network channel. For a channel target "assigns" means
"the channel is the layer's most active one (by mean activation)".
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from percept.errors import PerceptError
from percept.visualize.attribution import Target, _device_of, _prepare, eval_mode
from percept.visualize.options import ClassvizOptions, FoolOptions


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    from torchvision.transforms.functional import gaussian_blur

    k = max(3, 2 * math.ceil(3 * sigma) + 1)
    return gaussian_blur(x, [k, k], [sigma, sigma])


@dataclass
class ClassModelResult:
    """``image`` (1, 3, H, W) in [0, 1]; the target's score at the start and the end, and per step."""

    image: torch.Tensor
    target: str
    index: int
    start_score: float
    score: float
    probability: float | None
    history: list[float] = field(default_factory=list)
    seconds: float = 0.0


def class_model(model: nn.Module | None, target: Target, size: int | tuple[int, int] = 224,
                steps: int = ClassvizOptions.steps, lr: float = ClassvizOptions.lr,
                decay: float = ClassvizOptions.decay, blur_every: int = ClassvizOptions.blur_every,
                blur_sigma: float | None = None, clip_percentile: float = ClassvizOptions.clip_percentile,
                jitter: int | None = None, init: str = ClassvizOptions.init, seed: int = 0,
                device: str | torch.device | None = None, progress: bool = False,
                callback: Callable[[int, torch.Tensor, float], None] | None = None, labels: Sequence[str] | None = None,
                octaves: int = ClassvizOptions.octaves,
                octave_scale: float = ClassvizOptions.octave_scale) -> ClassModelResult:
    """Class model visualisation: ``argmax_I S_c(I) - decay ||I||^2`` by normalised gradient ascent.

    The image is optimised around grey (``I = 0.5 + d``). Every step: ``d += lr * g / mean|g|``
    (``g`` the gradient of the pre-softmax score, of an image randomly shifted by up to ``jitter``
    pixels), ``d *= 1 - decay`` (L2 decay), every ``blur_every`` steps a Gaussian blur of width
    ``blur_sigma`` (default: ``max(0.5, size / 224)``), pixels whose colour norm is below the
    ``clip_percentile`` percentile set to grey, and ``I`` clipped to [0, 1].

    With ``octaves`` > 1 the ascent starts on an image ``octave_scale ** (octaves - 1)`` times smaller
    and the image is upscaled (bilinear) between octaves, the steps split evenly: large structures
    (the object's outline) form at the coarse scales, detail at the fine ones.

    Args:
        model: a classifier (``None`` for a loss-network target).
        target: a class index, or ``"relu4_1:12"``.
        size: side (or (H, W)) of the image made.
        init: ``"zero"`` (a grey image) or ``"noise"`` (grey plus small noise).
    """
    if init not in ("zero", "noise"):
        raise PerceptError(f"unknown init '{init}'; use zero or noise")
    if steps < 1:
        raise PerceptError(f"steps must be at least 1, got {steps}")
    h, w = (size, size) if isinstance(size, int) else size
    if min(h, w) < 8:
        raise PerceptError(f"image size {w}x{h} is too small; use at least 8 px")
    if octaves < 1 or octave_scale < 1:
        raise PerceptError(f"octaves must be at least 1 and octave_scale at least 1, got {octaves} and {octave_scale}")
    sizes = [(max(8, round(h / octave_scale ** k)), max(8, round(w / octave_scale ** k)))
             for k in range(octaves - 1, -1, -1)]
    plan = [steps // octaves + (1 if k < steps % octaves else 0) for k in range(octaves)]
    gen = torch.Generator().manual_seed(seed)
    h0, w0 = sizes[0]
    d = torch.zeros(1, 3, h0, w0) if init == "zero" else 0.1 * torch.randn(1, 3, h0, w0, generator=gen)
    sc, _, out0 = _prepare(model, (0.5 + d).clamp(0, 1), target, labels, device)
    d = d.to(_device_of(sc.model))
    start = float(out0[0, sc.index])
    history: list[float] = []
    t0 = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(total=steps, desc=f"classviz {sc.name()}", disable=not progress, leave=False)
    schedule = [(k, i) for k, n in enumerate(plan) for i in range(n)]
    with eval_mode(sc.model):
        for step, (octave, first) in enumerate(schedule):
            if first == 0 and tuple(d.shape[2:]) != sizes[octave]:
                d = torch.nn.functional.interpolate(d, size=sizes[octave], mode="bilinear", align_corners=False)
            oh, ow = sizes[octave]
            sigma = blur_sigma if blur_sigma is not None else max(0.5, max(oh, ow) / 224)
            shift = jitter if jitter is not None else max(0, round(max(oh, ow) / 56))
            bar.update(1)
            ox, oy = (torch.randint(-shift, shift + 1, (2,), generator=gen).tolist() if shift else (0, 0))
            d.requires_grad_(True)
            img = (0.5 + d).clamp(0, 1)
            score = sc.model(torch.roll(img, (oy, ox), (2, 3)))[0, sc.index]
            (g,) = torch.autograd.grad(score, d)
            if step == 0 and not bool(g.any()):
                raise PerceptError(f"the gradient of {sc.name()} is zero at the start image (no unit on its path "
                                   "fires); start from noise (init='noise', --init noise)")
            history.append(float(score.detach()))
            with torch.no_grad():
                d = d.detach() + lr * g / (g.abs().mean() + 1e-12)
                d *= 1 - decay
                if blur_every and sigma > 0 and (step + 1) % blur_every == 0:
                    d = _blur(d, sigma)
                if clip_percentile > 0:
                    norm = d.norm(dim=1, keepdim=True)
                    d = d * (norm >= torch.quantile(norm.flatten(), clip_percentile / 100))
                d = (0.5 + d).clamp(0, 1) - 0.5
            if callback is not None:
                callback(step, (0.5 + d).detach(), history[-1])
    bar.close()
    img = (0.5 + d).detach()
    with torch.no_grad():
        out = sc.model(img)
    p = float(out[0].softmax(0)[sc.index]) if sc.kind == "class" else None
    return ClassModelResult(img.cpu(), sc.name(), sc.index, start, float(out[0, sc.index]), p, history,
                            time.perf_counter() - t0)


@dataclass
class FoolResult:
    """A fooling image and how big the change was (pixel units in [0, 1]; ``linf * 255`` in 8-bit steps).

    ``l2`` is the Euclidean norm of the whole change, ``rms`` its root-mean-square per value."""

    image: torch.Tensor
    original: torch.Tensor
    success: bool
    steps: int
    start_index: int
    start_label: str
    start_probability: float | None
    index: int
    label: str
    probability: float | None
    final_index: int
    l2: float
    rms: float
    linf: float
    final_label: str = ""
    holds_for: str = ""
    """How the classifier was shown the picture when it was checked (``input_size``: the usual preprocessing)."""

    def difference(self, gain: float = FoolOptions.gain) -> torch.Tensor:
        """The change, magnified ``gain`` times and centred at grey: (1, 3, H, W) in [0, 1]."""
        return (0.5 + gain * (self.image - self.original)).clamp(0, 1)


def resize_crop(x: torch.Tensor, short: int, size: int, top: int | None = None,
                left: int | None = None) -> torch.Tensor:
    """``x`` (N, 3, H, W) with its short side scaled to ``short`` (bilinear, antialiased: what PIL and
    torchvision do), then the ``size`` x ``size`` crop at ``top``, ``left`` (default: the centre);
    differentiable."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    scale = short / min(h, w)
    nh, nw = max(size, int(h * scale)), max(size, int(w * scale))
    y = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    top = int(round((nh - size) / 2)) if top is None else top
    left = int(round((nw - size) / 2)) if left is None else left
    return y[..., top:top + size, left:left + size]


def squash(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` scaled to ``size`` x ``size`` whatever its aspect (bilinear, antialiased); differentiable."""
    import torch.nn.functional as F

    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def usual_views(size: int) -> list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
    """The usual ImageNet preprocessing for a ``size`` input: (description, function) pairs."""
    short = round(size * 256 / 224)
    return [(f"resize to {short} and centre-crop {size}", lambda t: resize_crop(t, short, size)),
            (f"resize to {size} and centre-crop {size}", lambda t: resize_crop(t, size, size)),
            (f"squash to {size}x{size}", lambda t: squash(t, size))]


def _random_view(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """A random resize (short side ``size`` .. 1.3 ``size``) and crop of ``x``."""
    short = int(torch.randint(size, round(size * 1.3) + 1, (1,), generator=gen))
    h, w = x.shape[-2:]
    nh, nw = max(size, int(h * short / min(h, w))), max(size, int(w * short / min(h, w)))
    top = int(torch.randint(0, nh - size + 1, (1,), generator=gen))
    left = int(torch.randint(0, nw - size + 1, (1,), generator=gen))
    return resize_crop(x, short, size, top, left)


def fooling_image(model: nn.Module | None, image: torch.Tensor, to: Target, step: float = FoolOptions.step / 255,
                  max_steps: int = FoolOptions.max_steps, device: str | torch.device | None = None,
                  labels: Sequence[str] | None = None, input_size: int | None = None, views: int = 4,
                  margin: float = 1.0, seed: int = 0) -> FoolResult:
    """Change ``image`` by small gradient steps until the network assigns class ``to``.

    Each step moves along the gradient of the margin ``score[to] - max(other scores)``, scaled so no
    pixel moves more than ``step``; the image stays in [0, 1]. Success is checked on the image
    rounded to 8 bits, so the saved PNG fools the network too. ``to`` is a class index, or
    ``"relu4_1:12"`` (success: channel 12 is relu4_1's most active channel).

    Without ``input_size`` the network sees ``image`` as it is. With it (a classifier's input side),
    ``image`` keeps its own size and the network sees it as a reader of the file would: each step
    follows the summed margin of the usual preprocessing (:func:`usual_views`) and ``views`` random
    resize-and-crops, and success means every usual view assigns ``to`` by at least ``margin`` (a
    logit difference, so another library's resampling agrees too).
    """
    if step <= 0:
        raise PerceptError(f"the step size must be positive, got {step}")
    if max_steps < 1:
        raise PerceptError(f"max_steps must be at least 1, got {max_steps}")
    if input_size is not None:
        return _fool_through_preprocessing(model, image, to, step, max_steps, device, labels, input_size, views,
                                           margin, seed)
    sc, x, out = _prepare(model, image, to, labels, device)
    start = int(out[0].argmax())
    probs0 = out[0].softmax(0) if sc.kind == "class" else None
    adv = x.clone()
    taken = 0
    quant = x.clone()

    def assigned(t: torch.Tensor) -> tuple[bool, torch.Tensor]:
        with torch.no_grad():
            o = sc.model(t)
        return int(o[0].argmax()) == sc.index, o

    with eval_mode(sc.model):
        done, o = assigned(quant)
        while not done and taken < max_steps:
            adv.requires_grad_(True)
            s = sc.model(adv)[0]
            others = torch.cat([s[:sc.index], s[sc.index + 1:]])
            (g,) = torch.autograd.grad(s[sc.index] - others.max(), adv)
            with torch.no_grad():
                adv = (adv.detach() + step * g.sign()).clamp(0, 1)
            taken += 1
            quant = torch.round(adv * 255) / 255
            done, o = assigned(quant)
    final = int(o[0].argmax())
    delta = (quant - x).flatten()
    p = o[0].softmax(0) if sc.kind == "class" else None
    return FoolResult(quant.detach().cpu(), x.cpu(), done, taken, start, sc.name(start),
                      None if probs0 is None else float(probs0[start]), sc.index, sc.name(),
                      None if p is None else float(p[sc.index]), final, float(delta.norm()),
                      float(delta.pow(2).mean().sqrt()), float(delta.abs().max()), sc.name(final))


def _fool_through_preprocessing(model, image, to, step, max_steps, device, labels, input_size, views, margin,
                                seed) -> FoolResult:
    if model is None or (isinstance(to, str) and ":" in to):
        raise PerceptError("fooling through the usual preprocessing needs a classifier and a class")
    checks = usual_views(input_size)
    x = image if image.dim() == 4 else image[None]
    first = checks[0][1]
    sc, _, out = _prepare(model, first(x), to, labels, device)
    x = x.to(_device_of(sc.model))
    gen = torch.Generator().manual_seed(seed)
    start = int(out[0].argmax())
    probs0 = out[0].softmax(0)

    def margins(scores: torch.Tensor) -> torch.Tensor:
        others = torch.cat([scores[:, :sc.index], scores[:, sc.index + 1:]], 1)
        return scores[:, sc.index] - others.max(1).values

    def check(t: torch.Tensor) -> tuple[bool, torch.Tensor]:
        with torch.no_grad():
            o = sc.model(torch.cat([f(t) for _, f in checks]))
        return bool((margins(o) >= margin).all()), o

    adv, quant, taken = x.clone(), x.clone(), 0
    with eval_mode(sc.model):
        done, o = check(quant)
        while not done and taken < max_steps:
            adv.requires_grad_(True)
            batch = [f(adv) for _, f in checks] + [_random_view(adv, input_size, gen) for _ in range(views)]
            # margins capped a little above the goal: views already fooled stop pulling, the others get the step
            loss = margins(sc.model(torch.cat(batch))).clamp(max=margin + 1).sum()
            (g,) = torch.autograd.grad(loss, adv)
            with torch.no_grad():
                adv = (adv.detach() + step * g.sign()).clamp(0, 1)
            taken += 1
            quant = torch.round(adv * 255) / 255
            done, o = check(quant)
    final = int(o[0].argmax())
    delta = (quant - x).flatten()
    p = o[0].softmax(0)
    return FoolResult(quant.detach().cpu(), x.cpu(), done, taken, start, sc.name(start), float(probs0[start]),
                      sc.index, sc.name(), float(p[sc.index]), final, float(delta.norm()),
                      float(delta.pow(2).mean().sqrt()), float(delta.abs().max()), sc.name(final),
                      holds_for=f"the file at {x.shape[-1]}x{x.shape[-2]}, read with the usual preprocessing: "
                                + "; ".join(d for d, _ in checks))


__all__ = ["ClassModelResult", "class_model", "FoolResult", "fooling_image", "resize_crop", "squash", "usual_views"]
