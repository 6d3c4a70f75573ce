"""What every training run here shares (style networks, decoders, distillation): the run options
(:class:`RunOptions`, :class:`LoopOptions`), the loop itself (:func:`run_loop`), resuming and saving
the training state, optimizer state that moves between devices, preview grids for TensorBoard,
non-finite checks."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from percept.errors import PerceptError
from percept.training.configs import LoopOptions, RunOptions, fill_arch_defaults  # noqa: F401 - re-exported

HEADER_CHECK_LIMIT = 2000
"""Folders up to this many training photos have every header read at the start (bad files are named
before any work); larger ones start without it."""


def prepare_run(cfg) -> tuple[list[Path], list[Path], Path]:
    """The start of every run: ``cfg.data``'s photos split into training and held-out ones (every
    ``holdout_every``-th held out), the output folder ``cfg.out`` made, and the seed set. Returns
    (training files, held-out files, output folder)."""
    from percept.training.data import list_images, readable_images, split_holdout

    train_files, held = split_holdout(list_images(cfg.data), cfg.holdout_every)
    if len(train_files) <= HEADER_CHECK_LIMIT:
        train_files = readable_images(train_files, "training")
    # a large folder starts at once: an unreadable photo is skipped when it is drawn, warned about and counted
    # (RandomCropDataset.skipped, the TensorBoard scalar data/unreadable_skipped)
    if len(held) <= HEADER_CHECK_LIMIT:  # few, and decoded for previews anyway; a big folder's previews take
        held = readable_images(held, "held-out", decode=True)  # the first that decode (first_readable)
    if not train_files:
        raise PerceptError(f"{cfg.data}: no training images left after holding out every {cfg.holdout_every}th")
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise PerceptError(f"{out}: is a file; --out must be a folder")
    from percept.images import check_writable

    check_writable(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PerceptError(f"{out}: cannot make the output folder ({exc.strerror or exc.__class__.__name__})") from None
    name = getattr(cfg, "name", None)
    if name:  # temporary files a killed run left mid-write (kill -9 during a checkpoint)
        for stale in out.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)
    if cfg.seed < 0:
        raise PerceptError(f"seed must be 0 or more, got {cfg.seed}")
    torch.manual_seed(cfg.seed)
    return train_files, held, out


CARD_HELD_OUT = 200
"""A model card names at most this many held-out photos (a COCO-sized folder holds out thousands)."""


def held_out_entry(held: list[Path]) -> dict:
    """The model card's account of the held-out photos: their names (the first :data:`CARD_HELD_OUT`) and count."""
    return {"held_out": [f.name for f in held[:CARD_HELD_OUT]], "held_out_count": len(held)}


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


def preview_grid(tiles: list[torch.Tensor], nrow: int = 2) -> torch.Tensor:
    """(3, H, W) images of different sizes -> one grid image (padded with white), for TensorBoard."""
    from torchvision.utils import make_grid

    hmax = max(t.shape[1] for t in tiles)
    wmax = max(t.shape[2] for t in tiles)
    padded = [torch.nn.functional.pad(t, (0, wmax - t.shape[2], 0, hmax - t.shape[1]), value=1.0) for t in tiles]
    return make_grid(padded, nrow=nrow, padding=4, pad_value=1.0)


def finish_step(terms: dict[str, torch.Tensor], total: torch.Tensor, optimizer: torch.optim.Optimizer,
                sync: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
                ) -> dict[str, torch.Tensor]:
    """The end of every training step: the loss terms detached (and with ``sync``, a distributed job,
    averaged over the ranks, so that every rank decides alike), then the optimiser step from ``total``,
    only when the total is finite. Returns the detached terms."""
    out = {k: v.detach() for k, v in terms.items()}
    if sync is not None:
        out = sync(out)
    if torch.isfinite(out["total"]):
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
    return out


def check_finite_weights(model: torch.nn.Module, step: int, state_path) -> None:
    """Refuse to checkpoint weights that went NaN/inf (the last good checkpoint stays)."""
    for p in model.parameters():
        if not torch.isfinite(p).all():
            raise PerceptError(f"weights became non-finite by step {step}; kept the last good checkpoint {state_path}")


def nonfinite_loss_message(value: float, step: int, state_path) -> str:
    if state_path.exists():
        return (f"the loss became {value} at step {step}; training stopped. "
                f"The last good checkpoint is {state_path}")
    return f"the loss became {value} at step {step}; training stopped before any checkpoint was written"


