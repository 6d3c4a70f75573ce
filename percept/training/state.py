"""The training state on disk: what ``--resume`` reads back to continue a run exactly (weights, optimiser
state, step, seconds trained, settings, world size), written atomically, never with non-finite weights.

The bottom of :mod:`percept.training`: it imports nothing else from the package's training modules, so the
loop (:mod:`percept.training.loop`) and the distributed helpers (:mod:`percept.training.distributed`) can both
use it. Exact resume is the recipe of Johnson et al. 2016's training run made restartable: the data of step
``n`` is a function of the seed and ``n`` (:mod:`percept.training.data`), so weights and optimiser are all
that has to be kept.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from percept.checkpoint import load_checkpoint, save_atomic
from percept.errors import PerceptError

__all__ = ["check_finite_weights", "optimizer_to", "optimizer_to_cpu", "resume_state", "save_training_state"]


def optimizer_to_cpu(state: dict) -> dict:
    """An optimizer ``state_dict`` with every tensor on the CPU (for a device-independent checkpoint)."""
    out = {"state": {}, "param_groups": state["param_groups"]}
    for k, v in state["state"].items():
        out["state"][k] = {n: (t.detach().cpu() if isinstance(t, torch.Tensor) else t) for n, t in v.items()}
    return out


def optimizer_to(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Move a (resumed) optimizer's state tensors to ``device`` (the step counters stay on the CPU)."""
    for group in optimizer.state.values():
        for k, v in group.items():
            if isinstance(v, torch.Tensor) and k != "step":
                group[k] = v.to(device)


def check_finite_weights(model: torch.nn.Module, step: int, state_path: Path) -> None:
    """Refuse to checkpoint weights that went NaN/inf (the last good checkpoint stays)."""
    for p in model.parameters():
        if not torch.isfinite(p).all():
            raise PerceptError(f"weights became non-finite by step {step}; kept the last good checkpoint {state_path}")


STATE_COMMANDS = {"style-transformer-training": "train-style", "feature-decoder-training": "train-decoder",
                  "linear-style-training": "train-linear"}
"""The command that writes (and resumes) each kind of training state."""


def resume_state(state_path: Path, cfg, keys: tuple[str, ...], model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, world_size: int = 1, kind: str | None = None,
                 inputs: dict | None = None) -> tuple[int, float]:
    """Load ``state_path`` into ``model`` and ``optimizer`` for ``--resume``; a state of another ``kind`` (another
    command's), other ``inputs`` (the painting's SHA-1: ``{key: (digest, file)}``), a saved setting in ``keys``
    that differs from ``cfg``'s, or another world size (distributed training), is refused. Returns (step,
    seconds trained before)."""
    if not state_path.is_file():
        raise PerceptError(f"--resume: no training state at {state_path}")
    state = load_checkpoint(state_path)
    if "optimizer" not in state or "step" not in state:
        raise PerceptError(f"--resume: {state_path} is a finished '{state['kind']}' model, not a training state "
                           "(no optimizer or step inside); start without --resume, or use --init MODEL")
    if kind and state.get("kind") != kind:
        command = STATE_COMMANDS.get(str(state.get("kind")))
        raise PerceptError(f"--resume: {state_path} is a {command or repr(state.get('kind'))} state; "
                           + (f"resume it with percept {command}" if command else "this command cannot resume it"))
    for key, (digest, name) in (inputs or {}).items():
        saved_digest, saved_name = state.get("inputs", {}).get(key, (None, None))
        if saved_digest is not None and saved_digest != digest:
            raise PerceptError(f"--resume: {state_path} was trained on {saved_name}, this run is given {name} "
                               f"(another {key.split('_')[0]}); resume with the same one, or start a new run")
    saved = state.get("config", {})
    for key in keys:
        if key in saved and saved[key] != getattr(cfg, key):
            raise PerceptError(f"--resume: {key} was {saved[key]} in {state_path}, now {getattr(cfg, key)}")
    saved_world = int(state.get("world_size", 1))
    if saved_world != world_size:
        raise PerceptError(f"--resume: {state_path} was trained by {saved_world} process(es), this job has "
                           f"{world_size}; resume with the same world size (torchrun --nproc-per-node x --nnodes)")
    step = int(state["step"])
    iterations = getattr(cfg, "iterations", None)
    if iterations is not None and step >= iterations:
        raise PerceptError(f"--resume: {state_path} already finished its {step} iterations; give more --iterations "
                           "to train further")
    model.load_state_dict(state["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    return step, float(state.get("elapsed", 0.0))


def save_training_state(state_path: Path, kind: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        step: int, elapsed: float, cfg, world_size: int = 1, inputs: dict | None = None) -> None:
    """Atomically write the training state (weights, optimizer, step, config, world size, the ``inputs`` it was
    trained on: ``{key: (digest, file)}``) that ``--resume`` reads."""
    check_finite_weights(model, step, state_path)
    save_atomic({"kind": kind, "step": step, "elapsed": elapsed, "config": asdict(cfg), "world_size": world_size,
                 "inputs": dict(inputs or {}),
                 "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                 "optimizer": optimizer_to_cpu(optimizer.state_dict())}, state_path)
