"""Carrying a video's sound over to its stylised copy (PyAV, whose wheels bundle FFmpeg).

OpenCV reads and writes pictures only, so ``percept video`` writes the stylised frames first and then
muxes the source's audio streams into a second file beside the output: the packets are copied as they
are where the container takes the codec (AAC into .mp4, anything into .mkv), else the sound is
re-encoded (AAC for .mp4/.m4v/.mov, PCM for .avi). The caller renames that file onto the output, so
it is written whole or not at all.
"""

from __future__ import annotations

import heapq
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator

__all__ = ["add_sound", "has_sound"]

CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".avi": "avi", ".mkv": "matroska"}
"""The FFmpeg muxer for each output extension percept writes."""

REENCODE = {".avi": "pcm_s16le"}
"""The codec sound is re-encoded to where the container does not take the source's (AAC elsewhere)."""

PLAYABLE = {
    "mp4": {"aac", "mp3", "mp2", "alac", "opus", "ac3", "eac3", "flac"},
    "avi": {"mp3", "mp2", "ac3", "pcm_s16le", "pcm_u8", "pcm_s24le", "pcm_s32le", "pcm_alaw", "pcm_mulaw"},
}
"""Sound codecs copied as they are into .mp4 and .avi: FFmpeg muxes others there too (PCM in .mp4), but
players refuse them; .mov and .mkv take what the muxer takes."""


def _av():
    import av

    av.logging.set_level(None)  # FFmpeg's own log lines would repeat percept's one line
    return av


def has_sound(path: str | os.PathLike) -> bool:
    """Whether the file at ``path`` has an audio stream (False when PyAV cannot read it)."""
    try:
        av = _av()
        with av.open(str(path)) as c:
            return bool(c.streams.audio)
    except Exception:
        return False


def add_sound(video: str | os.PathLike, source: str | os.PathLike, out: str | os.PathLike) -> bool:
    """Write ``out``: the video stream of ``video`` (copied) and every audio stream of ``source``.

    Returns False, writing nothing, when ``source`` has no sound. Raises ``av.FFmpegError`` (or
    ImportError without PyAV) when it cannot be done; ``out`` may then hold a partial file, which the
    caller deletes."""
    av = _av()
    suffix = Path(out).suffix.lower()
    playable = PLAYABLE.get(CONTAINERS.get(suffix, ""))
    with av.open(str(source)) as src:
        if not src.streams.audio:
            return False
        convert = {a.index for a in src.streams.audio if playable is not None and a.codec_context.name not in playable}
        every = {a.index for a in src.streams.audio}
    try:
        _mux(av, video, source, out, suffix, convert)
    except av.FFmpegError:  # the muxer refuses a codec as it is: re-encode every sound stream
        if convert == every:
            raise
        _mux(av, video, source, out, suffix, every)
    return True


def _default_layout(channels: int) -> str:
    return {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}.get(channels, "stereo")


def _seconds(packet) -> float:
    t = packet.dts if packet.dts is not None else packet.pts
    return float(t * packet.time_base)


def _mux(av, video, source, out, suffix: str, reencode: set[int]) -> None:
    with av.open(str(video)) as vid, av.open(str(source)) as src, \
            av.open(str(out), "w", format=CONTAINERS.get(suffix)) as dst:
        vin = vid.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        # OpenCV's frames start at 0: the sound keeps its place against the source's first picture
        start = 0.0
        if src.streams.video and src.streams.video[0].start_time is not None:
            start = float(src.streams.video[0].start_time * src.streams.video[0].time_base)
        outs = {}
        for a in src.streams.audio:
            if a.index in reencode:
                o = dst.add_stream(REENCODE.get(suffix, "aac"), rate=a.rate,  # the default layout of its channel count ("1 channels" is mono)
                                   layout=_default_layout(a.layout.nb_channels))
            else:
                o = dst.add_stream_from_template(a)
            outs[a.index] = o

        def pictures() -> Iterator[tuple[float, int, object, object]]:
            for p in vid.demux(vin):
                if p.dts is not None or p.pts is not None:
                    yield _seconds(p), 0, p, vout

        def sound() -> Iterator[tuple[float, int, object, object]]:
            for p in src.demux(*src.streams.audio):
                o = outs[p.stream.index]
                if p.stream.index in reencode:
                    for frame in p.decode():
                        if frame.pts is not None:
                            frame.pts -= round(start / frame.time_base)
                        for q in o.encode(frame):
                            yield _seconds(q), 1, q, o
                elif p.dts is not None or p.pts is not None:
                    shift = round(Fraction(start) / p.time_base)
                    if p.pts is not None:
                        p.pts -= shift
                    if p.dts is not None:
                        p.dts -= shift
                    yield _seconds(p), 1, p, o
            for index in reencode:
                for q in outs[index].encode(None):
                    yield _seconds(q), 1, q, outs[index]

        # both inputs in time order, so the muxer's interleaving buffer stays small
        for _, _, packet, stream in heapq.merge(pictures(), sound(), key=lambda x: (x[0], x[1])):
            packet.stream = stream
            dst.mux(packet)
