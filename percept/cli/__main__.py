"""``python -m percept.cli``: the same as ``python -m percept`` and the ``percept`` command."""

import sys

from percept.cli import main

if __name__ == "__main__":
    sys.exit(main())
