"""Flow-guided video stylisation: the new stylised frame blended with the previous output warped along the
camera frames' optical flow, so strokes stay where the scene stays instead of jumping every frame.

For camera frames ``I_{t-1}, I_t`` and per-frame stylised frame ``S_t``, the output is

    O_t = S_t + alpha * C * (W(O_{t-1}) - S_t)

``W`` warps the previous *output* into frame t along the backward flow t -> t-1 (DIS optical flow on the
grey camera frames at a reduced resolution; preset ``medium`` for files, :data:`VIDEO_FLOW`, and ``ultrafast``
live, :data:`LIVE_FLOW`). The confidence ``C`` in [0, 1] is 0 where
the new frame must win, so nothing smears or ghosts:

* occlusions and flow errors: the forward-backward check (:func:`percept.flow.consistent`) and pixels
  whose source lies outside the previous frame;
* fast-changing pixels: where the camera frame differs from the previous camera frame warped the same way
  by more than ``change`` (mean over RGB, [0, 1] scale), C falls linearly to 0 at twice that;

then C is eroded and lightly blurred so the blend has no hard seams. Because ``O_{t-1}`` already holds the
history, a static region converges to a stable average of its stylisations (an exponential moving average
along the motion, factor ``alpha``), and a pixel whose confidence drops takes the new frame at once. The
history is warped bicubically (bilinear warps, repeated, blur) and kept in float; an average of
stylisations has weaker strokes than one, so :func:`restore_contrast` gives the blend the new frame's
local contrast back.

A scene cut (under ``cut`` of the pixels confident, or a frame of another size) resets the history: the
next output is the plain stylised frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from percept.argtypes import LIVE_FLOW, VIDEO_FLOW
from percept.errors import PerceptError
from percept.flow import FlowEstimator, consistent, gray, warp
from percept.images import MIN_FRAME_SIDE, fit_long_side

DEFAULT_ALPHA = 0.8


@dataclass
class TemporalStats:
    frames: int = 0
    resets: int = 0
    confident: float = 0.0          # running mean of the confident fraction (frames after the first)

    def add(self, fraction: float) -> None:
        n = max(1, self.frames - self.resets)
        self.confident += (fraction - self.confident) / n


def restore_contrast(blend: np.ndarray, fresh: np.ndarray, sigma: float = 4.0, max_gain: float = 2.5) -> np.ndarray:
    """Averaging stylisations whose strokes differ washes the strokes out (the style loss rises). This
    scales the blend's deviations from its local mean (Gaussian, ``sigma`` px, per channel) up to the
    local standard deviation of the fresh per-frame stylisation, by a gain in [1, ``max_gain``]: the
    blend keeps its stable structure and gets the texture energy of a single stylisation back."""
    import cv2

    b, f = blend.astype(np.float32), fresh.astype(np.float32)
    h, w = b.shape[:2]
    k = 4 if min(h, w) >= 64 else 1     # the local statistics are smooth: compute them at 1/4 size
    small = (max(1, w // k), max(1, h // k))

    def local_mean(x: np.ndarray) -> np.ndarray:
        if k > 1:
            x = cv2.resize(x, small, interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(x, (0, 0), sigma / k)

    mb, mf = local_mean(b), local_mean(f)
    vb = local_mean(b * b) - mb * mb
    vf = local_mean(f * f) - mf * mf
    gain = np.clip(np.sqrt(np.maximum(vf, 1.0) / np.maximum(vb, 1.0)), 1.0, max_gain)
    if k > 1:
        mb = cv2.resize(mb, (w, h), interpolation=cv2.INTER_LINEAR)
        gain = cv2.resize(gain, (w, h), interpolation=cv2.INTER_LINEAR)
    return mb + (b - mb) * gain


class TemporalFilter:
    """Stateful: call it on each (camera frame, stylised frame) pair in order; :meth:`reset` at a jump.

    Args:
        alpha: weight of the warped history where the flow is trusted (0: off, per-frame output; 0.8
            default; < 1).
        flow_side: long side (px) the flow is computed at (default 320).
        change: camera-frame change (mean abs RGB difference after warping, [0, 1]) where the confidence
            starts to fall (default 0.06).
        cut: a frame with less than this fraction of confident pixels is a scene cut (default 0.3).
        restore: give the blend back the local contrast of the new stylised frame (default on; see
            :func:`restore_contrast`).
        flow: the DIS preset (``ultrafast``, ``fast``, ``medium``; default :data:`VIDEO_FLOW`; the webcam
            takes :data:`LIVE_FLOW`).
    """

    def __init__(self, alpha: float = DEFAULT_ALPHA, flow_side: int = 320, change: float = 0.06,
                 cut: float = 0.3, restore: bool = True, flow: str = VIDEO_FLOW) -> None:
        if not 0 <= alpha < 1:
            raise PerceptError(f"the temporal blend alpha must be in [0, 1), got {alpha}")
        self.flow = FlowEstimator(flow)  # refuses an unknown preset
        if change <= 0 or not 0 <= cut < 1 or flow_side < 16:
            raise PerceptError("temporal filter: change must be > 0, cut in [0, 1), flow_side >= 16")
        self.alpha, self.change, self.cut, self.flow_side = float(alpha), float(change), float(cut), int(flow_side)
        self.restore = bool(restore)
        self.stats = TemporalStats()
        self.last_confidence: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the history: the next output is the plain stylised frame."""
        self._small: np.ndarray | None = None       # the previous camera frame at the flow's resolution
        self._shape: tuple[int, ...] | None = None
        self._out: np.ndarray | None = None         # the previous output, float32

    def _shrink(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        h, w = frame.shape[:2]
        small = fit_long_side(w, h, self.flow_side, upscale=False, min_side=MIN_FRAME_SIDE)
        return frame if small == (w, h) else cv2.resize(frame, small, interpolation=cv2.INTER_AREA)

    def confidence(self, small: np.ndarray, prev: np.ndarray, bw: np.ndarray, fw: np.ndarray) -> np.ndarray:
        """C in [0, 1] at frame t, at the flow's resolution (see the module notes)."""
        import cv2

        ok = consistent(bw, fw)
        prev_w, _ = warp(prev, bw)
        d = cv2.absdiff(small, prev_w).astype(np.float32)
        diff = (d[..., 0] + d[..., 1] + d[..., 2]) * np.float32(1 / (3 * 255.0))
        c = np.clip(2.0 - diff / self.change, 0.0, 1.0) * ok
        c = cv2.erode(c.astype(np.float32), np.ones((3, 3), np.uint8))
        return cv2.GaussianBlur(c, (0, 0), 1.0)

    def _restart(self, frame: np.ndarray, small: np.ndarray, stylised: np.ndarray) -> np.ndarray:
        self._small, self._shape, self._out = small, frame.shape, stylised.astype(np.float32)
        return stylised

    def __call__(self, frame: np.ndarray, stylised: np.ndarray) -> np.ndarray:
        """The output for camera ``frame`` (RGB uint8) whose per-frame stylisation is ``stylised``."""
        import cv2

        self.stats.frames += 1
        small = self._shrink(frame)
        if (self.alpha == 0 or self._small is None or self._shape != frame.shape
                or self._out is None or self._out.shape != stylised.shape):
            if self._small is not None:
                self.stats.resets += 1
            self.last_confidence = None
            return self._restart(frame, small, stylised)
        g, gp = gray(small), gray(self._small)
        bw = self.flow(g, gp)                       # t -> t-1, at the flow's resolution
        fw = self.flow(gp, g)                       # t-1 -> t
        c = self.confidence(small, self._small, bw, fw)
        self.last_confidence = c
        fraction = np.count_nonzero(c > 0.5) / c.size
        if fraction < self.cut:                     # a scene cut: start again
            self.stats.resets += 1
            return self._restart(frame, small, stylised)
        self.stats.add(fraction)
        h, w = stylised.shape[:2]
        if (h, w) != bw.shape[:2]:
            sx, sy = w / bw.shape[1], h / bw.shape[0]
            bw = cv2.resize(bw, (w, h), interpolation=cv2.INTER_LINEAR) * np.array([sx, sy], np.float32)
            c = cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR)
        out, _ = warp(self._out, bw, cubic=True)    # the float history: no 8-bit rounding builds up
        s = stylised.astype(np.float32)
        out -= s                                    # out = s + alpha * c * (history - s), in place
        out *= (c * np.float32(self.alpha))[..., None]
        out += s
        if self.restore:
            out = restore_contrast(out, s)
        self._small, self._shape, self._out = small, frame.shape, out
        shown = np.clip(out, 0, 255)
        shown += 0.5
        return shown.astype(np.uint8)


__all__ = ["TemporalFilter", "TemporalStats", "DEFAULT_ALPHA", "LIVE_FLOW", "VIDEO_FLOW", "restore_contrast"]
