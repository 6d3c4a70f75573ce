"""The one training loop: :func:`fit` runs a :class:`Task` (a style network, Johnson et al. 2016; a feature
decoder, Dosovitskiy & Brox 2016; the linear style transform, Li et al. 2019; a distilled student, Hinton et
al. 2015) and owns everything around its steps:

* the set-up (:func:`open_run`): the process's place in a ``torchrun`` job (:mod:`percept.training.distributed`),
  the device, the training and held-out photos, the output folder, the seed, the ranks' agreement;
* ``--resume`` (:mod:`percept.training.state`): rank 0 reads the training state, every rank gets it;
* the loop: a non-finite loss stops the run naming the step (the last good checkpoint stays), running
  averages, tqdm, TensorBoard scalars (``loss/*``, ``speed/it_per_s`` and the task's own) and image grids,
  the training state every ``checkpoint_every`` steps and at the end, the time limit (rank 0's clock);
* the model card (:func:`model_card`, the one function that writes cards) and the finished model.

A task says only what is its own: how to build its networks (``setup``), its data from a step on (``start``),
one step (``step``), its previews (``preview``), the weights and optimiser its checkpoint holds (``state``)
and what its card adds (``card``).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
from tqdm import tqdm

from percept.device import device_name, resolve_device
from percept.errors import PerceptError
from percept.images import check_writable, load_image
from percept.training import distributed
from percept.training.common import Sync
from percept.training.data import list_images, make_loader, readable_images, split_holdout
from percept.training.distributed import Dist
from percept.training.state import optimizer_to, resume_state, save_training_state
from percept.version import __version__

__all__ = ["FitOptions", "FitResult", "Run", "Task", "fit", "model_card", "open_run", "prepare_run"]

HEADER_CHECK_LIMIT = 2000
"""Folders up to this many training photos have every header read at the start (bad files are named
before any work); larger ones start without it."""
CARD_HELD_OUT = 200
"""A model card names at most this many held-out photos (a COCO-sized folder holds out thousands)."""
RUN_OPTIONS = ("data", "out", "name", "logdir", "device", "workers", "time_limit")
"""Settings of a run that are not hyper-parameters of the model (kept out of its card's)."""


def _check_one_decodes(files: list[Path]) -> None:
    """Decode ``files`` up to the first that decodes (usually the first): none is one error line, before the
    held-out photos are checked or a progress bar is shown (headers alone pass a truncated file)."""
    reasons = []
    for p in files:
        try:
            load_image(p)
            return
        except PerceptError as exc:
            reasons.append(exc)
    if reasons:
        more = f" and {len(reasons) - 1} more" if len(reasons) > 1 else ""
        raise PerceptError(f"none of the {len(files)} training images can be read ({reasons[0]}{more})")


def prepare_run(cfg) -> tuple[list[Path], list[Path], Path]:
    """The start of every run: ``cfg.data``'s photos split into training and held-out ones (every
    ``holdout_every``-th held out), the output folder ``cfg.out`` made, and the seed set. Returns
    (training files, held-out files, output folder)."""
    train_files, held = split_holdout(list_images(cfg.data), cfg.holdout_every)
    if len(train_files) <= HEADER_CHECK_LIMIT:
        train_files = readable_images(train_files, "training")
    # a large folder starts at once: an unreadable photo is skipped when it is drawn, warned about and counted
    # (RandomCropDataset.skipped, the TensorBoard scalar data/unreadable_skipped)
    _check_one_decodes(train_files)
    if len(held) <= HEADER_CHECK_LIMIT:  # few, and decoded for previews anyway; a big folder's previews take
        held = readable_images(held, "held-out", decode=True, required=False)  # the first that decode (first_readable)
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


@dataclass
class Run:
    """What :func:`fit` has set up before a task builds anything: the settings, this process's place in the
    job, its device, the photos (training and held out), the output folder and whether the run resumes."""

    cfg: Any
    dist: Dist
    device: torch.device
    train_files: list[Path]
    held: list[Path]
    out: Path
    resume: bool = False

    @property
    def state_path(self) -> Path:
        """The training state ``--resume`` reads: ``out/{name}.train.pt``."""
        return self.out / f"{self.cfg.name}.train.pt"

    @property
    def sync(self) -> Sync | None:
        """What averages a step's loss terms over the ranks (None: one process)."""
        return self.dist.mean if self.dist.enabled else None

    @property
    def preview_files(self) -> list[Path]:
        """The photos previews show: the held-out ones, or the training ones when none are held out."""
        return self.held or self.train_files

    def loader(self, dataset, start_step: int):
        """The batches of ``dataset`` for steps ``start_step`` on (this rank's slice of each), with the
        run's workers (default: 4 on a GPU, none on the CPU)."""
        workers = self.cfg.workers if self.cfg.workers is not None else (4 if self.device.type == "cuda" else 0)
        return make_loader(dataset, self.cfg.batch_size, start_step, workers, self.dist.rank, self.dist.world)


@dataclass
class FitOptions:
    """How :func:`fit` runs a task: the length, the cadence of logs, previews and checkpoints (None: no
    training state, the run cannot be resumed), the time limit in minutes (``min_steps`` run whatever it
    says), ``--resume`` and the progress bar."""

    iterations: int
    log_every: int = 10
    preview_every: int = 100
    checkpoint_every: int | None = 100
    time_limit: float | None = None
    min_steps: int = 0
    resume: bool = False
    progress: bool = True

    @classmethod
    def of(cls, cfg, resume: bool = False, progress: bool = True) -> FitOptions:
        """The options a :class:`~percept.training.configs.LoopOptions` config gives."""
        return cls(cfg.iterations, cfg.log_every, cfg.preview_every, cfg.checkpoint_every, cfg.time_limit,
                   resume=resume, progress=progress)


@dataclass
class FitResult:
    step: int
    """Steps done, this call and the ones it resumed."""
    wall: float
    """Seconds of training, this call and the ones it resumed."""
    running: dict[str, float] = field(default_factory=dict)
    """Exponential moving averages of every loss term."""


class Task:
    """One kind of training, as :func:`fit` runs it. A subclass sets the class attributes and ``cfg``, and
    implements :meth:`setup`, :meth:`state`, :meth:`start`, :meth:`step`, :meth:`save` and, where it has
    them, :meth:`preview`, :meth:`scalars`, :meth:`agreement`, :meth:`network` and :meth:`card`."""

    kind = ""
    """The finished model's kind (its checkpoint's and card's)."""
    state_kind = ""
    """The training state's kind."""
    label = "train"
    """The progress bar's word (``train NAME``)."""
    activity = "training"
    """What stops when the loss becomes non-finite."""
    resume_keys: tuple[str, ...] = ()
    """Settings a ``--resume`` must share with the saved state."""
    shown: dict[str, str] = {}
    """Running losses the progress bar shows, with their formats."""
    private: tuple[str, ...] = ()
    """Options each rank may give its own way besides :data:`~percept.training.distributed.LOCAL_OPTIONS`
    (paths; :meth:`agreement` compares what they hold)."""
    card_leaves_out: tuple[str, ...] = RUN_OPTIONS
    """Settings kept out of the card's hyper-parameters."""
    follows_clock = False
    """Whether :meth:`step` uses the seconds it is given (a schedule over the time limit): in a distributed
    job every rank then gets rank 0's clock."""
    setup_seconds = 0.0
    """Seconds :meth:`setup` spent that count against the time limit and the wall time (a teacher's pictures)."""
    cfg: Any

    def agreement(self) -> dict:
        """What the ranks must agree on besides the options and the photos (digests of private inputs)."""
        return {}

    def input_files(self) -> dict[str, tuple[str, str]]:
        """Input files the training state records and ``--resume`` must find unchanged: ``{key: (digest, file)}``
        (a style network's painting by its SHA-1)."""
        return {}

    def setup(self, run: Run) -> None:
        """Build the networks, losses, optimiser and data sets on ``run.device`` (after the seed is set)."""
        raise NotImplementedError

    def state(self) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        """The module whose weights the training state holds, and its optimiser."""
        raise NotImplementedError

    def network(self) -> torch.nn.Module:
        """The finished network (what :meth:`save` writes, its card describes): by default the trained module."""
        return self.state()[0]

    def start(self, run: Run, start_step: int) -> Iterable:
        """The batches of steps ``start_step`` on (after any resume; the place to wrap the trained module for
        distributed training)."""
        raise NotImplementedError

    def step(self, batch, step: int, seconds: float) -> dict[str, torch.Tensor]:
        """One optimisation step on ``batch`` (the ``step``-th, ``seconds`` into this call's loop); returns the
        detached loss terms, ``total`` among them (averaged over the ranks in a distributed job)."""
        raise NotImplementedError

    def preview(self) -> dict[str, torch.Tensor]:
        """TensorBoard image grids of the held-out photos, by tag (called on rank 0 only)."""
        return {}

    def scalars(self) -> dict[str, float]:
        """TensorBoard scalars beside the losses, by tag."""
        return {}

    def card(self, run: Run, result: FitResult) -> dict:
        """What the model card adds to :func:`model_card`'s (its ``data`` merged into the card's)."""
        return {}

    def save(self, run: Run, card: dict) -> Path:
        """Write the finished model with its card; returns its path."""
        raise NotImplementedError


def open_run(task: Task, resume: bool = False) -> Run:
    """A run's set-up: the device (this rank's GPU in a job), the global batch checked against the world
    size, the photos, the output folder and the seed (:func:`prepare_run`), then every rank's options and
    data compared with rank 0's."""
    cfg = task.cfg
    device = resolve_device(cfg.device)
    d = distributed.init(device)
    device = d.device(device)
    d.check_batch(cfg.batch_size)
    train_files, held, out = prepare_run(cfg)
    d.agree({**{k: v for k, v in asdict(cfg).items() if k not in distributed.LOCAL_OPTIONS + task.private},
             "photos": len(train_files), "photos_digest": distributed.files_digest(train_files, cfg.data),
             **task.agreement()})
    return Run(cfg, d, device, train_files, held, out, resume)


def folders_to_make(out: Path) -> list[Path]:
    """The folders ``out.mkdir(parents=True)`` would create, deepest first (none when ``out`` exists)."""
    made = []
    while not out.exists() and out != out.parent:
        made.append(out)
        out = out.parent
    return made


def remove_unused_folders(made: list[Path]) -> None:
    """After a failed run: remove each folder of ``made`` (:func:`folders_to_make`, taken before the run) that holds
    no file, not even in a subfolder (a folder the run wrote into, or that was there before, stays)."""
    for folder in made:
        if folder.is_dir() and not folder.is_symlink() and not any(p.is_file() or p.is_symlink()
                                                                   for p in folder.rglob("*")):
            shutil.rmtree(folder, ignore_errors=True)


def fit(task: Task, options: FitOptions) -> Path:
    """Run ``task`` (or resume it) to the end or the time limit; returns the finished model's path (written by
    rank 0; the path it will have on the other ranks). A run that fails removes the output folders it made
    itself while they hold no file (:func:`remove_unused_folders`); a folder that was there before stays."""
    made = folders_to_make(Path(task.cfg.out))
    try:
        run = open_run(task, options.resume)
        task.setup(run)
        start_step, before = _restore(task, run) if options.resume else (0, 0.0)
        batches = task.start(run, start_step)
        writer = _writer(run, start_step if options.resume else None)
        result = _loop(task, run, options, batches, writer, start_step, before)
    except BaseException:
        remove_unused_folders(made)
        raise
    if not run.dist.main:  # rank 0 writes the model; the others are done
        return run.out / f"{run.cfg.name}.pt"
    return task.save(run, model_card(run, task.kind, task.network(), result, task.card(run, result),
                                     task.card_leaves_out))


def model_card(run: Run, kind: str, model: torch.nn.Module, result: FitResult, fields: dict | None = None,
               leave_out: tuple[str, ...] = RUN_OPTIONS) -> dict:
    """The model card of every network trained here: name, kind, version, data (photos, held-out ones),
    architecture (``model``'s class, config and size), hyper-parameters (the settings but ``leave_out``),
    steps, time limit, device, wall time, the distributed job and the final running losses; then
    ``fields``, the task's own (its ``data`` merged into the card's, other keys replacing or adding)."""
    cfg, d, fields = run.cfg, run.dist, dict(fields or {})
    card = {
        "name": cfg.name, "kind": kind, "percept_version": __version__,
        "data": {"folder": str(cfg.data), "train_images": len(run.train_files),
                 "held_out": [f.name for f in run.held[:CARD_HELD_OUT]], "held_out_count": len(run.held),
                 **fields.pop("data", {})},
        "architecture": {"class": type(model).__name__, **getattr(model, "config", {}),
                         "parameters": sum(p.numel() for p in model.parameters())},
        "hyperparameters": {k: v for k, v in asdict(cfg).items() if k not in leave_out},
        "iterations": result.step, "stopped_by_time_limit": result.step < cfg.iterations,
        "device": device_name(run.device), "wall_time_s": round(result.wall, 1),
        "distributed": {"world_size": d.world, "backend": d.backend or None, "global_batch": cfg.batch_size,
                        "per_process_batch": cfg.batch_size // d.world},
    }
    if result.running:
        card["final_losses_running_avg"] = {k: round(v, 5) for k, v in result.running.items()}
    card.update(fields)
    return card


def _restore(task: Task, run: Run) -> tuple[int, float]:
    """``--resume``: rank 0 reads the training state into the task's module and optimiser, the others are sent
    its step, seconds and optimiser state (DistributedDataParallel sends the weights). Returns (step, seconds)."""
    model, optimizer = task.state()
    d = run.dist
    step, seconds = d.share_resume(lambda: resume_state(run.state_path, run.cfg, task.resume_keys, model, optimizer,
                                                        world_size=d.world, kind=task.state_kind,
                                                        inputs=task.input_files()))
    d.share_optimizer(optimizer)
    optimizer_to(optimizer, run.device)
    return step, seconds


def _writer(run: Run, purge_step: int | None):
    """Rank 0's TensorBoard writer (``logdir``, default ``out/tb/{name}``); the other ranks log nothing."""
    if not run.dist.main:
        return _NullWriter()
    from torch.utils.tensorboard import SummaryWriter  # imported late: it is slow to import

    logdir = Path(run.cfg.logdir) if run.cfg.logdir else run.out / "tb" / run.cfg.name
    return SummaryWriter(str(logdir), purge_step=purge_step)


def _loop(task: Task, run: Run, opts: FitOptions, batches: Iterable, writer, start_step: int,
          before: float) -> FitResult:
    """The steps, from ``start_step`` (``before`` seconds trained by the calls this one resumes). In a
    distributed job only rank 0 shows progress, logs, previews and saves, and the time limit is rank 0's
    decision, so that every rank stops after the same step."""
    d, name = run.dist, run.cfg.name
    limit = None if opts.time_limit is None else 60.0 * opts.time_limit - task.setup_seconds
    model, optimizer = task.state()
    state_path = run.state_path if opts.checkpoint_every else None
    inputs = task.input_files() if d.main else {}
    running: dict[str, float] = {}
    t0 = time.perf_counter()
    step = start_step

    def save() -> None:
        if state_path is not None and d.main:
            save_training_state(state_path, task.state_kind, model, optimizer, step,
                                before + task.setup_seconds + time.perf_counter() - t0, run.cfg, world_size=d.world,
                                inputs=inputs)

    def preview() -> None:
        if d.main:
            for tag, grid in task.preview().items():
                writer.add_image(tag, grid, step)

    bar = tqdm(total=opts.iterations, initial=start_step, desc=f"{task.label} {name}",
               disable=not (opts.progress and d.main), unit="it", dynamic_ncols=True)
    try:
        for batch in batches:
            seconds = time.perf_counter() - t0
            if task.follows_clock and limit is not None and d.enabled:
                seconds = d.seconds(seconds)  # a schedule over the time limit follows rank 0's clock
            losses = task.step(batch, step, seconds)
            total = losses["total"]
            if not torch.isfinite(total):
                raise PerceptError(_nonfinite_message(total.item(), step + 1, state_path, task.activity))
            step += 1
            values = {k: float(v) for k, v in losses.items()}
            for k, v in values.items():
                running[k] = v if k not in running else 0.95 * running[k] + 0.05 * v
            bar.update(1)
            last = step == opts.iterations
            if step % opts.log_every == 0 or last:
                for k, v in [*((f"loss/{k}", v) for k, v in values.items()), *task.scalars().items()]:
                    writer.add_scalar(k, v, step)
                writer.add_scalar("speed/it_per_s", (step - start_step) / (time.perf_counter() - t0), step)
                bar.set_postfix({k: format(running[k], f) for k, f in task.shown.items() if k in running})
            if step % opts.preview_every == 0 or last:
                preview()
            out_of_time = (limit is not None and step >= opts.min_steps
                           and time.perf_counter() - t0 >= limit)
            if limit is not None and d.enabled:
                out_of_time = d.decide(out_of_time)
            if state_path is not None and (step % opts.checkpoint_every == 0 or last or out_of_time):  # type: ignore[operator]
                save()
            if out_of_time:
                if step % opts.preview_every:
                    preview()
                break
    except BaseException:
        bar.leave = False  # close() erases the bar: the error is the one line left
        if step == start_step:  # nothing trained in this call: leave no empty TensorBoard stub behind
            _discard_event_file(writer)
        raise
    finally:
        bar.close()
        writer.close()
    return FitResult(step, before + task.setup_seconds + time.perf_counter() - t0, running)


def _nonfinite_message(value: float, step: int, state_path: Path | None, activity: str) -> str:
    if state_path is None:
        return f"the loss became {value} at step {step}; {activity} stopped"
    if state_path.exists():
        return (f"the loss became {value} at step {step}; {activity} stopped. "
                f"The last good checkpoint is {state_path}")
    return f"the loss became {value} at step {step}; {activity} stopped before any checkpoint was written"


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
    except AttributeError:  # another SummaryWriter version (or no writer): keep the stub rather than guess
        return
    writer.close()
    path.unlink(missing_ok=True)
    for folder in (path.parent, path.parent.parent):
        try:
            folder.rmdir()  # only when empty
        except OSError:
            break
