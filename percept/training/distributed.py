"""Data-parallel training across processes and machines with PyTorch's own engine (``torch.distributed``,
DistributedDataParallel: Li et al. 2020, "PyTorch Distributed: Experiences on Accelerating Data Parallel
Training"); :func:`percept.training.loop.fit` uses it for every task.

``torchrun --nproc-per-node N -m percept train-style ...`` (also ``train-decoder`` and ``distill``; with
``--nnodes M --node-rank R --rdzv-backend c10d --rdzv-endpoint HOST:PORT`` across machines) starts N
processes per machine; each finds its rank in the environment torchrun sets and joins the group: gloo
on CPUs, NCCL on GPUs (one GPU per process, ``LOCAL_RANK``).

* **Sharding**: a global batch of B samples is split into W equal slices, one per rank (B must be a
  multiple of the world size W). Sample ``n`` is still a pure function of ``(seed, n)``
  (:mod:`percept.training.data`, :func:`~percept.training.data.sample_indices`), so rank ``r`` draws samples ``step*B + r*B/W ...`` of each step: the
  W processes together see exactly the batches one process would, and the gradients, averaged over
  the ranks by :class:`~torch.nn.parallel.DistributedDataParallel`, are the one-process gradients of
  that global batch (every loss here is a mean over the batch). Same seed and global batch, same weights
  within float tolerance, whatever W is (``tests/test_distributed.py``).
* **One writer**: only rank 0 writes TensorBoard logs, previews, checkpoints and the model card (which
  records the world size and the global batch); the other ranks go on and wait for it at the next step's
  collective. ``--resume`` is read by rank 0 alone and its step and optimiser state sent to the others
  (DistributedDataParallel sends the weights), so only rank 0's ``--out`` needs the training state.
* **Agreement**: at the start every rank's options and data (the file list's length and digest) are
  compared with rank 0's; a rank that disagrees stops the job with one line naming the option.
* **Failures**: a rank that dies makes the others' next collective fail; they stop with one line,
  and the last checkpoint (written atomically by rank 0) resumes the run under the same world size
  (``--resume`` with another world size is refused).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from percept.errors import PerceptError
from percept.training.state import optimizer_to_cpu

__all__ = ["LOCAL_OPTIONS", "Dist", "close", "files_digest", "init"]

TIMEOUT_S = float(os.environ.get("PERCEPT_DIST_TIMEOUT", "300"))
"""Seconds a collective waits for the other ranks before the job is declared broken."""


@dataclass
class Dist:
    """This process's place in the job (a single process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def main(self) -> bool:
        """Whether this process writes (logs, previews, checkpoints, the model)."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def device(self, device: torch.device) -> torch.device:
        """The device of this rank: its own GPU (``LOCAL_RANK``) when training on CUDA."""
        if device.type == "cuda" and self.enabled:
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def check_batch(self, batch_size: int) -> int:
        """The per-rank batch of a global ``batch_size``; one that the world size does not divide is refused."""
        if batch_size % self.world:
            raise PerceptError(f"--batch-size {batch_size} is not a multiple of the world size {self.world} "
                               f"(torchrun --nproc-per-node x --nnodes); use a multiple, e.g. "
                               f"{max(self.world, batch_size - batch_size % self.world)}")
        return batch_size // self.world

    def agree(self, what: dict[str, Any]) -> None:
        """Stop the job when any rank's ``what`` (options, data) differs from rank 0's, naming the key."""
        if not self.enabled:
            return
        mine = json.dumps(what, sort_keys=True, default=str)
        everyone: list[Any] = [None] * self.world
        _collective(lambda: dist.all_gather_object(everyone, mine), "the start-up check")
        ref = json.loads(everyone[0])
        for rank, text in enumerate(everyone):
            other = json.loads(text)
            for key in sorted(set(ref) | set(other)):
                if ref.get(key) != other.get(key):
                    raise PerceptError(f"rank {rank} disagrees with rank 0 on {key}: {other.get(key)!r} vs "
                                       f"{ref.get(key)!r}; every process of a job must get the same options and data")

    def barrier(self, what: str = "a barrier") -> None:
        if self.enabled:
            _collective(dist.barrier, what)

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Loss terms averaged over the ranks (what one process would have logged for the global batch)."""
        if not self.enabled:
            return values
        keys = sorted(values)
        flat = torch.stack([values[k].detach().float().reshape(()) for k in keys])
        flat = flat.to(_comm_device(self.backend, flat.device))
        _collective(lambda: dist.all_reduce(flat), "averaging the losses")
        flat = flat / self.world
        return {k: flat[i].to(values[k].device) for i, k in enumerate(keys)}

    def decide(self, flag: bool) -> bool:
        """Rank 0's ``flag``, on every rank (a decision that all must take together, like a time limit)."""
        if not self.enabled:
            return flag
        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_comm_device(self.backend, self._dev()))
        _collective(lambda: dist.broadcast(t, 0), "the time-limit decision")
        return bool(t.item())

    def seconds(self, value: float) -> float:
        """Rank 0's clock (for schedules that follow the wall time)."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=_comm_device(self.backend, self._dev()))
        _collective(lambda: dist.broadcast(t, 0), "the clock")
        return float(t.item())

    def _dev(self) -> torch.device:
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    def guard(self, fn, *args):
        """``fn(*args)``; in a job, a failure of a collective inside it (a rank died) becomes one line."""
        if not self.enabled:
            return fn(*args)
        return _collective(lambda: fn(*args), "a training step")

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` wrapped in DistributedDataParallel (gradients averaged over the ranks in backward);
        itself when there is one process."""
        if not self.enabled:
            return model
        ids = [device.index] if device.type == "cuda" else None
        return DDP(model, device_ids=ids, broadcast_buffers=False)

    def share_resume(self, load) -> tuple[int, float]:
        """``load()`` (the resume on rank 0: returns (step, seconds) and fills the model and optimiser) run on
        rank 0 only; its step, seconds and optimiser state, or its error, go to every rank. One process:
        just ``load()``."""
        if not self.enabled:
            return load()
        payload: list[Any] = [None]
        if self.main:
            try:
                step, seconds = load()
                payload = [("ok", step, seconds)]
            except PerceptError as exc:
                payload = [("error", str(exc), 0.0)]
        _collective(lambda: dist.broadcast_object_list(payload, 0), "the resume")
        status, step, seconds = payload[0]
        if status == "error":
            raise PerceptError(str(step))
        return int(step), float(seconds)

    def share_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        """Rank 0's optimiser state on every rank (after a resume)."""
        if not self.enabled:
            return
        payload: list[Any] = [optimizer_to_cpu(optimizer.state_dict()) if self.main else None]
        _collective(lambda: dist.broadcast_object_list(payload, 0), "the resume")
        if not self.main:
            optimizer.load_state_dict(payload[0])

    def close(self) -> None:
        close()


