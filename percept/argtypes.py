"""Argument types for the command line (``percept`` and ``percept viz``): each turns a bad value into
argparse's one-line error; and options built from a config dataclass, so each default is declared
once (:func:`config_option`, :func:`config_from_args`)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable, TypeVar

from percept.errors import PerceptError
from percept.images import check_writable

N = TypeVar("N", int, float)


def _parse(text: str, cast: Callable[[str], N], what: str) -> N:
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'") from None


def positive_int(text: str) -> int:
    value = _parse(text, int, "a whole number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def nonneg_int(text: str) -> int:
    value = _parse(text, int, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def port_int(text: str) -> int:
    """A TCP port: a whole number from 0 to 65535 (0: the system picks a free one)."""
    value = _parse(text, int, "a port number")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is from 0 to 65535, got {value}")
    return value


def nonneg_float(text: str) -> float:
    value = _parse(text, float, "a number")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    value = _parse(text, float, "a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def unit_float(text: str) -> float:
    value = nonneg_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def temporal_alpha(text: str) -> float:
    """The flow-guided blend's weight of the history: in [0, 1)."""
    value = nonneg_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1 (1 would never take a new frame), got {text}")
    return value


FLOW_PRESETS = ("ultrafast", "fast", "medium")
"""OpenCV's DIS optical flow presets, fastest first (:data:`percept.flow.PRESETS` has their codes); here so that
the command line offers them without importing numpy."""
VIDEO_FLOW = "medium"
"""The DIS preset a video file's flow-guided conversion uses (``percept video --flow``). Against ``ultrafast`` it
cut the warping error of the four rt models' output from 0.23-0.71x to 0.10-0.50x of per-frame on the five
evaluation clips (320 px, alpha 0.8; docs/BENCHMARKS.md): the better flow keeps more of the history where the
scene really moved that way (on the synthetic pans and zooms it also averages away more of the rt models'
wandering motifs: style loss +11-61% against per frame). Its two flows a frame cost about 11 ms at 320x240 (5.7 ms each on a Xeon
core; ``ultrafast`` 0.6 ms)."""
LIVE_FLOW = "ultrafast"
"""The DIS preset the webcam uses: about 0.6 ms a flow at 320x240, so ``--temporal`` keeps 20 FPS at 640x480."""


def field_default(cls: type, name: str) -> Any:
    """The default of dataclass ``cls``'s field ``name`` (its ``default_factory``'s value included)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            raise KeyError(f"{cls.__name__}.{name} has no default")
    raise KeyError(f"{cls.__name__} has no field {name}")


def option(default: Any = None, help: str = "", **cli: Any) -> Any:
    """A config dataclass field that is also a command-line option: its default, its help text and its argparse
    settings (``type``, ``choices``, ``action``, ``metavar``, ``flags``) declared once, beside the field
    (:func:`add_options` builds the options). A list default is copied per instance."""
    meta = {"help": help, "cli": cli}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _field(cls: type, name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no field {name}")


def add_options(parser: argparse.ArgumentParser, cls: type, *names: str, **helps: str) -> None:
    """The options of the fields ``names`` of ``cls`` (default: every field with an :func:`option` declaration),
    each built by :func:`config_option` from its declaration; ``helps`` replaces a field's help for this parser
    (a command that uses the option differently, e.g. the webcam's ``model``)."""
    chosen = names or tuple(f.name for f in dataclasses.fields(cls) if "cli" in f.metadata)
    for name in chosen:
        config_option(parser, cls, name, help=helps.get(name))


def config_option(parser: argparse.ArgumentParser, cls: type, name: str, *flags: str, help: str | None = None,
                  **kwargs: Any) -> None:
    """Add the option for field ``name`` of the config dataclass ``cls``, its default taken from the
    dataclass (declared once: the CLI, the API and the model card agree). ``flags`` default to the field's
    declared ``flags`` (:func:`option`), else ``--field-name``; ``help`` and argparse settings not given come from
    the declaration; a bool field with a False default becomes a ``store_true`` switch; the default is
    appended to the help. A field without a default (a required setting of the config) gets none here: give
    ``required=True`` where the command needs it."""
    f = _field(cls, name)
    meta = f.metadata
    declared = dict(meta.get("cli", {}))
    if help is None:
        help = meta.get("help", "")
    flags = flags or tuple(declared.pop("flags", ())) or ("--" + name.replace("_", "-"),)
    declared.pop("flags", None)
    kwargs = {**declared, **kwargs}
    has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    default = field_default(cls, name) if has_default else None
    if isinstance(default, bool) and default is False and "action" not in kwargs and "type" not in kwargs:
        kwargs["action"] = "store_true"
    shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
    suffix = "" if default is None or isinstance(default, bool) or shown == "" else f" (default {shown})"
    text = (help + suffix).strip() or None
    if flags[0].startswith("-"):
        parser.add_argument(*flags, dest=name, default=default, help=text, **kwargs)
    else:  # a positional argument: its name is the field's
        parser.add_argument(name, help=text, **kwargs)


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress bar (a switch of the command line, not a setting of the operation)."""
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def config_from_args(cls: type, args: argparse.Namespace, **values: Any) -> Any:
    """Build ``cls`` from the parsed options that are its fields, plus ``values``."""
    names = {f.name for f in dataclasses.fields(cls)}
    given = {k: v for k, v in vars(args).items() if k in names and k not in values}
    return cls(**given, **values)


MIN_SIDE, MAX_SIDE = 16, 16384
"""Image sides a ``--size`` may ask for: the loss network downsamples by 16, and the exported graphs
take at most 16384 px a side."""


def side_int(text: str) -> int:
    """A ``--size`` / ``--image-size`` in pixels: a whole number from 16 to 16384."""
    value = _parse(text, int, "a whole number of pixels")
    if not MIN_SIDE <= value <= MAX_SIDE:
        raise argparse.ArgumentTypeError(f"must be from {MIN_SIDE} to {MAX_SIDE} px, got {value}")
    return value


def output_folder(text: str) -> str:
    """An output folder somewhere that can be written (checked at parse time, so a read-only place
    fails before any work; a file given instead is the command's own one-line error)."""
    from pathlib import Path

    try:
        check_writable(Path(text))
    except PerceptError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
