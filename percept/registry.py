"""Where models live, and everything about one model in one call.

Two folders hold models, searched in this order:

1. **shipped**: the models that come with percept. In an installed wheel they are package data
   (``percept/checkpoints/`` in site-packages, found through :mod:`importlib.resources`); in a source
   checkout they are the repository's top-level ``checkpoints/``. ``PERCEPT_CHECKPOINTS=DIR``
   replaces this folder.
2. **user**: models a user trained, exported or downloaded: ``$PERCEPT_USER_MODELS``, else
   ``$XDG_CACHE_HOME/percept/models`` (``~/.cache/percept/models``). Copy a ``NAME.pt`` (with its
   ``NAME.json`` card and ``NAME.onnx``, when there are) there and ``--model NAME`` finds it.

A model is ``NAME.pt`` (PyTorch weights, read with ``weights_only=True``), ``NAME.onnx`` (what the
inference engine runs) and ``NAME.json`` (its model card); either of the first two may be missing.
:func:`find_model` turns a name or a path into a :class:`ModelFiles` with all three.
"""

from __future__ import annotations

import difflib
import enum
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from percept.errors import PerceptError

__all__ = ["ModelKind", "ModelFiles", "shipped_dir", "user_dir", "model_dirs", "list_models", "find_model",
           "checkpoints_dir"]

MODEL_SUFFIXES = (".pt", ".onnx")


class ModelKind(str, enum.Enum):
    """What a network does (the ``kind`` in its checkpoint, card and ONNX metadata)."""

    STYLE = "style-transformer"
    DECODER = "feature-decoder"
    LINEAR = "linear-style"
    """Any painting at once: photo and painting in, picture out (:mod:`percept.models.linear`)."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ModelFiles:
    """One model's files: weights (``pt``), ONNX graph (``onnx``) and card, and where it was found."""

    name: str
    pt: Path | None
    onnx: Path | None
    card: dict = field(default_factory=dict, compare=False)
    source: str = "file"
    """``shipped``, ``user`` or ``file`` (a path given directly)."""

    @property
    def kind(self) -> str | None:
        return self.card.get("kind")

    @property
    def path(self) -> Path:
        """The checkpoint if there is one, else the ONNX file."""
        path = self.pt or self.onnx
        assert path is not None
        return path

    def require_pt(self, why: str = "this needs the PyTorch weights") -> Path:
        if self.pt is None:
            raise PerceptError(f"model '{self.name}' has no .pt checkpoint ({why}); only {self.onnx}")
        return self.pt


def _env_dir(var: str) -> Path | None:
    value = os.environ.get(var)
    if value is None or value == "":
        return None
    folder = Path(value).expanduser()
    if not folder.is_dir():
        raise PerceptError(f"{var}={value}: " + ("is not a folder" if folder.exists() else "no such folder"))
    return folder


def shipped_dir() -> Path:
    """The folder of shipped models: ``PERCEPT_CHECKPOINTS``, else the package data, else (a source
    checkout) the repository's ``checkpoints/``."""
    override = _env_dir("PERCEPT_CHECKPOINTS")
    if override is not None:
        return override
    inside = Path(str(resources.files("percept") / "checkpoints"))
    if inside.is_dir():
        return inside
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").is_file() and (root / "checkpoints").is_dir():
        return root / "checkpoints"  # a source checkout (or an editable install of one)
    return inside  # a wheel without its models: errors name the folder they should be in


checkpoints_dir = shipped_dir  # the name older code and scripts use


def user_dir() -> Path:
    """The folder of the user's own models (it need not exist yet)."""
    override = _env_dir("PERCEPT_USER_MODELS")
    if override is not None:
        return override
    return cache_dir() / "models"


