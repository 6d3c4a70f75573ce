"""The one exception type for mistakes a user can make (bad path, bad image, unknown model...).

The command line turns a :class:`PerceptError` into one line on stderr and exit code 2; anything
else is a bug and keeps its traceback.
"""


class PerceptError(ValueError):
    """A user-facing error: its message is shown as is, without a traceback. A ``ValueError``, so code
    that guards against bad values catches it too."""


def warn(message: str) -> None:
    """A warning a user should see (a skipped file, say): one line on stderr."""
    import sys

    print(f"percept: warning: {message}", file=sys.stderr, flush=True)