def close() -> None:
    """Leave the job's process group (at the end of a command), so NCCL and gloo shut down cleanly."""
    global _CURRENT
    if _CURRENT is None:
        return
    try:
        if dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # noqa: BLE001 - a peer already gone: nothing left to close
        pass
    _CURRENT = None


def _comm_device(backend: str, device: torch.device) -> torch.device:
    return torch.device("cpu") if backend == "gloo" else device


def _is_peer_failure(exc: BaseException) -> bool:
    """Whether an exception is the communication failing (a peer gone), not this rank's own error."""
    backend_error = getattr(dist, "DistBackendError", None)
    if backend_error is not None and isinstance(exc, backend_error):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(k in text for k in ("gloo", "NCCL", "Connection", "connection",
                                                                     "Broken pipe", "timed out", "Timeout"))


def _collective(fn, what: str):
    try:
        return fn()
    except PerceptError:
        raise
    except Exception as exc:  # noqa: BLE001 - gloo/NCCL raise RuntimeError or DistBackendError with long texts
        if not _is_peer_failure(exc):
            raise  # this rank's own error (out of memory, a bug): not the peers' fault
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:160]
        raise PerceptError(f"another process of the distributed job stopped or cannot be reached during {what} "
                           f"({first}); the last checkpoint resumes the run with the same world size") from None


_CURRENT: Dist | None = None


def init(device: torch.device) -> Dist:
    """Join the job torchrun started (``WORLD_SIZE`` > 1 in the environment), once per process; a
    plain run is rank 0 of 1. gloo for the CPU, NCCL for CUDA."""
    global _CURRENT
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Dist()
    if _CURRENT is not None:
        return _CURRENT
    backend = "nccl" if device.type == "cuda" else "gloo"
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local)
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=TIMEOUT_S))
    except Exception as exc:  # noqa: BLE001 - the rendezvous raises several types
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:200]
        raise PerceptError(f"cannot join the distributed job (rank {rank} of {world}, {backend}): {first}") from None
    _CURRENT = Dist(rank, world, local, backend)
    return _CURRENT


LOCAL_OPTIONS = ("device", "workers", "out", "logdir", "data")
"""Options each machine may give its own way (paths on its own disks, its own workers): not compared; the data
is compared by its file list (:func:`files_digest`), the painting by its content."""


def files_digest(files, root) -> str:
    """A short digest of a list of files (their names below ``root``, in order), for the ranks' agreement check."""
    h = hashlib.sha1()
    for f in files:
        try:
            name = str(Path(f).relative_to(root))
        except ValueError:
            name = str(f)
        h.update(name.encode() + b"\0")
    return h.hexdigest()[:16]
