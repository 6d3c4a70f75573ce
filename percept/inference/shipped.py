"""The shipped models' ``.onnx`` files: derived from their ``.pt``, built by ``make``, never committed.

Each shipped model is stored once in git: ``NAME.pt`` (its weights) and ``NAME.json`` (its card). Its
``NAME.onnx``, what the inference engine runs, is derived from the ``.pt`` by the exporter
(:func:`percept.inference.export.export_onnx`, which verifies every file against PyTorch before writing
it) with the settings the shipped files have always had (:func:`export_settings`: opset 18, weights
stored in float16 where the ``.pt`` stores them so, float32 arithmetic). It is made

* by ``make models`` (:func:`export_missing`, ``scripts/make_models.py``): into ``checkpoints/``, for
  every model that lacks its ``.onnx`` or whose ``.onnx`` was not exported from its ``.pt`` (the weights'
  SHA-256 recorded in the file differs). ``make install``, ``make test``, ``make demo`` and ``make wheel``
  run it first, so the wheel carries every ``.onnx`` (``scripts/check_wheel.py`` checks that each one is
  there and was exported from the ``.pt`` beside it);
* on first use (:func:`onnx_on_first_use`, called by the engine): where a shipped model has its ``.pt``
  but no ``.onnx`` (``pip install .`` from a clone without ``make``; ``PERCEPT_CHECKPOINTS`` naming a
  folder of ``.pt`` files), it is exported once into percept's cache, ``~/.cache/percept/onnx/``
  (``$XDG_CACHE_HOME`` respected), with a one-line note on stderr; later runs find it there.

Models in :data:`PT_ONLY` have no ``.onnx`` (they run in PyTorch only).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Callable

from percept.checkpoint import load_checkpoint, weights_digest
from percept.errors import PerceptError, warn
from percept.inference.export import export_onnx
from percept.registry import ModelFiles, cache_dir

__all__ = ["PT_ONLY", "ONNX_KINDS", "export_settings", "wants_onnx", "onnx_digest", "export_missing",
           "first_use_path", "onnx_on_first_use"]

OPSET = 18
"""The opset every shipped ``.onnx`` is exported with."""
PT_ONLY = {
    "decoder_relu4_1_adain": "AdaIN runs it in PyTorch; its .onnx (9 MB) would take the wheel past 100 MB",
}
"""Shipped models without an ``.onnx``, and why."""
ONNX_KINDS = ("style-transformer", "feature-decoder", "linear-style")
"""Kinds of shipped model that come with an ``.onnx`` (what the exporter takes)."""
ENGINE_KINDS = ("style-transformer", "linear-style")
"""Kinds the engine runs from an ``.onnx``: the ones exported on first use."""
FP16_MIN_ELEMENTS = 64
"""A ``.pt`` storing any floating-point tensor of at least this many elements in float16 is exported with
its weights in float16 (``scripts/pack_checkpoints.py`` rounds exactly those)."""


def export_settings(ckpt: dict) -> dict:
    """The :func:`~percept.inference.export.export_onnx` arguments that reproduce a shipped ``.onnx`` from
    its loaded checkpoint: opset 18, ``fp16_weights`` where the ``.pt`` stores its weights in float16
    (all but decoder_relu1_1), and no OpenVINO bf16 measurement (it depends on the CPU that exports:
    the OpenVINO backend measures it where it runs)."""
    import torch

    half = any(isinstance(t, torch.Tensor) and t.dtype == torch.float16 and t.numel() >= FP16_MIN_ELEMENTS
               for t in ckpt["state_dict"].values())
    return {"opset": OPSET, "fp16_weights": half, "openvino_check": False}


def wants_onnx(name: str, kind: str | None) -> bool:
    """Whether a shipped model comes with an ``.onnx``."""
    return kind in ONNX_KINDS and name not in PT_ONLY


def onnx_digest(path: Path) -> str | None:
    """The weights' SHA-256 an exported ``.onnx`` records (``weights_sha256`` in ``percept.card``), or None
    (an older export, or not a percept file)."""
    import onnx

    try:
        meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        return json.loads(meta.get("percept.card", "{}") or "{}").get("weights_sha256") or None
    except Exception:  # noqa: BLE001 - a broken file is simply not current
        return None


def _export(pt: Path, out: Path, ckpt: dict):
    return export_onnx(pt, out, **export_settings(ckpt))


def export_missing(folder: str | Path, only: list[str] | None = None, force: bool = False,
                   log: Callable[[str], None] | None = print) -> list[tuple[str, float]]:
    """Export the ``.onnx`` of every model in ``folder`` (default use: the repository's ``checkpoints/``)
    that should have one and lacks it, or whose ``.onnx`` records other weights than its ``.pt`` (or none:
    an export older than the record); ``force`` re-exports all. Each file is verified by the exporter and
    written atomically. Returns (name, seconds) of each export; ``log`` gets one line per model."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PerceptError(f"{folder}: no such folder")
    done: list[tuple[str, float]] = []
    for pt in sorted(folder.glob("*.pt")):
        name = pt.stem
        if name.endswith(".train") or (only and name not in only) or name in PT_ONLY:
            continue
        ckpt = load_checkpoint(pt)
        if not wants_onnx(name, ckpt["kind"]):
            continue
        out = pt.with_suffix(".onnx")
        if not force and out.is_file() and onnx_digest(out) == weights_digest(ckpt["state_dict"]):
            continue
        t0 = time.perf_counter()
        report = _export(pt, out, ckpt)
        seconds = time.perf_counter() - t0
        done.append((name, seconds))
        if log is not None:
            log(f"{out}: {report.bytes / 1e6:.1f} MB, weights {report.weights}, onnxruntime vs PyTorch max abs "
                f"diff {report.max_abs_diff:.1e} ({seconds:.0f} s)")
    return done


def first_use_path(name: str, digest: str) -> Path:
    """Where a shipped model's ``.onnx`` exported on first use lives: ``<cache>/onnx/NAME-DIGEST.onnx``
    (the ``.pt`` weights' SHA-256, so new weights get a new file)."""
    return cache_dir() / "onnx" / f"{name}-{digest[:16]}.onnx"


def onnx_on_first_use(files: ModelFiles, backend: str = "auto") -> ModelFiles:
    """``files`` with an ``.onnx``: for a shipped model the engine runs from one (a style network, the
    linear style model) that has its ``.pt`` but no ``.onnx``, the file exported once into percept's cache
    (:func:`first_use_path`; a one-line note on stderr when it is made). Anything else, the torch backend,
    an install without onnxruntime, or an export that fails (a warning) returns ``files`` unchanged."""
    if files.onnx is not None or files.pt is None or files.source != "shipped" or backend == "torch":
        return files
    if files.name in PT_ONLY or (files.kind is not None and files.kind not in ENGINE_KINDS):
        return files
    if importlib.util.find_spec("onnxruntime") is None:
        return files
    from percept.checkpoint import load_checkpoint, weights_digest

    try:
        ckpt = load_checkpoint(files.pt)
    except PerceptError:
        return files  # the torch backend's own load reports it
    if ckpt["kind"] not in ENGINE_KINDS:
        return files
    target = first_use_path(files.name, weights_digest(ckpt["state_dict"]))
    if not target.is_file():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            print(f"percept: note: {files.name} has no .onnx beside {files.pt}; exporting it once to {target} "
                  "(`make models` puts them in checkpoints/)", file=sys.stderr, flush=True)
            _export(files.pt, target, ckpt)
        except (PerceptError, OSError) as exc:
            warn(f"could not export {files.name} to ONNX ({exc}); it runs with PyTorch")
            return files
    return dataclasses.replace(files, onnx=target)
