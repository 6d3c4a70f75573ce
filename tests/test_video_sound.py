"""`percept video` keeps the sound: real clips with a real audio stream (a 1 s sine tone, AAC in .mp4 and
PCM in .mkv, built here with PyAV), stylised by the shipped wave_rt; the output has the source's sound
(same sample rate, same duration within 50 ms), copied or re-encoded as the container needs;
``--no-audio`` drops it; a silent clip works as before; a failure while muxing leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

RATE = 44100
FRAMES = 12


def make_clip(path: Path, audio_codec: str | None, seconds: float = 1.0, fps: int = 12) -> Path:
    """A ``seconds`` clip of moving colour at ``fps`` with a 440 Hz tone in ``audio_codec`` (or none)."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=fps)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream(audio_codec, rate=RATE, layout="mono") if audio_codec else None
        for i in range(int(fps * seconds)):
            x = np.zeros((48, 64, 3), np.uint8)
            x[:, : 4 + 5 * i] = (200, 40 + 15 * i, 90)
            for p in v.encode(av.VideoFrame.from_ndarray(x, format="rgb24")):
                c.mux(p)
        if a is not None:
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(RATE * seconds)) / RATE)).astype(np.float32)
            s16 = a.codec_context.format.name.startswith("s16")
            for k in range(0, len(tone), 1024):
                chunk = tone[k:k + 1024][None]
                frame = av.AudioFrame.from_ndarray((chunk * 32767).astype(np.int16) if s16 else chunk,
                                                   format="s16" if s16 else "fltp", layout="mono")
                frame.sample_rate, frame.pts = RATE, k
                for p in a.encode(frame):
                    c.mux(p)
            for p in a.encode(None):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    return path


def sound(path: Path) -> tuple[str, int, float] | None:
    """(codec, sample rate, seconds of decoded sound) of the first audio stream, None without one."""
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        a = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(a))
        return a.codec_context.name, a.rate, samples / a.rate


def run_video(src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "percept.cli", "video", str(src), "-o", str(out), "--model",
                           "wave_rt", "--size", "32", "--quiet", *extra], capture_output=True, text=True)


def frames_of(path: Path) -> int:
    from percept.inference.video import read_clip

    return len(read_clip(path))


def test_video_keeps_the_sound_and_no_audio_drops_it(tmp_path):
    src = make_clip(tmp_path / "talk.mp4", "aac")
    codec, rate, seconds = sound(src)
    r = run_video(src, tmp_path / "out.mp4")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert sound(tmp_path / "out.mp4") == (codec, rate, pytest.approx(seconds, abs=0.05))  # AAC copied as it is
    assert frames_of(tmp_path / "out.mp4") == FRAMES
    r = run_video(src, tmp_path / "mute.mp4", "--no-audio")
    assert r.returncode == 0, r.stderr
    assert sound(tmp_path / "mute.mp4") is None and frames_of(tmp_path / "mute.mp4") == FRAMES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mute.mp4", "out.mp4", "talk.mp4"]  # no temporary left


@pytest.mark.parametrize("out_name, codec", [("out.mp4", "aac"), ("out.avi", "pcm_s16le"), ("out.mkv", "pcm_s16le")])
def test_pcm_sound_is_reencoded_where_the_container_needs_it(tmp_path, out_name, codec):
    import percept

    src = make_clip(tmp_path / "concert.mkv", "pcm_s16le")
    percept.stylize_video(src, tmp_path / out_name, "wave_rt", size=32)
    assert sound(tmp_path / out_name) == (codec, RATE, pytest.approx(1.0, abs=0.05))
    assert frames_of(tmp_path / out_name) == FRAMES


def test_silent_clip_and_failed_mux(tmp_path, monkeypatch, capsys):
    import percept
    from percept.inference import soundtrack

    silent = make_clip(tmp_path / "silent.mp4", None)
    percept.stylize_video(silent, tmp_path / "out.mp4", "wave_rt", size=32)
    assert sound(tmp_path / "out.mp4") is None and frames_of(tmp_path / "out.mp4") == FRAMES
    assert capsys.readouterr().err == ""

    src = make_clip(tmp_path / "talk.mp4", "aac")

    def interrupted(video, source, out):
        Path(out).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(soundtrack, "add_sound", interrupted)
    with pytest.raises(KeyboardInterrupt):
        percept.stylize_video(src, tmp_path / "new.mp4", "wave_rt", size=32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "silent.mp4", "talk.mp4"]  # nothing half-written

    def refused(video, source, out):
        raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")

    monkeypatch.setattr(soundtrack, "add_sound", refused)
    percept.stylize_video(src, tmp_path / "new.mp4", "wave_rt", size=32)  # the pictures, and one warning
    assert sound(tmp_path / "new.mp4") is None and frames_of(tmp_path / "new.mp4") == FRAMES
    err = capsys.readouterr().err
    assert "its sound could not be carried over (" in err and "wrote the video without it" in err
    assert len(err.strip().splitlines()) == 1
