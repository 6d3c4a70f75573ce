"""percept: fast style transfer and feature-inversion networks trained with perceptual losses.

See README.md. The Python entry point most people want is :func:`percept.stylize`; the models
(shipped and the user's) are listed by :func:`percept.registry.list_models`.

Layers (each imports only from the ones before it): the core (``errors``, ``device``, ``images``,
``checkpoint``, ``registry``), then ``percept.models``, then ``percept.training``,
``percept.inference`` and ``percept.visualize``; ``cli`` and ``demo`` sit on top.
"""

from percept.version import __version__

__all__ = ["__version__", "stylize", "stylize_any", "stylize_video"]


def stylize(*args, **kwargs):
    """Stylize an image with a shipped or trained model (see :func:`percept.inference.stylize.stylize`)."""
    from percept.inference.stylize import stylize as _stylize

    return _stylize(*args, **kwargs)


def stylize_any(photo, paintings, method="adain", weights=None, size=None, strength=1.0, preserve_color=False,
                device="auto", precision="auto", color_match=None):
    """Stylise ``photo`` with any painting (or several, blended by ``weights``), no training: WCT or AdaIN on
    the shipped decoders (default AdaIN with its own decoder; see :func:`percept.inference.anystyle.stylize_any`)."""
    from percept.inference.anystyle import stylize_any as _stylize_any

    return _stylize_any(photo, paintings, method, weights, size, strength, preserve_color, device, precision,
                        color_match)


def stylize_video(src, dst, model, size=None, strength=1.0, preserve_color=False, temporal=False,
                  temporal_alpha=0.8, backend="auto", device="auto", progress=False,
                  precision="auto", temporal_flow=None) -> dict:
    """Stylize the video file ``src`` into ``dst`` with ``model`` (what ``percept video`` does).

    ``temporal=True`` is the flow-guided mode (:class:`percept.inference.temporal.TemporalFilter`, history
    weight ``temporal_alpha``, optical flow preset ``temporal_flow``, one of :data:`percept.argtypes.FLOW_PRESETS`, default
    :data:`~percept.argtypes.VIDEO_FLOW`): much less flicker. Returns the summary (path, frames, fps, size, seconds,
    and with ``temporal`` the filter's ``temporal_stats``)."""
    from percept.argtypes import VIDEO_FLOW
    from percept.inference.engine import Engine
    from percept.inference.temporal import TemporalFilter
    from percept.inference.video import FrameStyler
    from percept.inference.video import stylize_video as _stylize_video

    flt = TemporalFilter(alpha=temporal_alpha, flow=temporal_flow or VIDEO_FLOW) if temporal else None
    styler = FrameStyler(Engine(model, backend=backend, device=device, precision=precision), size, strength, preserve_color, temporal=flt)
    result = _stylize_video(src, dst, styler, progress=progress)
    if flt is not None:
        result["temporal_stats"] = flt.stats
    return result
