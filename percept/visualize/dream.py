"""DeepDream on the VGG19 loss network (Mordvintsev, Olah & Tyka 2015, "Inceptionism: Going Deeper
into Neural Networks", and Google's ``deepdream`` notebooks).

Gradient *ascent* on a photo, so that whatever a layer sees in it, it sees more of:

* objective: a layer's squared L2 norm (``relu4_2``; its gradient is the activation itself, as in
  the Caffe notebook's ``objective_L2``), one channel's mean activation (``relu4_2:33``), or, with a
  guide image, the notebook's ``objective_guide``: each position's features are pulled towards the
  guide's feature vector with which they have the largest dot product;
* an octave pyramid: the photo is shrunk ``octaves - 1`` times by ``octave_scale``; dreaming starts
  at the smallest and the *detail* (dream minus photo) is upscaled and carried to the next octave,
  so large structures form at coarse scales and detail at fine ones;
* each step: random jitter (roll by up to ``jitter`` px), the gradient normalised by its mean
  magnitude, a step of ``step_size`` (pixel units, [0, 1] range) and pixel clipping to [0, 1];
* optional regularisers, each its own switch: ``grad_decay`` (L2 decay: the dream detail shrinks
  by this fraction each step), ``grad_blur`` (Gaussian blur of the gradient, sigma in px),
  ``grad_clip`` (the normalised gradient is clipped at +-K), ``laplacian_norm`` (the TensorFlow
  notebook's Laplacian-pyramid gradient normalisation: every frequency band of the gradient is
  scaled to unit RMS, so low frequencies get as much step as high ones and the dream is smoother).

:func:`dream_zoom` is the notebook's "infinite zoom": dream, zoom into the centre by ``zoom_scale``,
dream again (with fewer steps), and so on; the frames make a GIF (and an MP4 when OpenCV can write one).

Typical use::

    res = deep_dream(to_tensor(photo), "relu4_2")
    res.image.save("dream.png"); print(res.objective_before, res.objective_after)
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from percept.device import resolve_device
from percept.errors import PerceptError
from percept.images import atomic_path, atomic_write_bytes, to_image
from percept.models.vgg import LossNetwork
from percept.visualize.common import ChannelTarget, parse_target
from percept.visualize.maximize import gaussian_blur, normalize_grad, octave_sizes, random_shift, resize
from percept.visualize.options import DREAM_TARGET, DreamOptions

DREAM_DEFAULTS = dict(target="relu4_2", steps=10, octaves=4, octave_scale=1.4, step_size=0.003, jitter=32)
"""The Google notebook's schedule (10 steps x 4 octaves x 1.4, jitter 32 px) with half its step: its
1.5 on the 0-255 scale is 0.006 here, and on VGG19's relu4_2 (whose gradient is more concentrated
than GoogLeNet's) that paints over the whole photo at 256 px (big eyes everywhere, the photo's
details gone); 0.003 keeps the photo recognisable under the dream (mean pixel change ~0.05)."""


# -------------------------------------------------------------------------------- objectives

def _as_target(target: str | ChannelTarget, net=None) -> ChannelTarget:
    """A target of the loss network, or of ``net`` when it is a classifier's layers
    (:class:`~percept.visualize.attribution.ClassifierLayers`: ``_blocks.10``, ``logits:ostrich``)."""
    if net is not None and hasattr(net, "parse"):
        return net.parse(target)
    return target if isinstance(target, ChannelTarget) else parse_target(str(target))


def dream_objective(feat: torch.Tensor, target: ChannelTarget, guide: torch.Tensor | None = None) -> torch.Tensor:
    """The quantity DeepDream raises, per image, from the target layer's features ``feat`` (N, C, h, w):
    mean squared activation (layer), mean activation of the channel, or - with ``guide`` features
    (C, h', w') - the mean over positions of the best dot product with a guide feature vector."""
    if guide is not None:
        n, c = feat.shape[:2]
        x = feat.reshape(n, c, -1).transpose(1, 2)              # (N, hw, C)
        y = guide.reshape(c, -1).to(feat.dtype)                 # (C, h'w')
        return (x @ y).amax(dim=2).mean(dim=1)
    if target.channel is not None:
        return feat[:, target.channel].flatten(1).mean(1)
    return feat.pow(2).flatten(1).mean(1)


# -------------------------------------------------------------------------------- Laplacian norm

def _lap_kernel(c: int, device, dtype) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device, dtype=dtype)
    k2 = torch.outer(k, k) / 256.0
    return k2.expand(c, 1, 5, 5).contiguous()


def laplacian_split(x: torch.Tensor, levels: int = 4) -> list[torch.Tensor]:
    """Split (N, C, H, W) into ``levels`` Laplacian-pyramid bands, finest first (the coarsest is the
    low-pass residual). Their :func:`laplacian_merge` is ``x`` again."""
    k = _lap_kernel(x.shape[1], x.device, x.dtype)
    bands = []
    cur = x
    for _ in range(levels - 1):
        h, w = cur.shape[-2:]
        if min(h, w) < 4:
            break
        pad = "reflect" if min(h, w) > 2 else "replicate"
        lo = F.conv2d(F.pad(cur, (2, 2, 2, 2), mode=pad), k, stride=2, groups=cur.shape[1])
        up = _upsample(lo, (h, w), k)
        bands.append(cur - up)
        cur = lo
    bands.append(cur)
    return bands


def _upsample(lo: torch.Tensor, size: tuple[int, int], k: torch.Tensor) -> torch.Tensor:
    h, w = size
    oph = h - (2 * lo.shape[-2] - 1)
    opw = w - (2 * lo.shape[-1] - 1)
    return F.conv_transpose2d(lo, k * 4, stride=2, padding=2, output_padding=(oph, opw), groups=lo.shape[1])


def laplacian_merge(bands: Sequence[torch.Tensor]) -> torch.Tensor:
    """Inverse of :func:`laplacian_split`."""
    cur = bands[-1]
    for band in reversed(bands[:-1]):
        k = _lap_kernel(cur.shape[1], cur.device, cur.dtype)
        cur = band + _upsample(cur, band.shape[-2:], k)
    return cur


def laplacian_normalize(g: torch.Tensor, levels: int = 4, eps: float = 1e-10) -> torch.Tensor:
    """Scale every Laplacian band of ``g`` to unit RMS (per image) and merge (TF notebook's ``lap_normalize``)."""
    bands = laplacian_split(g, levels)
    normed = [b / b.pow(2).flatten(1).mean(1).sqrt().clamp_min(eps).view(-1, 1, 1, 1) for b in bands]
    return laplacian_merge(normed)


# -------------------------------------------------------------------------------- the dream

@dataclass
class DreamResult:
    """What :func:`deep_dream` returns."""

    image: Image.Image
    tensor: torch.Tensor            # (1, 3, H, W) in [0, 1], on the CPU
    target: str
    objective_before: float         # the objective on the input photo (full size, no jitter)
    objective_after: float          # ... on the dream
    seconds: float
    settings: dict = field(default_factory=dict)


def _check_settings(steps, octaves, octave_scale, step_size, jitter, grad_decay, grad_blur, grad_clip,
                    laplacian_levels) -> None:
    if steps < 1:
        raise PerceptError(f"steps must be at least 1, got {steps}")
    if octaves < 1:
        raise PerceptError(f"octaves must be at least 1, got {octaves}")
    if octave_scale < 1:
        raise PerceptError(f"the octave scale must be >= 1, got {octave_scale}")
    if step_size <= 0:
        raise PerceptError(f"the step size must be positive, got {step_size}")
    if jitter < 0 or grad_blur < 0 or grad_clip < 0:
        raise PerceptError("jitter, grad_blur and grad_clip must be >= 0")
    if not 0 <= grad_decay < 1:
        raise PerceptError(f"grad_decay must be in [0, 1), got {grad_decay}")
    if laplacian_levels < 1:
        raise PerceptError("laplacian_levels must be at least 1")


def deep_dream(image: torch.Tensor, target: str | ChannelTarget = DREAM_TARGET, steps: int = DreamOptions.steps,
               octaves: int = DreamOptions.octaves, octave_scale: float = DreamOptions.octave_scale,
               step_size: float = DreamOptions.step_size, jitter: int = DreamOptions.jitter,
               grad_decay: float = DreamOptions.grad_decay, grad_blur: float = DreamOptions.grad_blur,
               grad_clip: float = DreamOptions.grad_clip, laplacian_norm: bool = DreamOptions.laplacian_norm,
               laplacian_levels: int = DreamOptions.laplacian_levels, guide: torch.Tensor | None = None,
               net: LossNetwork | None = None, device: str = "auto", seed: int = 0, progress: bool = True,
               guide_features: torch.Tensor | None = None) -> DreamResult:
    """DeepDream one image (1, 3, H, W) in [0, 1].

    Args:
        target: ``"relu4_2"`` (a layer's L2 norm) or ``"relu4_2:33"`` (one channel); with ``net`` a
            :class:`~percept.visualize.attribution.ClassifierLayers`, one of its layers (``"_blocks.10"``,
            ``"_blocks.10:5"``) or a class logit (``"logits:flamingo"``).
        steps: ascent steps per octave. octaves, octave_scale: the pyramid (smallest octave's short
            side at least 32 px).
        step_size: pixel step of the normalised gradient ([0, 1] range).
        jitter: largest random roll in px (at every octave).
        grad_decay: L2 decay of the dream detail per step (0: off).
        grad_blur: sigma (px) of a Gaussian blur of the gradient (0: off).
        grad_clip: clip the normalised gradient at +-K (mean magnitude 1; 0: off).
        laplacian_norm, laplacian_levels: Laplacian-pyramid gradient normalisation.
        guide: an image (1, 3, H', W') whose features the dream should take on (layer targets only).
        guide_features: precomputed guide features at the target layer (used instead of ``guide``).
    """
    t = _as_target(target, net)
    _check_settings(steps, octaves, octave_scale, step_size, jitter, grad_decay, grad_blur, grad_clip,
                    laplacian_levels)
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ValueError("deep_dream takes one RGB image (1, 3, H, W)")
    if (guide is not None or guide_features is not None) and t.channel is not None:
        raise PerceptError("a guide image works with a layer target (e.g. relu4_2), not a channel")
    dev = resolve_device(device)
    t_start = time.perf_counter()
    if net is None:
        net = LossNetwork(t.layer)
    net = net.to(dev)
    layer = t.layer
    photo = image.to(dev).float()
    gfeat = None
    if guide_features is not None:
        gfeat = guide_features.to(dev)
    elif guide is not None:
        with torch.no_grad():
            gfeat = net(guide.to(dev).float(), [layer])[layer][0]
    gen = torch.Generator().manual_seed(seed)
    full = tuple(photo.shape[-2:])
    sizes = octave_sizes(full, octaves, octave_scale)
    bases = [resize(photo, s) for s in sizes]
    with torch.no_grad():
        before = float(dream_objective(net(photo, [layer])[layer], t, gfeat)[0])
    detail = torch.zeros_like(bases[0])
    bar = tqdm(total=len(sizes) * steps, desc=f"dream {t}", disable=not progress, dynamic_ncols=True)
    x = photo
    try:
        for oi, base in enumerate(bases):
            detail = resize(detail, tuple(base.shape[-2:]))
            x = (base + detail).clamp(0, 1)
            for _ in range(steps):
                dy, dx = random_shift(jitter, gen)
                xs = torch.roll(x, (dy, dx), (2, 3)).detach().requires_grad_(True)
                obj = dream_objective(net(xs, [layer])[layer], t, gfeat)
                (g,) = torch.autograd.grad(obj.sum(), xs)
                g = torch.roll(g, (-dy, -dx), (2, 3))
                with torch.no_grad():
                    if grad_blur:
                        g = gaussian_blur(g, grad_blur)
                    if laplacian_norm:
                        g = laplacian_normalize(g, laplacian_levels)
                    g = normalize_grad(g)
                    if grad_clip:
                        g = g.clamp(-grad_clip, grad_clip)
                    x = x + step_size * g
                    if grad_decay:
                        x = base + (x - base) * (1 - grad_decay)
                    x = x.clamp(0, 1)
                bar.update(1)
                bar.set_postfix(octave=f"{oi + 1}/{len(sizes)}", objective=f"{float(obj.detach()[0]):.4g}")
            detail = x - base
    finally:
        bar.close()
    with torch.no_grad():
        after = float(dream_objective(net(x, [layer])[layer], t, gfeat)[0])
    out = x.detach().cpu()
    settings = dict(target=str(t), steps=steps, octaves=len(sizes), octave_scale=octave_scale, step_size=step_size,
                    jitter=jitter, grad_decay=grad_decay, grad_blur=grad_blur, grad_clip=grad_clip,
                    laplacian_norm=laplacian_norm, guided=gfeat is not None)
    return DreamResult(to_image(out), out, str(t), before, after, time.perf_counter() - t_start, settings)


# -------------------------------------------------------------------------------- infinite zoom

def zoom_in(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Enlarge the centre of (N, C, H, W) by ``scale`` (>= 1), keeping the size (the notebook's
    affine transform between frames)."""
    if scale < 1:
        raise PerceptError(f"the zoom scale must be >= 1, got {scale}")
    h, w = x.shape[-2:]
    ch, cw = h / scale, w / scale
    theta = torch.tensor([[cw / w, 0, 0], [0, ch / h, 0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


@dataclass
class ZoomResult:
    frames: list[Image.Image]
    seconds: float
    objectives: list[float]


def dream_zoom(image: torch.Tensor, frames: int, zoom_scale: float = DreamOptions.zoom_scale,
               zoom_steps: int | None = None, zoom_octaves: int | None = None, progress: bool = True,
               frame_callback=None, **dream_kwargs) -> ZoomResult:
    """The "infinite zoom": frame 0 is :func:`deep_dream` of ``image``; each later frame zooms into the
    previous one by ``zoom_scale`` and dreams on it with ``zoom_steps`` steps (default: half the
    first frame's) over ``zoom_octaves`` octaves (default 2). ``frame_callback(i, image)`` is called
    as each frame is ready (e.g. to save it)."""
    if frames < 1:
        raise PerceptError(f"--zoom-frames must be at least 1, got {frames}")
    t_start = time.perf_counter()
    net = dream_kwargs.pop("net", None)
    target = _as_target(dream_kwargs.pop("target", "relu4_2"), net)
    net = net or LossNetwork(target.layer)
    dev = resolve_device(dream_kwargs.get("device", "auto"))
    net = net.to(dev)
    guide = dream_kwargs.pop("guide", None)
    gfeat = None
    if guide is not None:
        with torch.no_grad():
            gfeat = net(guide.to(dev).float(), [target.layer])[target.layer][0]
    steps = dream_kwargs.pop("steps", 10)
    octaves = dream_kwargs.pop("octaves", 4)
    seed = dream_kwargs.pop("seed", 0)
    z_steps = zoom_steps or max(1, steps // 2)
    z_oct = zoom_octaves or min(2, octaves)
    out: list[Image.Image] = []
    objectives: list[float] = []
    x = image
    bar = tqdm(range(frames), desc="zoom frames", disable=not progress, dynamic_ncols=True)
    for i in bar:
        if i:
            x = zoom_in(x, zoom_scale)
        res = deep_dream(x, target, steps=steps if i == 0 else z_steps, octaves=octaves if i == 0 else z_oct,
                         net=net, guide_features=gfeat, seed=seed + i, progress=False, **dream_kwargs)
        x = res.tensor
        out.append(res.image)
        objectives.append(res.objective_after)
        if frame_callback is not None:
            frame_callback(i, res.image)
    return ZoomResult(out, time.perf_counter() - t_start, objectives)


def save_gif(frames: Sequence[Image.Image], path: str | os.PathLike, fps: float = DreamOptions.fps) -> Path:
    """An animated, looping GIF, written atomically."""
    buf = io.BytesIO()
    pal = [f.convert("RGB") for f in frames]
    pal[0].save(buf, format="GIF", save_all=True, append_images=pal[1:], duration=max(20, round(1000 / fps)),
                loop=0, optimize=False)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def save_mp4(frames: Sequence[Image.Image], path: str | os.PathLike, fps: float = DreamOptions.fps) -> Path | None:
    """An MP4 (OpenCV ``mp4v``), written to a temporary file and renamed; ``None`` if OpenCV cannot
    write one here."""
    try:
        import cv2
        import numpy as np
    except ImportError:
        return None
    class _Unwritable(Exception):
        pass

    path = Path(path)
    w, h = frames[0].size
    try:
        with atomic_path(path, ".mp4") as tmp:
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
            if not writer.isOpened():
                raise _Unwritable
            for f in frames:
                writer.write(cv2.cvtColor(np.asarray(f.convert("RGB")), cv2.COLOR_RGB2BGR))
            writer.release()
            if tmp.stat().st_size == 0:
                raise _Unwritable
    except _Unwritable:
        return None
    return path


__all__ = ["DREAM_DEFAULTS", "DreamResult", "deep_dream", "dream_objective", "laplacian_split", "laplacian_merge",
           "laplacian_normalize", "zoom_in", "ZoomResult", "dream_zoom", "save_gif", "save_mp4"]
