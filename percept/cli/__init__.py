"""The ``percept`` command line: one module per job, each registering its subcommands.

* :mod:`~percept.cli.stylise`: ``stylize``, ``compare``, ``optimize-style``, ``demo``
* :mod:`~percept.cli.live`: ``video``, ``webcam``, ``eval-video``
* :mod:`~percept.cli.train`: ``train-style``, ``train-decoder``, ``train-linear``, ``distill``
* :mod:`~percept.cli.deploy`: ``export``, ``serve-web``, ``check-web``
* :mod:`~percept.cli.inspect`: ``invert``, ``viz ...``
* :mod:`~percept.cli.models`: ``models``

The commands only choose options and hand them to the library; the options are built from the operation's
dataclass (:func:`percept.argtypes.add_options`). Every mistake a user can make ends in one line on stderr
(``percept: error: ...``) and exit code 2; Ctrl-C ends with exit code 130. Output files are written atomically, so
neither leaves half a file. Building the parser imports no torch (``percept --help`` answers at once).
"""

from __future__ import annotations

import argparse
import os
import sys

from percept.cli import deploy, inspect, live, models, stylise, train
from percept.cli.common import Parser
from percept.errors import PerceptError, for_command_line

__all__ = ["build_parser", "main"]

JOBS = (train, inspect, models, stylise, deploy, live)
"""The job modules, in the order their subcommands are listed."""


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="percept", description="Fast style transfer and feature inversion with perceptual losses.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for job in JOBS:
        job.register(sub)
    _record_flags(p)
    return p


def _record_flags(parser: argparse.ArgumentParser) -> None:
    """Each command remembers its options (dest -> long flag), so a library error that names an argument
    (`` `style_blend` ``) is printed with the flag the user typed (``--style-blend``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _record_flags(child)
    flags = {a.dest: max(a.option_strings, key=len) for a in parser._actions if a.option_strings}
    parser.set_defaults(_flags=flags)


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C, so every output's clean-up runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, frame) -> None:
    raise _Terminated(signum)


def _handle_termination() -> None:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _raise_terminated)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _handle_termination()
    try:
        return _run(args)
    finally:
        if "percept.training.distributed" in sys.modules:  # a torchrun job: leave its process group cleanly
            from percept.training.distributed import close

            close()


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except PerceptError as exc:
        # one write per line: the processes of a torchrun job share the terminal; rank > 0 says which it is
        rank = os.environ.get("RANK", "0") if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 else "0"
        message = for_command_line(str(exc), getattr(args, "_flags", {}))
        sys.stderr.write(f"percept: error{'' if rank == '0' else f' (rank {rank})'}: {message}\n")
        sys.stderr.flush()
        return 2
    except KeyboardInterrupt as exc:
        if isinstance(exc, _Terminated):
            import signal

            print(f"percept: stopped by {signal.Signals(exc.signum).name}", file=sys.stderr)
            return 128 + exc.signum
        print("percept: interrupted", file=sys.stderr)
        return 130

