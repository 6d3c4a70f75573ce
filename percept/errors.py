"""The one exception type for mistakes a user can make (bad path, bad image, unknown model...).

The command line turns a :class:`PerceptError` into one line on stderr and exit code 2; anything
else is a bug and keeps its traceback.
"""


class PerceptError(Exception):
    """A user-facing error: its message is shown as is, without a traceback."""
