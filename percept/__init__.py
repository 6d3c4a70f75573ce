"""percept: fast style transfer and feature-inversion networks trained with perceptual losses.

See README.md. The Python entry point most people want is :func:`percept.stylize`; the models
(shipped and the user's) are listed by :func:`percept.registry.list_models`.

Layers (each imports only from the ones before it): the core (``errors``, ``device``, ``images``,
``checkpoint``, ``registry``), then ``percept.models``, then ``percept.training``,
``percept.inference`` and ``percept.visualize``; ``cli`` and ``demo`` sit on top.
"""

from percept.version import __version__

__all__ = ["__version__", "stylize"]


def stylize(*args, **kwargs):
    """Stylize an image with a shipped or trained model (see :func:`percept.inference.stylize.stylize`)."""
    from percept.inference.stylize import stylize as _stylize

    return _stylize(*args, **kwargs)
