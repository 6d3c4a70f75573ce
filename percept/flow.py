"""Optical flow, warping and occlusion masks (OpenCV's DIS flow), shared by the temporal-consistency metric
(:func:`percept.evaluation.warping_error`) and flow-guided video stylisation
(:class:`percept.inference.temporal.TemporalFilter`). Core module: numpy and OpenCV only.

Conventions: a flow ``f`` from frame ``a`` to frame ``b`` is (H, W, 2) float32 in pixels (x, y), with
``a(p) ~ b(p + f(p))``; :func:`warp` ``(b, f)`` brings ``b`` into ``a``'s pixel grid.
"""

from __future__ import annotations

import functools

import numpy as np

from percept.argtypes import FLOW_PRESETS
from percept.errors import PerceptError
from percept.images import to_uint8

PRESETS = {name: code for code, name in enumerate(FLOW_PRESETS)}
"""DIS preset name -> OpenCV's code (0 ultrafast, 1 fast, 2 medium)."""


def _cv2():
    import cv2

    return cv2


def gray(frame: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) or float in [0, 1] -> uint8 grey (what DIS takes)."""
    cv2 = _cv2()
    if frame.dtype != np.uint8:
        frame = to_uint8(frame)
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


class FlowEstimator:
    """DIS optical flow (Kroeger et al. 2016) with one of OpenCV's presets. (The flow-guided filter shrinks
    its frames itself, so it computes the flow at a reduced resolution.)"""

    def __init__(self, preset: str = "medium") -> None:
        if preset not in PRESETS:
            raise PerceptError(f"unknown optical flow preset '{preset}'; use {', '.join(PRESETS)}")
        self.preset = preset
        self._dis = _cv2().DISOpticalFlow_create(PRESETS[preset])

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from ``a`` to ``b`` (grey uint8 or RGB), (H, W, 2)."""
        return self._dis.calc(gray(a), gray(b), None)


@functools.lru_cache(maxsize=8)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def warp(image: np.ndarray, flow: np.ndarray, cubic: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (H, W[, C], any dtype) sampled at ``p + flow(p)`` (bilinear; bicubic with ``cubic``, which
    blurs less when an image is warped again and again): the image brought into the grid the flow starts
    from. Also returns the boolean mask of pixels whose source lies inside the image."""
    cv2 = _cv2()
    h, w = flow.shape[:2]
    xs, ys = _grid(h, w)
    mx, my = xs + flow[..., 0], ys + flow[..., 1]
    out = cv2.remap(image, mx, my, interpolation=cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return out, inside


def consistent(fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Pixels (of the grid ``fw`` starts from) that pass the forward-backward check of Sundaram et al.
    2010, as Lai et al. 2018 use it: occluded where ``|fw + W(bw)|^2 > 0.01 (|fw|^2 + |W(bw)|^2) + 0.5``,
    and pixels flowing out of the frame. ``fw``: flow a -> b, ``bw``: flow b -> a."""
    bw_w, inside = warp(bw, fw)
    sx, sy = fw[..., 0] + bw_w[..., 0], fw[..., 1] + bw_w[..., 1]   # (not .sum(-1): slow over a 2-wide axis)
    diff = sx * sx + sy * sy
    bound = 0.01 * (fw[..., 0] ** 2 + fw[..., 1] ** 2 + bw_w[..., 0] ** 2 + bw_w[..., 1] ** 2) + 0.5
    return (diff <= bound) & inside


__all__ = ["FlowEstimator", "warp", "consistent", "gray", "PRESETS"]
