"""Atomic checkpoint files and the model cards that go with shipped models.

Everything is written to a temporary file in the destination folder and renamed, so a kill at any
moment leaves either the old file or the new one, never half of one. Files are read back with
``torch.load(..., weights_only=True)``: a checkpoint from elsewhere cannot run code.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from percept.errors import PerceptError
from percept.images import atomic_write_bytes


def save_atomic(obj: Any, path: str | Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_torch_file(path: str | Path, missing: str = "no such file",
                    unreadable: str = "not a readable torch file") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a missing or unreadable file is the user's to
    fix, so it becomes one :class:`PerceptError` line (``"{path}: {missing}"`` / ``"{path}: {unreadable} (...)"``)."""
    path = Path(path)
    if not path.is_file():
        raise PerceptError(f"{path}: {missing}")
    try:
        with warnings.catch_warnings():  # torch warns before failing on foreign files: keep the one line
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file is a user error
        raise PerceptError(f"{path}: {unreadable} ({exc.__class__.__name__})") from None


def load_checkpoint(path: str | Path) -> dict:
    obj = read_torch_file(path, "no such checkpoint", "not a readable percept checkpoint")
    if not isinstance(obj, dict) or "state_dict" not in obj or "kind" not in obj:
        raise PerceptError(f"{path}: not a percept checkpoint (no model kind / weights inside)")
    return obj


def weights_digest(state_dict: dict) -> str:
    """SHA-256 of a checkpoint's weights as stored (names, dtypes, shapes and bytes, in name order): what
    an exported ``.onnx`` records (``weights_sha256`` in ``percept.card``) to tell which ``.pt`` it came from."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name]
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def checkpoint_digest(path: str | Path) -> str:
    """:func:`weights_digest` of the checkpoint file ``path``."""
    return weights_digest(load_checkpoint(path)["state_dict"])


def load_network(path: Path, kind: str, what: str, build) -> tuple[torch.nn.Module, dict]:
    """A finished network of ``kind`` from checkpoint ``path``: ``build(config)`` makes the module, the
    weights go in, and it comes back in eval mode without gradients, with its model card. Another
    kind, a config ``build`` rejects, or weights that do not fit are one-line errors naming ``what``."""
    ckpt = load_checkpoint(path)
    if ckpt["kind"] != kind:
        raise PerceptError(f"{path}: a '{ckpt['kind']}' checkpoint, not {what}")
    config = ckpt.get("config", {})
    if not isinstance(config, dict):
        raise PerceptError(f"{path}: its config is not a table of settings ({type(config).__name__})")
    try:
        net = build(config)
    except KeyError as exc:
        raise PerceptError(f"{path}: its config has no {exc} entry") from None
    except (ValueError, TypeError, RuntimeError, AttributeError, OverflowError, MemoryError) as exc:
        raise PerceptError(f"{path}: its config does not describe a network ({str(exc).splitlines()[0][:200]})") from None
    try:
        net.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, TypeError, AttributeError):
        raise PerceptError(f"{path}: weights do not fit the architecture its config describes") from None
    for name, t in net.state_dict().items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise PerceptError(f"{path}: the weights contain NaN or infinity ({name}); refusing to use them")
    net.eval().requires_grad_(False)
    return net, ckpt.get("card", {})


def write_json_atomic(obj: Any, path: str | Path) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def save_style_model(model: torch.nn.Module, card: dict, out: str | Path, name: str) -> Path:
    """Write a finished style network as ``out/name.pt`` (weights, config, card) + ``out/name.json``."""
    return save_model(model, card, out, name, kind="style-transformer")


def save_model(model: torch.nn.Module, card: dict, out: str | Path, name: str, kind: str,
               dtype: torch.dtype | None = None) -> Path:
    """Write a finished network of ``kind`` as ``out/name.pt`` (weights, config, card) + ``out/name.json``.

    ``dtype`` stores the floating-point weights in that type (``load_state_dict`` casts them back).
    """
    out = Path(out)
    final = out / f"{name}.pt"
    card = {**card, "trained_at": card.get("trained_at") or _now(), "torch": str(torch.__version__)}
    save_atomic({"kind": kind, "config": model.config,
                 "state_dict": {k: _cast(v.detach().cpu().contiguous(), dtype) for k, v in model.state_dict().items()},
                 "card": card}, final)
    write_json_atomic(card, out / f"{name}.json")
    return final


def _cast(t: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    return t.to(dtype) if dtype is not None and t.is_floating_point() else t


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")