def cache_dir() -> Path:
    """percept's folder in the user's cache (``$XDG_CACHE_HOME/percept``, else ``~/.cache/percept``): user
    models, the OpenVINO bf16 checks, onnxruntime-web's files, TensorRT engines. It need not exist yet."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "percept"


def model_dirs() -> list[tuple[str, Path]]:
    """(source, folder) in search order."""
    return [("shipped", shipped_dir()), ("user", user_dir())]


def read_card(path: Path) -> dict:
    """A model card (JSON); a broken one is one error line naming the file."""
    try:
        card = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PerceptError(f"{path}: broken model card ({exc.msg} at line {exc.lineno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PerceptError(f"{path}: unreadable model card ({exc.__class__.__name__})") from None
    if not isinstance(card, dict):
        raise PerceptError(f"{path}: broken model card (not a JSON object)")
    return card


def _files(folder: Path, name: str, source: str) -> ModelFiles | None:
    pt, onnx = folder / f"{name}.pt", folder / f"{name}.onnx"
    pt_ok, onnx_ok = pt.is_file(), onnx.is_file()
    if not (pt_ok or onnx_ok):
        return None
    card_path = folder / f"{name}.json"
    card = read_card(card_path) if card_path.is_file() else {}
    return ModelFiles(name, pt if pt_ok else None, onnx if onnx_ok else None, card, source)


def _names(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise PerceptError(f"{folder}: cannot read the model folder ({exc.strerror or exc.__class__.__name__})") from None
    return sorted({p.stem for p in entries if p.suffix in MODEL_SUFFIXES and not p.name.endswith(".train.pt")})


def list_models(kind: str | ModelKind | None = None, source: str | None = None,
                broken: list[PerceptError] | None = None) -> list[ModelFiles]:
    """Every model in the shipped and the user folder (shipped first, each sorted by name),
    optionally only one ``kind`` or one ``source``. A user model with a shipped model's name is
    listed but not used by name (the shipped one comes first). A model whose card cannot be read is
    left out; its error goes into ``broken`` when a list is given."""
    out = []
    for where, folder in model_dirs():
        if source is not None and where != source:
            continue
        for name in _names(folder):
            try:
                entry = _files(folder, name, where)
            except PerceptError as exc:
                if broken is not None:
                    broken.append(exc)
                continue
            if entry is not None and (kind is None or entry.kind == str(kind)):
                out.append(entry)
    return out


def _no_such_model(text: str) -> PerceptError:
    models = list_models()
    names = [m.name for m in models]
    if not any(m.source == "shipped" for m in models):
        hint = (f"no shipped models are installed (nothing in {shipped_dir()}: reinstall percept from a wheel that "
                "carries its models, or set PERCEPT_CHECKPOINTS)")
    else:
        hint = "models: " + ", ".join(names)
    near = difflib.get_close_matches(text, names, n=1)
    maybe = f" (did you mean '{near[0]}'?)" if near else ""
    return PerceptError(f"unknown model '{text}'{maybe}; {hint} (or give a .pt or .onnx path)")


def find_model(model: str | os.PathLike) -> ModelFiles:
    """A shipped or user model name, or a path to a ``.pt`` / ``.onnx`` file -> its :class:`ModelFiles`
    (the sibling ``.pt`` / ``.onnx`` / ``.json`` of a path are picked up too)."""
    text = str(model)
    path = Path(text).expanduser()
    if path.suffix.lower() in MODEL_SUFFIXES or os.sep in text or path.exists():
        if not path.is_file():
            raise PerceptError(f"{path}: no such model file")
        if path.suffix.lower() not in MODEL_SUFFIXES:
            raise PerceptError(f"{path}: not a model file (expected a .pt or .onnx file)")
        entry = _files(path.parent, path.stem, "file")
        assert entry is not None
        if path.suffix.lower() == ".pt":  # the file asked for, even if a sibling has another case
            return ModelFiles(entry.name, path, entry.onnx, entry.card, "file")
        return ModelFiles(entry.name, entry.pt, path, entry.card, "file")
    for where, folder in model_dirs():
        entry = _files(folder, text, where)
        if entry is not None:
            return entry
    raise _no_such_model(text)
