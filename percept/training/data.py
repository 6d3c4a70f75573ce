"""Folder-of-images training data with random resized crops and flips, as Johnson et al. 2016 trained
their style networks on random crops of COCO photos (and the decoders, the linear transform and distillation
here take theirs the same way).

Sample ``n`` of a run is a pure function of ``(seed, n)``: the image, the crop and the flip are
drawn from a generator seeded by both. Batches therefore do not depend on worker scheduling, and
resuming at step ``k`` sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from percept.errors import PerceptError, warn
from percept.images import IMAGE_EXTENSIONS, list_images, load_image, resize_long_side, to_float

__all__ = ["IMAGE_EXTENSIONS", "PairDataset", "RandomCropDataset", "check_permute_colors", "list_images", "make_loader",
           "first_readable", "readable_images", "sample_indices", "split_holdout", "style_files"]

def readable_images(files: Sequence[Path], what: str = "training", decode: bool = False,
                    required: bool = True) -> list[Path]:
    """``files`` without the ones that cannot be images: one warning line says how many were skipped, of how
    many, and why the first was; none readable is one error line (``required``) or that one warning.

    Cheap: only the header is read (a truncated file passes and is caught when it is drawn, see
    :class:`RandomCropDataset`); ``decode=True`` decodes every file (for the few held-out ones)."""
    good, reasons = [], []
    for p in files:
        try:
            if decode:
                load_image(p)
            else:
                with Image.open(p) as im:
                    im.size  # noqa: B018 - the header is parsed on open
        except Exception as exc:  # noqa: BLE001 - any failure to read means: not a usable image
            reasons.append(str(exc) if isinstance(exc, PerceptError)
                           else f"{p}: not a readable image ({exc.__class__.__name__})")
        else:
            good.append(p)
    if reasons:
        more = f" and {len(reasons) - 1} more" if len(reasons) > 1 else ""
        if required and not good:
            raise PerceptError(f"none of the {len(files)} {what} images can be read ({reasons[0]}{more})")
        warn(f"skipped {len(reasons)} unreadable {what} image(s) of {len(files)} ({reasons[0]}{more})")
    return good


def style_files(folder: str | Path) -> list[Path]:
    """The readable images of a ``--styles`` folder, or an error when it has none."""
    files = readable_images(list_images(folder), "style")
    if not files:
        raise PerceptError(f"{folder}: no readable style images")
    return files


def first_readable(files: Sequence[Path], n: int) -> list[Image.Image]:
    """The first ``n`` of ``files`` that decode (for previews; unreadable ones were warned about already)."""
    out: list[Image.Image] = []
    for p in files:
        if len(out) == n:
            break
        try:
            out.append(load_image(p))
        except PerceptError:
            continue
    return out


def split_holdout(files: Sequence[Path], every: int = 10) -> tuple[list[Path], list[Path]]:
    """Deterministic train / held-out split: every ``every``-th file (the 10th, 20th, ...) is held out.

    The shipped models were trained on the first list; ``scripts/eval_style.py`` evaluates on the
    second. ``every <= 0`` holds nothing out.
    """
    files = list(files)
    if every <= 0 or len(files) < 2:
        return files, []
    held = [f for i, f in enumerate(files) if i % every == every - 1]
    train = [f for i, f in enumerate(files) if i % every != every - 1]
    return train, held


CACHE_LIMIT = 3000
"""Up to this many photos, decoded (and shrunk) photos stay in memory; a COCO-sized folder is decoded per
draw instead (its photos would need tens of GB)."""


class RandomCropDataset(torch.utils.data.Dataset):
    """Item ``n`` is the ``n``-th training sample of a run: a random image, rescaled so its shorter
    side is uniform in ``[size, scale_max * size]``, randomly cropped to ``size`` x ``size`` and
    flipped half of the time. ``len`` is ``num_samples`` (steps x batch size)."""

    def __init__(self, files: Sequence[Path], size: int, num_samples: int, seed: int = 0,
                 scale_max: float = 2.0, cache: bool | None = None) -> None:
        if not files:
            raise PerceptError("no training images")
        self.files, self.size, self.num_samples = list(files), int(size), int(num_samples)
        self.seed, self.scale_max = int(seed), float(scale_max)
        self._cache: dict[int, Image.Image] = {}
        self.cache = len(self.files) <= CACHE_LIMIT if cache is None else cache
        """Keep decoded photos in memory (default: for folders of up to :data:`CACHE_LIMIT` photos)."""
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return self.num_samples

    @property
    def skipped(self) -> int:
        """Photos found unreadable so far (in this process: with loader workers, each counts its own)."""
        return len(self._bad)

    def _image(self, i: int) -> Image.Image:
        """Image ``i``; one that cannot be decoded (a truncated file, say) is skipped with a warning and
        the next readable one (in file order) takes its place, the same one on every run and resume."""
        found: list[PerceptError] = []  # warned about once a readable one is found: none is one error line
        for _ in range(len(self.files)):
            if i not in self._bad:
                try:
                    img = self._load(i)
                except PerceptError as exc:
                    self._bad.add(i)
                    found.append(exc)
                else:
                    for exc in found:
                        warn(f"{exc}; skipped ({len(self._bad)} unreadable of {len(self.files)} training images)")
                    return img
            i = (i + 1) % len(self.files)
        first = f" ({found[0]}{f' and {len(found) - 1} more' if len(found) > 1 else ''})" if found else ""
        raise PerceptError(f"none of the {len(self.files)} training images can be read{first}")

    def _load(self, i: int) -> Image.Image:
        if i in self._cache:
            return self._cache[i]
        img = load_image(self.files[i])
        # keep decoded images small: nothing larger than the largest scale we sample is needed
        longest = int(self.size * self.scale_max * max(img.size) / min(img.size)) + 1
        img = resize_long_side(img, longest, upscale=False)
        if self.cache:
            self._cache[i] = img
        return img

    def __getitem__(self, n: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, int(n)])
        img = self._image(int(rng.integers(len(self.files))))
        short = self.size * rng.uniform(1.0, self.scale_max)
        s = short / min(img.size)
        w, h = max(self.size, round(img.width * s)), max(self.size, round(img.height * s))
        img = img.resize((w, h), Image.BILINEAR)
        x0 = int(rng.integers(0, w - self.size + 1))
        y0 = int(rng.integers(0, h - self.size + 1))
        arr = to_float(np.asarray(img)[y0:y0 + self.size, x0:x0 + self.size])
        if rng.random() < 0.5:
            arr = arr[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def sample_indices(start_step: int, steps: int, batch_size: int, rank: int = 0, world: int = 1) -> range | list[int]:
    """The sample numbers rank ``rank`` of ``world`` draws for steps ``start_step`` .. ``steps - 1`` of a
    global batch ``batch_size``: its slice of each step's samples, in order (all of them when ``world`` is 1;
    see :mod:`percept.training.distributed`)."""
    if world == 1:
        return range(start_step * batch_size, steps * batch_size)
    per = batch_size // world
    return [s * batch_size + rank * per + j for s in range(start_step, steps) for j in range(per)]


def make_loader(dataset: RandomCropDataset, batch_size: int, start_step: int, workers: int, rank: int = 0,
                world: int = 1):
    """A loader over the samples of steps ``start_step`` onwards, in order: batches of ``batch_size``
    (the global batch); in a distributed job, rank ``rank`` of ``world`` gets its slice of each
    (:func:`sample_indices`), ``batch_size / world`` samples."""
    steps = len(dataset) // batch_size
    indices = sample_indices(start_step, steps, batch_size, rank, world)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size // world, sampler=list(indices), num_workers=workers,
        persistent_workers=False, drop_last=True, pin_memory=torch.cuda.is_available(),
        prefetch_factor=4 if workers else None)


def check_permute_colors(p: float) -> None:
    """``--permute-colors``: a probability."""
    if not 0.0 <= p <= 1.0:
        raise PerceptError(f"--permute-colors must be from 0 to 1, got {p}")


class PairDataset(torch.utils.data.Dataset):
    """Sample ``n``: (photo crop, painting crop), each (3, size, size) in [0, 1], a pure function of (seed, n)."""

    def __init__(self, photos: RandomCropDataset, styles: list[RandomCropDataset], permute: float = 0.5) -> None:
        check_permute_colors(permute)
        self.photos, self.styles, self.permute = photos, styles, float(permute)
        self.seed = photos.seed

    def __len__(self) -> int:
        return len(self.photos)

    @property
    def skipped(self) -> int:
        return self.photos.skipped + sum(s.skipped for s in self.styles)

    def __getitem__(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(n), 7])
        style = self.styles[int(rng.integers(len(self.styles)))][n]
        if rng.random() < self.permute:
            style = style[torch.from_numpy(rng.permutation(3))]
        return self.photos[n], style
