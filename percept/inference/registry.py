"""Finding shipped and user-trained models.

Shipped models live in the repository's ``checkpoints/`` folder (override with the environment
variable ``PERCEPT_CHECKPOINTS``): ``NAME.pt`` (weights, loaded with ``weights_only=True``) beside
``NAME.json`` (the model card).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from percept.errors import PerceptError


def checkpoints_dir() -> Path:
    env = os.environ.get("PERCEPT_CHECKPOINTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "checkpoints"


@dataclass
class ModelEntry:
    name: str
    path: Path
    card: dict


def list_models(kind: str | None = None) -> list[ModelEntry]:
    """Shipped models with a card, sorted by name (optionally only one ``kind``)."""
    folder = checkpoints_dir()
    out = []
    if folder.is_dir():
        for pt in sorted(folder.glob("*.pt")):
            card_path = pt.with_suffix(".json")
            card = json.loads(card_path.read_text()) if card_path.is_file() else {}
            if kind is None or card.get("kind") == kind:
                out.append(ModelEntry(pt.stem, pt, card))
    return out


def resolve_model(model: str | os.PathLike) -> Path:
    """A shipped model name or a path to a ``.pt`` file -> the file's path."""
    text = str(model)
    path = Path(text)
    if path.suffix == ".pt" or os.sep in text or path.exists():
        if not path.is_file():
            raise PerceptError(f"{path}: no such model file")
        return path
    candidate = checkpoints_dir() / f"{text}.pt"
    if candidate.is_file():
        return candidate
    names = ", ".join(m.name for m in list_models()) or "none installed"
    raise PerceptError(f"unknown model '{text}'; shipped models: {names} (or give a path to a .pt file)")