def resume_state(state_path: Path, cfg, keys: tuple[str, ...], model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, world_size: int = 1) -> tuple[int, float]:
    """Load ``state_path`` into ``model`` and ``optimizer`` for ``--resume``; a saved setting in ``keys``
    that differs from ``cfg``'s, or another world size (distributed training), is refused. Returns (step,
    seconds trained before)."""
    from percept.checkpoint import load_checkpoint

    if not state_path.is_file():
        raise PerceptError(f"--resume: no training state at {state_path}")
    state = load_checkpoint(state_path)
    if "optimizer" not in state or "step" not in state:
        raise PerceptError(f"--resume: {state_path} is a finished '{state['kind']}' model, not a training state "
                           "(no optimizer or step inside); start without --resume, or use --init MODEL")
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
                        step: int, elapsed: float, cfg, world_size: int = 1) -> None:
    """Atomically write the training state (weights, optimizer, step, config, world size) that ``--resume``
    reads."""
    from percept.checkpoint import save_atomic

    check_finite_weights(model, step, state_path)
    save_atomic({"kind": kind, "step": step, "elapsed": elapsed, "config": asdict(cfg), "world_size": world_size,
                 "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                 "optimizer": optimizer_to_cpu(optimizer.state_dict())}, state_path)


def log_previews(writer, tag: str, model: torch.nn.Module, preview: list[torch.Tensor],
                 forward: Callable[[torch.Tensor], torch.Tensor], device: torch.device, step: int) -> None:
    """Held-out inputs next to the model's outputs (``forward(x)``), as one TensorBoard image."""
    model.eval()
    tiles = []
    with torch.no_grad():
        for x in preview:
            y = forward(x.to(device)).float().cpu()
            tiles += [x[0], y[0]]
    model.train()
    writer.add_image(tag, preview_grid(tiles), step)


@dataclass
class LoopResult:
    step: int
    wall: float
    """Seconds of training, this call and the ones it resumed."""
    running: dict[str, float]
    """Exponential moving averages of every loss term."""


def run_loop(cfg, loader, train_step: Callable[[torch.Tensor, int, float], dict[str, torch.Tensor]], *,
             name: str, start_step: int, elapsed_before: float, state_path: Path,
             save_state: Callable[[int, float], None], log_preview: Callable[[int], None], writer,
             postfix: Callable[[dict[str, float]], dict[str, str]],
             scalars: Callable[[], dict[str, float]] | None = None, progress: bool = True,
             dist=None) -> LoopResult:
    """The training loop every model here shares.

    ``train_step(batch, step, seconds)`` runs one optimisation step and returns the (detached) loss
    terms, ``total`` among them. Around it: a non-finite total stops the run naming the step (the last
    good checkpoint stays); running averages; tqdm; TensorBoard scalars (``loss/*``, ``speed/it_per_s``
    and ``scalars()``) every ``cfg.log_every`` steps; previews every ``cfg.preview_every``; the
    training state every ``cfg.checkpoint_every`` and at the end; ``cfg.time_limit`` minutes stop it
    early (saved, previewed). The writer is closed at the end.

    ``dist`` (:class:`percept.training.distributed.Dist`): in a distributed job only rank 0 shows
    progress, logs, previews and saves (``train_step`` returns losses averaged over the ranks already),
    and the time limit is rank 0's decision, so that every rank stops after the same step.
    """
    from percept.training.distributed import Dist

    dist = dist or Dist()
    if not dist.main:
        writer, progress = _NullWriter(), False
        save_state = log_preview = lambda *a: None  # noqa: E731
    running: dict[str, float] = {}
    t0 = time.perf_counter()
    step = start_step
    bar = tqdm(total=cfg.iterations, initial=start_step, desc=f"train {name}", disable=not progress,
               unit="it", dynamic_ncols=True)
    try:
        for batch in loader:
            losses = train_step(batch, step, time.perf_counter() - t0)
            total = losses["total"]
            if not torch.isfinite(total):
                raise PerceptError(nonfinite_loss_message(total.item(), step + 1, state_path))
            step += 1
            vals = {k: float(v) for k, v in losses.items()}
            for k, v in vals.items():
                running[k] = v if k not in running else 0.95 * running[k] + 0.05 * v
            bar.update(1)
            if step % cfg.log_every == 0 or step == cfg.iterations:
                for k, v in vals.items():
                    writer.add_scalar(f"loss/{k}", v, step)
                for k, v in (scalars() if scalars else {}).items():
                    writer.add_scalar(k, v, step)
                writer.add_scalar("speed/it_per_s", (step - start_step) / (time.perf_counter() - t0), step)
                bar.set_postfix(**postfix(running))
            if step % cfg.preview_every == 0 or step == cfg.iterations:
                log_preview(step)
            out_of_time = cfg.time_limit is not None and time.perf_counter() - t0 >= 60.0 * cfg.time_limit
            if cfg.time_limit is not None and dist.enabled:
                out_of_time = dist.decide(out_of_time)
            if step % cfg.checkpoint_every == 0 or step == cfg.iterations or out_of_time:
                save_state(step, elapsed_before + time.perf_counter() - t0)
            if out_of_time:
                if step % cfg.preview_every:
                    log_preview(step)
                break
    except BaseException:
        if step == start_step:  # nothing trained in this call: leave no empty TensorBoard stub behind
            _discard_event_file(writer)
        raise
    finally:
        bar.close()
        writer.close()
    return LoopResult(step, elapsed_before + time.perf_counter() - t0, running)


class _NullWriter:
    """What ranks other than 0 log to: nothing."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass

    add_image = add_scalar

    def close(self) -> None:
        pass


def _discard_event_file(writer) -> None:
    """Close ``writer`` and delete the event file it made (and its folders, when empty)."""
    try:
        path = Path(writer._get_file_writer().event_writer._file_name)
    except AttributeError:  # another SummaryWriter version: keep the stub rather than guess
        return
    writer.close()
    path.unlink(missing_ok=True)
    for folder in (path.parent, path.parent.parent):
        try:
            folder.rmdir()  # only when empty
        except OSError:
            break
