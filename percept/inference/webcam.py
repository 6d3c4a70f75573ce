"""Real-time stylisation of a live camera (or a video file played as if it were one).

Capture runs in its own thread and keeps only the newest frame; a second thread always stylises the
newest one, so when inference is slower than the camera, frames are dropped (and counted) instead
of piling up into an ever-growing delay; the display loop shows the newest stylised frame, so
drawing and encoding overlap with the next inference and keys work even while a slow model runs. A video file given as ``source`` is read at its own
frame rate, the way a camera delivers frames.

The window shows the stylised view with an FPS overlay. Keys:

====================  ===============================================
``n`` / ``p``          next / previous model
``b``                  side by side with the raw camera on / off
``+`` / ``-``          strength up / down by 0.1
``c``                  preserve the camera's colours on / off
``t``                  flow-guided (temporal) stylisation on / off: less flicker
``s``                  save a snapshot PNG
``q`` / ``Esc``        quit (closing the window quits too)
====================  ===============================================

``headless=True`` writes the displayed frames to a video file instead of a window (for servers and
tests); the file appears only when the run ends normally.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from percept.errors import PerceptError
from percept.images import check_painting, load_image, save_image
from percept.inference.stylizer import Stylizer, open_stylizer
from percept.inference.temporal import DEFAULT_ALPHA, LIVE_FLOW, TemporalFilter
from percept.inference.video import AtomicVideoWriter, check_video_output, cv2_module, open_capture
from percept.models.specs import LINEAR_MODEL
from percept.registry import list_models

WINDOW = "percept webcam"
HELP = "n/p model  b side-by-side  +/- strength  c colour  t flow-guided  s snapshot  q quit"


class FrameGrabber(threading.Thread):
    """Reads frames in a background thread and keeps only the newest one.

    Args:
        cap: an opened ``cv2.VideoCapture``.
        pace_fps: for a file source, deliver frames at this rate (like a camera); None for a camera.
        is_camera: a camera that stops delivering frames is an error; a file that ends is not.
    """

    def __init__(self, cap, pace_fps: float | None, is_camera: bool, label: str) -> None:
        super().__init__(daemon=True, name="percept-capture")
        self.cap, self.pace_fps, self.is_camera, self.label = cap, pace_fps, is_camera, label
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._id = 0
        self._taken_id = 0
        self.captured = 0
        self.dropped = 0
        self.ended = False
        self.error: str | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        cv2 = cv2_module()
        t_next = time.perf_counter()
        failures = 0
        try:
            while not self._halt.is_set():
                ok, frame = self.cap.read()
                if not ok:
                    if self.is_camera:
                        failures += 1
                        if failures < 10:  # a camera can miss a frame; ten in a row means it is gone
                            time.sleep(0.05)
                            continue
                        self.error = f"{self.label} stopped delivering frames (disconnected?)"
                    break
                failures = 0
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                if self.pace_fps:
                    t_next += 1.0 / self.pace_fps
                    delay = t_next - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    else:
                        t_next = time.perf_counter()
                with self._cond:
                    if self._frame is not None and self._taken_id < self._id:
                        self.dropped += 1  # the previous frame was never shown
                    self._frame, self._id = rgb, self._id + 1
                    self.captured += 1
                    self._cond.notify_all()
        finally:
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def newest(self, timeout: float = 5.0) -> np.ndarray | None:
        """The newest frame not handed out yet (waiting for one); None once the source has ended."""
        with self._cond:
            deadline = time.monotonic() + timeout
            while self._taken_id == self._id and not self.ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.error = self.error or f"{self.label} delivered no frame for {timeout:.0f} s"
                    return None
                self._cond.wait(left)
            if self._taken_id == self._id:
                return None
            self._taken_id = self._id
            return self._frame

    def stop(self) -> None:
        self._halt.set()


@dataclass
class WebcamStats:
    shown: int = 0
    captured: int = 0
    dropped: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    snapshots: list[Path] = field(default_factory=list)
    output: Path | None = None
    models: list[str] = field(default_factory=list)


def _overlay(frame: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    cv2 = cv2_module()
    out = np.ascontiguousarray(frame)
    y = 22
    for text in lines:
        # a dark outline: the same thin text shifted by one pixel each way (a thicker stroke would
        # not do: OpenCV 5 renders thicker text wider, so the outline would drift off the letters)
        for dx, dy in ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)):
            cv2.putText(out, text, (8 + dx, y + dy), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
        y += 22
    return out


def _help_bar(width: int) -> np.ndarray:
    cv2 = cv2_module()
    bar = np.full((22, width, 3), 32, np.uint8)
    cv2.putText(bar, HELP, (6, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (230, 230, 230), 1, cv2.LINE_AA)
    return bar


def has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


@dataclass
class _Settings:
    """What the keys change; the stylising thread reads a copy before each frame."""

    current: int = 0
    strength: float = 1.0
    preserve_color: bool = False
    temporal: bool = False


@dataclass
class _Result:
    frame: np.ndarray
    styled: np.ndarray
    name: str
    settings: _Settings


class _Stylist(threading.Thread):
    """Stylises the newest camera frame with the current settings, over and over, in its own thread.

    The display loop (the main thread: OpenCV windows want it) shows whatever result is newest, so
    drawing, encoding and key handling overlap with the next frame's inference, and the window
    answers keys even while a slow model works. Results that were overtaken before being shown are
    counted in ``unshown``.
    """

    def __init__(self, grabber: FrameGrabber, engine: Callable, settings: _Settings, size: int | None,
                 lock: threading.Lock) -> None:
        super().__init__(daemon=True, name="percept-stylise")
        self.grabber, self.engine, self.settings, self.size, self.lock = grabber, engine, settings, size, lock
        self._cond = threading.Condition()
        self._result: _Result | None = None
        self._id = self._taken = 0
        self.unshown = 0
        self.ended = False
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                frame = self.grabber.newest()
                if frame is None:
                    break
                with self.lock:
                    st = dataclasses.replace(self.settings)
                eng = self.engine(st.current)
                styled = next(eng.stream([frame], self.size, st.strength, st.preserve_color))
                with self._cond:
                    if self._taken < self._id:
                        self.unshown += 1
                    self._result, self._id = _Result(frame, styled, eng.name, st), self._id + 1
                    self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - handed to the display loop, which raises it
            self.error = exc
        finally:
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def newest(self, timeout: float = 0.05) -> _Result | None:
        """The newest result not shown yet, waiting up to ``timeout``; None if there is none (yet)."""
        with self._cond:
            if self._taken == self._id and not self.ended:
                self._cond.wait(timeout)
            if self._taken == self._id:
                return None
            self._taken = self._id
            return self._result

    @property
    def done(self) -> bool:
        """The thread has stopped and every result it made has been handed out."""
        with self._cond:
            return self.ended and self._taken == self._id

    def stop(self) -> None:
        self._halt.set()


class _Screen:
    """Where the views go: a window (``output`` None), or the video file ``output`` (headless, written atomically)."""

    def __init__(self, output, fps: float) -> None:
        self.output, self.fps = output, fps
        self.writer: AtomicVideoWriter | None = None
        self.window_open = False

    def show(self, view: np.ndarray, key: int | None) -> int | None:
        """Show or record one view; returns the key pressed (``key`` replaces the keyboard when given; -1 for none),
        or None when the window was closed."""
        if self.output is not None:
            if self.writer is None:
                self.writer = AtomicVideoWriter(self.output, self.fps, (view.shape[1], view.shape[0]))
            self.writer.write_rgb(view)
            return -1 if key is None else key
        cv2 = cv2_module()
        if not self.window_open:  # no Qt toolbar: the picture is the interface
            cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
            self.window_open = True
        cv2.imshow(WINDOW, view[..., ::-1])
        pressed = cv2.waitKey(1) & 0xFF
        return (pressed if key is None else key) if self.alive() else None

    def alive(self) -> bool:
        """False once the window a person sees was closed (a recorder is always alive)."""
        if not self.window_open:
            return True
        cv2 = cv2_module()
        cv2.waitKey(1)
        return cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) >= 1

    def commit(self) -> Path | None:
        """The recording, renamed into place (None without one)."""
        if self.writer is None:
            return None
        path, self.writer = self.writer.commit(), None
        return path

    def close(self) -> None:
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
        if self.window_open:
            cv2 = cv2_module()
            cv2.destroyAllWindows()
            cv2.waitKey(1)
            self.window_open = False


def _check_live(models: Sequence[str], headless: bool, output, strength: float) -> None:
    """One clear error, before a camera opens, for a webcam run that cannot start."""
    if headless:
        if output is None:
            raise PerceptError("--headless needs -o OUT.mp4 (the stylised frames go there)")
        check_video_output(output)
    elif not has_display():
        raise PerceptError("no display to open a window on (DISPLAY is not set); use --headless -o OUT.mp4")
    if not models:
        raise PerceptError("no model to run (give --model)")
    if not 0.0 <= strength <= 1.0:
        raise PerceptError(f"strength must be between 0 and 1, got {strength}")


def _view(result: _Result, styled: np.ndarray, side_by_side: bool, fps: float, dropped: int,
          help_bar: bool) -> np.ndarray:
    """The picture shown: the stylised frame (beside the camera's with ``side_by_side``), the status lines over it
    and, in a window, the keys under it."""
    st = result.settings
    view = np.hstack([result.frame, styled]) if side_by_side else styled
    view = _overlay(view, [f"{result.name}  {fps:4.1f} FPS", f"strength {st.strength:.1f}"
                           + ("  colour kept" if st.preserve_color else "")
                           + ("  flow-guided" if st.temporal else "")
                           + f"  dropped {dropped}"])
    return np.vstack([view, _help_bar(view.shape[1])]) if help_bar else view


def _apply_key(key: int, settings: _Settings, n_models: int) -> None:
    """The keys that change what the stylising thread does: n/p model, +/- strength, c colour, t flow guidance."""
    if key == ord("n"):
        settings.current = (settings.current + 1) % n_models
    elif key == ord("p"):
        settings.current = (settings.current - 1) % n_models
    elif key in (ord("+"), ord("=")):
        settings.strength = min(1.0, round(settings.strength + 0.1, 1))
    elif key == ord("-"):
        settings.strength = max(0.0, round(settings.strength - 0.1, 1))
    elif key == ord("c"):
        settings.preserve_color = not settings.preserve_color
    elif key == ord("t"):
        settings.temporal = not settings.temporal


def live_models(models: Sequence[str] | None, styles: Sequence[str] | None) -> list[str]:
    """The models the webcam cycles through with ``n``/``p``: with ``styles`` (paintings, each checked now), the linear
    style model (or the one ``models`` names) once per painting; else the ``models`` given, then every other style
    network found (shipped and the user's), or all of them when none is given."""
    given = list(models or [])
    if styles:
        for p in styles:
            check_painting(load_image(p), p)
        return [given[0] if given else LINEAR_MODEL] * len(styles)
    others = [m.name for m in list_models("style-transformer") if m.name not in given]
    return given + others if given else others


def run_webcam(models: Sequence[str], camera: int = 0, source: str | None = None, size: int | None = 512,
               strength: float = 1.0, preserve_color: bool = False, backend: str = "auto",
               device: str = "auto", precision: str = "auto", headless: bool = False, output: str | os.PathLike | None = None,
               frames: int | None = None, snapshot_dir: str | os.PathLike = "snapshots",
               side_by_side: bool = False, keys: Callable[[int], int] | None = None,
               progress: Callable[[WebcamStats], None] | None = None, temporal: bool = False,
               temporal_alpha: float = DEFAULT_ALPHA, styles: Sequence | None = None,
               temporal_flow: str = LIVE_FLOW) -> WebcamStats:
    """Run the live loop until ``q``, the window closing, ``frames`` shown frames or the source's end.

    Three threads: capture (:class:`FrameGrabber`), stylisation (:class:`_Stylist`) and this one,
    which draws, shows or records, and handles keys.

    Args:
        models: model names or paths to cycle through with ``n``/``p``; the first one starts.
        camera, source: a camera index, or a video file played at its own frame rate.
        size: long side the network runs at (the view keeps the camera's size).
        headless, output: write the view to ``output`` (a video file) instead of a window.
        frames: stop after this many shown frames.
        keys: for tests, a function ``shown_frame_index -> key code`` used instead of the keyboard.
        temporal, temporal_alpha: start flow-guided (:class:`~percept.inference.temporal.TemporalFilter`);
            the ``t`` key toggles it.
        temporal_flow: the DIS preset of its optical flow (default ``ultrafast``, the fastest).
        styles: paintings for a linear style model (any painting, live; ``n``/``p`` cycle through them):
            ``models`` then holds that model once per painting.
    """
    cv2 = cv2_module()
    _check_live(models, headless, output, strength)
    engines: dict[int, Stylizer] = {}

    def engine(i: int) -> Stylizer:
        if i not in engines:
            engines[i] = open_stylizer(models[i], style=[styles[i]] if styles else None,
                                       method="linear" if styles else None, backend=backend, device=device,
                                       precision=precision)
        return engines[i]

    engine(0)  # fail on a bad model before the camera is opened
    cap = open_capture(source if source is not None else int(camera))
    label = f"video {source}" if source is not None else f"camera {camera}"
    fps_src = cap.get(cv2.CAP_PROP_FPS) or 30.0
    if source is not None and not (0 < fps_src < 1000):
        fps_src = 30.0
    grabber = FrameGrabber(cap, fps_src if source is not None else None, source is None, label)
    settings, lock = _Settings(0, strength, preserve_color, temporal), threading.Lock()
    stylist = _Stylist(grabber, engine, settings, size, lock)
    # flow guidance runs here, in the display loop, on the results in the order they are shown, so it
    # overlaps with the next frame's inference in the stylising thread
    flow_filter = TemporalFilter(alpha=temporal_alpha, flow=temporal_flow)
    last_look = None
    stats = WebcamStats(models=[str(m) for m in models])
    screen = _Screen(output if headless else None, fps_src)
    fps = 0.0
    try:
        grabber.start()
        stylist.start()
        t_start = t_last = time.perf_counter()
        while frames is None or stats.shown < frames:
            result = stylist.newest()
            if result is None:
                if stylist.done:
                    if stylist.error is not None:
                        raise stylist.error
                    if grabber.error:
                        raise PerceptError(grabber.error)
                    break
                if not screen.alive():  # keep the window alive while a slow model works
                    break
                continue
            st = result.settings
            styled = result.styled
            look = (result.name, st.strength, st.preserve_color, st.temporal)
            if look != last_look:       # the history belongs to one model and one look
                flow_filter.reset()
                last_look = look
            if st.temporal:
                styled = flow_filter(result.frame, styled)
            now = time.perf_counter()
            dt = now - t_last
            t_last = now
            if stats.shown and dt > 0:
                fps = 1.0 / dt if fps == 0 else 0.9 * fps + 0.1 / dt
            view = _view(result, styled, side_by_side, fps, grabber.dropped + stylist.unshown, help_bar=not headless)
            stats.shown += 1
            key = screen.show(view, keys(stats.shown) if keys else None)
            if key is None:  # the window was closed
                break
            if progress:
                stats.captured, stats.dropped = grabber.captured, grabber.dropped + stylist.unshown
                progress(stats)
            if key in (ord("q"), 27):
                break
            with lock:
                _apply_key(key, settings, len(models))
            if key == ord("b"):
                side_by_side = not side_by_side
            elif key == ord("s"):
                snap = Path(snapshot_dir) / f"snapshot_{time.strftime('%Y%m%d_%H%M%S')}_{stats.shown:05d}.png"
                save_image(Image.fromarray(np.ascontiguousarray(view)), snap)
                stats.snapshots.append(snap)
        stats.seconds = time.perf_counter() - t_start
        stats.output = screen.commit()
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: a recorder keeps what it recorded
        n = screen.writer.frames if screen.writer is not None else 0
        if n:
            print(f"percept: stopped; kept the {n} frames recorded so far in {screen.commit()}", file=sys.stderr)
        raise
    finally:
        stylist.stop()
        grabber.stop()
        stylist.join(timeout=10.0)
        grabber.join(timeout=2.0)
        cap.release()
        screen.close()
    stats.captured, stats.dropped = grabber.captured, grabber.dropped + stylist.unshown
    stats.fps = (stats.shown - 1) / stats.seconds if stats.shown > 1 and stats.seconds > 0 else 0.0
    return stats
