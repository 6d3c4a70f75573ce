"""A video writer for frames with an odd width or height (PyAV, whose wheels bundle FFmpeg).

OpenCV's FFmpeg writer crops such frames to even sides without a word (a 17x13 clip came out 16x12);
FFmpeg's own MPEG-4 and Motion-JPEG encoders take odd sides, so :class:`~percept.inference.video.AtomicVideoWriter`
writes odd-sized frames through this class, which has the few ``cv2.VideoWriter`` methods it uses."""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Any, cast

import numpy as np

CODECS = {"mp4v": ("mpeg4", "yuv420p"), "MJPG": ("mjpeg", "yuvj420p")}
"""OpenCV's fourcc -> FFmpeg's encoder and pixel format, the same codec OpenCV would have written."""


class OddSizeWriter:
    """Encode BGR frames of ``size`` (width, height) at ``fps`` into ``path`` with the codec of ``fourcc``."""

    def __init__(self, path: str | os.PathLike, fourcc: str, fps: float, size: tuple[int, int]) -> None:
        import av

        codec, pix_fmt = CODECS[fourcc]
        self.open = False  # FFmpeg refusing: isOpened() says so, as OpenCV's writer does
        try:
            self.container: Any = cast(Any, av.open(str(path), "w"))  # PyAV's stubs: a union of stream kinds
        except Exception:  # noqa: BLE001
            return
        try:
            self.stream = self.container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            self.stream.width, self.stream.height = size
            self.stream.pix_fmt = pix_fmt
        except BaseException as exc:
            self.container.close()
            if isinstance(exc, Exception):
                return
            raise
        self.open = True

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoWriter's name
        return self.open

    def write(self, bgr: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def release(self) -> None:
        if not self.open:
            return
        self.open = False
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
        finally:
            self.container.close()
