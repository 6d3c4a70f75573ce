"""The one exception type for mistakes a user can make (bad path, bad image, unknown model...).

The command line turns a :class:`PerceptError` into one line on stderr and exit code 2; anything
else is a bug and keeps its traceback.
"""

import re


class PerceptError(ValueError):
    """A user-facing error: its message is shown as is, without a traceback. A ``ValueError``, so code
    that guards against bad values catches it too.

    A library message names an argument in backquotes, as the API spells it (`` `style_blend` ``); the command line
    prints the option that sets it instead (``--style-blend``, :func:`for_command_line`), so both read right."""


ARGUMENT = re.compile(r"`([a-z][a-z0-9_]*)`")
"""An argument named in a message: a lower-case identifier in backquotes."""


def for_command_line(message: str, flags: dict[str, str]) -> str:
    """``message`` with each backquoted argument that is an option of the command (``flags``: dest -> flag) written
    as that flag: `` `style_blend` `` -> ``--style-blend``. Other backquoted words (a command) stay as they are."""
    return ARGUMENT.sub(lambda m: flags.get(m[1], m[0]), message)


def warn(message: str) -> None:
    """A warning a user should see (a skipped file, say): one line on stderr."""
    import sys

    print(f"percept: warning: {message}", file=sys.stderr, flush=True)
