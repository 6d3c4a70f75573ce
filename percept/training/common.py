"""What every training run here shares (style networks, Johnson et al. 2016; decoders, Dosovitskiy & Brox
2016; distillation): the run options (:class:`RunOptions`, :class:`LoopOptions`), the loop itself
(:func:`run_loop`), preview grids for TensorBoard, non-finite checks. Resuming and saving the training state
live one level down, in :mod:`percept.training.state` (re-exported here), which the distributed helpers use
too: nothing here is imported back by ``data``, ``distributed`` or ``state``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torchvision.utils import make_grid
from tqdm import tqdm

from percept.errors import PerceptError
from percept.images import check_writable
from percept.training.configs import LoopOptions, RunOptions, fill_arch_defaults  # noqa: F401 - re-exported
from percept.training.data import list_images, readable_images, split_holdout
from percept.training.distributed import Dist
from percept.training.state import (  # noqa: F401 - re-exported
    check_finite_weights,
    optimizer_to,
    optimizer_to_cpu,
    resume_state,
    save_training_state,
)

HEADER_CHECK_LIMIT = 2000
"""Folders up to this many training photos have every header read at the start (bad files are named
before any work); larger ones start without it."""


def prepare_run(cfg) -> tuple[list[Path], list[Path], Path]:
    """The start of every run: ``cfg.data``'s photos split into training and held-out ones (every
    ``holdout_every``-th held out), the output folder ``cfg.out`` made, and the seed set. Returns
    (training files, held-out files, output folder)."""
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


def preview_grid(tiles: list[torch.Tensor], nrow: int = 2) -> torch.Tensor:
    """(3, H, W) images of different sizes -> one grid image (padded with white), for TensorBoard."""
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


def nonfinite_loss_message(value: float, step: int, state_path) -> str:
    if state_path.exists():
        return (f"the loss became {value} at step {step}; training stopped. "
                f"The last good checkpoint is {state_path}")
    return f"the loss became {value} at step {step}; training stopped before any checkpoint was written"


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
