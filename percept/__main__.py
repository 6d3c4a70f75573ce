"""``python -m percept ...`` is the ``percept`` command (what ``torchrun -m percept train-style ...`` runs)."""

import sys

from percept.cli import main

if __name__ == "__main__":
    sys.exit(main())
