"""percept: fast style transfer and feature-inversion networks trained with perceptual losses.

See README.md. The Python entry point most people want is :func:`percept.stylize`; the models
(shipped and the user's) are listed by :func:`percept.registry.list_models`.

Layers (each imports only from the ones before it): the core (``errors``, ``device``, ``images``,
``checkpoint``, ``registry``), then ``percept.models``, then ``percept.training``,
``percept.inference`` and ``percept.visualize``; ``cli`` and ``demo`` sit on top.
"""

from percept.version import __version__

__all__ = ["__version__", "open_stylizer", "stylize", "stylize_any", "stylize_video"]


def open_stylizer(*args, **kwargs):
    """Open what stylises, once: a trained network or any painting (:func:`percept.inference.stylizer.open_stylizer`);
    call the result on an image, or on a stream of frames."""
    from percept.inference.stylizer import open_stylizer as _open

    return _open(*args, **kwargs)


def stylize(*args, **kwargs):
    """Stylise an image with a trained network (``model=``) or any painting (``style=``); see
    :func:`percept.inference.stylizer.stylize`."""
    from percept.inference.stylizer import stylize as _stylize

    return _stylize(*args, **kwargs)


def stylize_any(photo, paintings, method="adain", weights=None, size=None, strength=1.0, preserve_color=False,
                device="auto", precision="auto", color_match=None):
    """Stylise ``photo`` with any painting (or several, blended by ``weights``), no training: ``stylize(photo,
    style=paintings, method=...)``."""
    from percept.inference.stylizer import stylize as _stylize

    return _stylize(photo, style=paintings, method=method, style_blend=weights, size=size, strength=strength,
                    preserve_color=preserve_color, device=device, precision=precision, color_match=color_match)


def stylize_video(src, dst, model=None, size=None, strength=1.0, preserve_color=False, temporal=False,
                  temporal_alpha=0.8, backend="auto", device="auto", progress=False,
                  precision="auto", temporal_flow=None, style=None, batch=4, audio=True) -> dict:
    """Stylize the video file ``src`` into ``dst`` with ``model`` (or a ``style`` painting, the linear model): what
    ``percept video`` does. ``temporal=True`` is the flow-guided mode (history weight ``temporal_alpha``, optical
    flow preset ``temporal_flow``, default :data:`percept.argtypes.VIDEO_FLOW`): much less flicker. The sound is
    kept (``audio=False`` drops it). Returns the
    summary (path, frames, fps, size, seconds, and with ``temporal`` the filter's ``temporal_stats``)."""
    from percept.argtypes import VIDEO_FLOW
    from percept.inference.options import VideoOptions
    from percept.inference.stylizer import open_stylizer as _open
    from percept.inference.video import stylize_video as _stylize_video

    stylizer = _open(model, style=style, method="linear" if style is not None else None, backend=backend,
                     device=device, precision=precision)
    options = VideoOptions(size=size, strength=strength, preserve_color=preserve_color, batch=batch,
                           temporal=temporal, temporal_alpha=temporal_alpha, flow=temporal_flow or VIDEO_FLOW,
                           no_audio=not audio)
    return _stylize_video(src, dst, stylizer, options, progress=progress)
