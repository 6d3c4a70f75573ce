"""``percept viz TECHNIQUE ...``: the visualisation tools on the command line.

The subcommands come in groups, each a light module (argparse only; the torch work is imported when
a command runs) with an ``add_parsers(subparsers)`` function:

* ``cli_features``: filters, activations, maximize, dream, texture
* ``cli_attribution``: predict, saliency, guided-backprop, deconvnet, gradcam, occlusion, classviz, fool
* ``cli_embedding``: embed, invert-grid, gallery

Every command writes PNGs into ``-o/--out`` (a folder) and prints what it wrote.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util

from percept.argtypes import output_folder

GROUPS = ("cli_features", "cli_attribution", "cli_embedding")


def common_options(p: argparse.ArgumentParser, out_help: str = "output folder for the PNGs") -> None:
    """Options every viz command shares: ``-o/--out``, ``--device``, ``--seed``, ``--quiet``."""
    p.add_argument("-o", "--out", required=True, type=output_folder, help=out_help)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_viz_commands(subparsers: argparse._SubParsersAction) -> None:
    for group in GROUPS:
        name = f"percept.visualize.{group}"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).add_parsers(subparsers)
