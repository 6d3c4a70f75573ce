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
import dataclasses
import importlib
import importlib.util

from percept.argtypes import add_options, add_quiet, config_option
from percept.visualize.options import COMMON_OPTIONS

GROUPS = ("cli_features", "cli_attribution", "cli_embedding")


def add_viz_options(p: argparse.ArgumentParser, cls: type, exclusive: tuple[str, ...] = (), **helps: str) -> None:
    """The options of ``cls`` (a :class:`~percept.visualize.options.VizOptions`) in the order of its fields, those
    named in ``exclusive`` in one mutually exclusive group; then the ones every viz command shares: ``-o/--out``,
    ``--device``, ``--seed`` and ``--quiet``. ``helps`` replaces a field's help for this command."""
    group = p.add_mutually_exclusive_group() if exclusive else None
    for f in dataclasses.fields(cls):
        if "cli" in f.metadata and f.name not in COMMON_OPTIONS:
            config_option(group if f.name in exclusive else p, cls, f.name, help=helps.get(f.name))
    add_options(p, cls, *COMMON_OPTIONS, **helps)
    add_quiet(p)


def add_viz_commands(subparsers: argparse._SubParsersAction) -> None:
    for group in GROUPS:
        name = f"percept.visualize.{group}"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).add_parsers(subparsers)
