"""``percept models``: the models percept can find (shipped and the user's).
"""

from __future__ import annotations

import argparse
import sys

from percept.errors import PerceptError
from percept.registry import list_models, model_dirs


def cmd_models(args: argparse.Namespace) -> int:
    broken: list[PerceptError] = []
    models = list_models(broken=broken)
    dirs = model_dirs()
    for source, folder in dirs:
        count = sum(m.source == source for m in models)
        state = "" if folder.is_dir() else " (not created yet)"
        print(f"{source} models: {folder}{state}: {count}")
    if not models:
        if broken:
            raise PerceptError("; ".join(map(str, broken)))
        print("no models found (set PERCEPT_CHECKPOINTS, or reinstall percept from a wheel that carries its models)")
        return 1
    print(f"\n{'name':<22} {'kind':<18} {'architecture':<22} {'iterations':>10}  {'files':<10} {'where':<8} trained on")
    seen: set[str] = set()
    for m in models:
        card = m.card
        arch = card.get("architecture", {})
        if card.get("kind") == "feature-decoder":
            arch_s = (f"{card.get('layer', '?')} linear" if arch.get("width") == 0 else
                      f"{card.get('layer', '?')} w{arch.get('width', '?')} x{arch.get('n_blocks', '?')}")
        elif card.get("kind") == "linear-style":
            arch_s = f"linear {arch.get('layer', '?')} rank {arch.get('rank', '?')}"
        else:
            arch_s = (arch.get("arch", "johnson") + " " + "-".join(map(str, arch.get("channels", [])))
                      + f" x{arch.get('n_residual', '?')}")
        files = "+".join(s for s, p in (("pt", m.pt), ("onnx", m.onnx)) if p is not None)
        where = m.source + (" (hidden)" if m.name in seen else "")
        seen.add(m.name)
        print(f"{m.name:<22} {card.get('kind', '?'):<18} {arch_s:<22} {card.get('iterations', '?'):>10}  "
              f"{files:<10} {where:<8} {card.get('device', '?')}")
    if any(m.name in {n.name for n in models if n.source == "shipped"} and m.source == "user" for m in models):
        print("\n(hidden): a user model with a shipped model's name; give its path to use it")
    if broken:
        sys.stdout.flush()
        raise PerceptError("; ".join(map(str, broken)))
    return 0


def _register_models(sub) -> None:
    m = sub.add_parser("models", help="list the shipped models")
    m.set_defaults(func=cmd_models)


def register(sub) -> None:
    """Add this job's subcommands to the ``percept`` parser."""
    _register_models(sub)
