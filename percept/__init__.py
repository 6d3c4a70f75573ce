"""percept: fast style transfer and feature-inversion networks trained with perceptual losses.

See README.md. The Python entry point most people want is :func:`percept.stylize`.
"""

__version__ = "0.1.0"


def stylize(*args, **kwargs):
    """Stylize an image with a shipped or trained model (see :func:`percept.inference.stylize.stylize`)."""
    from percept.inference.stylize import stylize as _stylize

    return _stylize(*args, **kwargs)
