"""Stylising video files frame by frame with OpenCV (decode, stylise in batches, encode).

The output keeps the input's frame rate and frame size (``size`` only sets the resolution the
network runs at; frames are scaled back). It is written to a temporary file beside the target and
renamed at the end, so a decoding error, a crash or Ctrl-C leaves no partial video behind. The sound
is kept: OpenCV reads and writes pictures only, so the source's audio streams are muxed into the
stylised video before that rename (:mod:`percept.inference.soundtrack`, PyAV; copied as they are where
the container takes the codec, else re-encoded), unless ``VideoOptions.no_audio``.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from percept.errors import PerceptError, warn
from percept.images import MIN_FRAME_SIDE, check_writable, commit_temp, fit_long_side, temp_beside
from percept.inference.options import VideoOptions
from percept.inference.temporal import TemporalFilter

VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def _quiet_opencv() -> None:
    """FFmpeg and OpenCV print their own warnings ("moov atom not found") before percept's one line:
    silence them (a user's own setting wins)."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")


def cv2_module():
    try:
        _quiet_opencv()
        import cv2
    except ImportError:
        raise PerceptError("video needs OpenCV: pip install opencv-python") from None
    try:  # OpenCV's own warnings (e.g. a camera index that is not there) would repeat our one line
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:
        pass
    return cv2


MAX_CAMERA_INDEX = 64
"""Camera indices percept passes to OpenCV: 0 .. 63 (``/dev/video0`` ...)."""


def open_capture(source: str | int):
    """An opened ``cv2.VideoCapture`` for a file path or camera index, or a clear error."""
    cv2 = cv2_module()
    if isinstance(source, int):
        if not 0 <= source < MAX_CAMERA_INDEX:  # OpenCV crashes (SIGSEGV) on some negative indices
            raise PerceptError(f"camera must be an index from 0 to {MAX_CAMERA_INDEX - 1}, got {source}")
        cap = cv2.VideoCapture(source)
        if not cap.isOpened():
            raise PerceptError(f"no camera at index {source} (is one connected, and free? try --camera 1, "
                               "or --source VIDEO_FILE)")
        return cap
    path = Path(source)
    if not path.is_file():
        raise PerceptError(f"{path}: no such video file")
    if path.stat().st_size == 0:
        raise PerceptError(f"{path}: the file is empty")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise PerceptError(f"{path}: cannot open it as a video (not a video file, or a codec OpenCV lacks)")
    return cap


def check_video_output(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() not in VIDEO_CODECS:
        raise PerceptError(f"{path}: unknown video extension '{path.suffix}' (use one of "
                           f"{', '.join(sorted(VIDEO_CODECS))})")
    if path.parent.exists() and not path.parent.is_dir():
        raise PerceptError(f"{path.parent}: is not a folder")
    if path.is_dir():
        raise PerceptError(f"{path}: is a folder; give the output a file name")
    check_writable(path.parent)
    return path


class AtomicVideoWriter:
    """A ``cv2.VideoWriter`` on a temporary file that becomes ``path`` only on :meth:`commit`.

    Use as a context manager: leaving the block by an exception (Ctrl-C included) deletes the
    temporary file; leaving it normally commits.
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int],
                 sound_from: str | os.PathLike | None = None) -> None:
        cv2 = cv2_module()
        self.path = check_video_output(path)
        self.sound_from = sound_from  # a video whose audio streams join the file on commit
        self.muxed: Path | None = None
        self.tmp = temp_beside(self.path, self.path.suffix)  # OpenCV picks the container by the extension
        self.size = size
        self.frames = 0
        fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[self.path.suffix.lower()])
        try:  # a signal (Ctrl-C, SIGTERM) while OpenCV opens the file: no context manager owns it yet
            if size[0] % 2 or size[1] % 2:  # OpenCV's writer would crop an odd side to even without a word
                from percept.inference.oddsize import OddSizeWriter

                self.writer = OddSizeWriter(self.tmp, VIDEO_CODECS[self.path.suffix.lower()], fps, size)
            else:
                self.writer = cv2.VideoWriter(str(self.tmp), fourcc, float(fps), size)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        if not self.writer.isOpened():
            self.tmp.unlink(missing_ok=True)
            raise PerceptError(f"{self.path}: OpenCV cannot write this kind of video here")

    def write_rgb(self, frame: np.ndarray) -> None:
        cv2 = cv2_module()
        if (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_LINEAR)
        self.writer.write(np.ascontiguousarray(frame[..., ::-1]))
        self.frames += 1

    def commit(self) -> Path:
        """Finish the file and rename it onto ``path``, after checking that it really was written:
        OpenCV's writer reports no write errors (a full disk gives a truncated file and no error), so
        the file is re-opened and its frames counted; nothing is left behind when that fails."""
        self.writer.release()
        try:
            if self.frames == 0:
                raise PerceptError(f"no frames to write to {self.path}")
            problem = self._check_written()
            if problem:
                raise PerceptError(f"{self.path}: the video could not be written ({problem}); nothing was saved")
            return commit_temp(self._with_sound(), self.path)
        except OSError as exc:
            raise PerceptError(f"{self.path}: the video could not be written ({exc.strerror or exc}); "
                               "nothing was saved") from None
        finally:
            self.tmp.unlink(missing_ok=True)
            if self.muxed is not None:
                self.muxed.unlink(missing_ok=True)

    def _with_sound(self) -> Path:
        """The file to rename onto ``path``: the pictures plus ``sound_from``'s sound (a second temporary
        file), or the pictures alone when there is no sound to carry or it cannot be carried (one warning)."""
        if self.sound_from is None:
            return self.tmp
        from percept.inference.soundtrack import add_sound

        self.muxed = temp_beside(self.path, self.path.suffix)
        try:
            return self.muxed if add_sound(self.tmp, self.sound_from, self.muxed) else self.tmp
        except Exception as exc:  # PyAV missing or FFmpeg refusing: the pictures are still worth keeping
            reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            warn(f"{self.sound_from}: its sound could not be carried over ({reason}); wrote the video without it "
                 "(--no-audio drops it on purpose)")
            return self.tmp

    def _check_written(self) -> str | None:
        cv2 = cv2_module()
        if self.tmp.stat().st_size == 0:
            return "the file is empty: is the disk full?"
        cap = cv2.VideoCapture(str(self.tmp))
        try:
            if not cap.isOpened():
                return "the file cannot be read back: is the disk full?"
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            if 0 < count < self.frames:
                return f"only {count} of {self.frames} frames are in the file: is the disk full?"
        finally:
            cap.release()
        return None

    def abort(self) -> None:
        self.writer.release()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "AtomicVideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def read_frames(cap, path: str) -> Iterator[np.ndarray]:
    """RGB frames of an opened capture until its end."""
    cv2 = cv2_module()
    while True:
        ok, frame = cap.read()
        if not ok:
            return
        yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def stylize_video(src: str | os.PathLike, dst: str | os.PathLike, stylizer, options: VideoOptions | None = None,
                  progress: bool = True, on_frame: Callable[[int], None] | None = None) -> dict:
    """Stylise every frame of ``src`` into ``dst`` (same fps and frame size) with ``stylizer`` (a
    :class:`~percept.inference.stylizer.Stylizer`: its :meth:`stream`) and ``options``; returns a summary dict
    (path, frames, fps, size, seconds; with ``options.temporal`` the flow filter's ``temporal_stats``).
    ``on_frame(frames written)`` is called after each batch."""
    options = options or VideoOptions()
    temporal = TemporalFilter(alpha=options.temporal_alpha, flow=options.flow) if options.temporal else None
    import time

    from tqdm import tqdm

    cv2 = cv2_module()
    dst = check_video_output(dst)
    cap = open_capture(str(src))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        if not fps or fps != fps or fps > 1000:
            fps = 30.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        frames = read_frames(cap, str(src))
        first = next(frames, None)
        if first is None:
            raise PerceptError(f"{src}: no frame could be decoded")
        h, w = first.shape[:2]
        t0 = time.perf_counter()
        with AtomicVideoWriter(dst, fps, (w, h), sound_from=None if options.no_audio else src) as writer, \
                tqdm(total=total or None, desc="video", unit="frame", disable=not progress) as bar:
            stream = stylizer.stream(itertools.chain([first], frames), options.size, options.strength,
                                     options.preserve_color, batch=options.batch, temporal=temporal)
            for y in stream:
                writer.write_rgb(y)
                bar.update(1)
                if on_frame and writer.frames % options.batch == 0:
                    on_frame(writer.frames)
            count = writer.frames
        seconds = time.perf_counter() - t0
        if total > 0 and count < total:
            warn(f"{src}: only {count} of its {total} frames could be read (a truncated or damaged file?); "
                 f"wrote those {count}")
    finally:
        cap.release()
    result = {"path": dst, "frames": count, "fps": fps, "size": (w, h), "seconds": seconds}
    if temporal is not None:
        result["temporal_stats"] = temporal.stats
    return result


def read_clip(path, max_frames: int | None = None, size: int | None = None) -> "list":
    """A video file's frames as RGB uint8 arrays (OpenCV), at most ``max_frames``, the long side scaled
    down to ``size`` when given."""
    cv2 = cv2_module()
    cap = open_capture(str(path))
    frames = []
    try:
        for f in read_frames(cap, str(path)):
            if size:
                ws = fit_long_side(f.shape[1], f.shape[0], size, upscale=False, min_side=MIN_FRAME_SIDE)
                if ws != (f.shape[1], f.shape[0]):
                    f = cv2.resize(f, ws, interpolation=cv2.INTER_AREA)
            frames.append(f)
            if max_frames and len(frames) >= max_frames:
                break
    finally:
        cap.release()
    return frames
