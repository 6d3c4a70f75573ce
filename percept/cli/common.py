"""What the job modules of the command line share: the one-line-error parser, option types and the output folder
of training commands."""

from __future__ import annotations

import argparse

from percept.errors import PerceptError
from percept.registry import user_dir

OUT_HELP = ("output folder (default: the user model folder, $PERCEPT_USER_MODELS or ~/.cache/percept/models, "
            "where `--model NAME` finds it): NAME.pt, NAME.json")


class Parser(argparse.ArgumentParser):
    """argparse with one line and exit code 2 for a mistake (argparse would print the usage too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def out_folder(args: argparse.Namespace) -> str:
    """``--out``, else the user model folder (so the trained model is found by name)."""
    return args.out or str(user_dir())


def channels_list(text: str) -> list[int]:
    """``--channels 32,64,128``: three positive widths."""
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three widths like 32,64,128, got '{text}'") from None
    if len(parts) != 3 or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"expected three positive widths like 32,64,128, got '{text}'")
    return parts


def int_list(text: str, flag: str) -> list[int]:
    """``10,30,100``: positive whole numbers (``flag`` names the option in the error)."""
    try:
        values = [int(v) for v in text.split(",") if v]
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values):
        raise PerceptError(f"{flag} {text}: give positive whole numbers separated by commas, e.g. 10,30,100")
    return values
