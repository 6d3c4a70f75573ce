#!/usr/bin/env python
"""A COCO-sized photo folder: how fast training starts and whether data loading keeps up.

Makes ``--files`` small JPEGs (copies of scikit-image's sample photos at 256 px, in sub-folders of 1000,
one in 1000 of them corrupt) in a temporary folder, then times what ``train-style`` does before its first
step: listing the folder (``os.scandir``, no stat per file), the hold-out split and start-up checks
(``prepare_run``: above 2000 photos no header is read), and the first batch. Then the loader's
throughput at the CPU defaults (192 px crops, batch 2) with 0 and 2 workers, beside the training step's
own rate (``scripts/bench_train.py``): loading must not be what a step waits for.

    .venv/bin/python scripts/bench_large_folder.py [--files 100000]   # ~3 min, ~1.5 GB of disk

Writes its table into docs/BENCHMARKS.md (between the large_folder markers).
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from benchdocs import update_block  # noqa: E402


def make_folder(root: Path, n: int) -> int:
    from PIL import Image
    from skimage import data

    blobs = []
    for name in ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry"):
        im = Image.fromarray(getattr(data, name)()).convert("RGB")
        im.thumbnail((256, 256))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=85)
        blobs.append(buf.getvalue())
    bad = 0
    for i in range(n):
        sub = root / f"{i // 1000:04d}"
        if i % 1000 == 0:
            sub.mkdir(parents=True)
        if i % 1000 == 999:
            (sub / f"{i:06d}.jpg").write_bytes(b"\xff\xd8\xff\xe0 corrupt")
            bad += 1
        else:
            (sub / f"{i:06d}.jpg").write_bytes(blobs[i % len(blobs)])
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--batches", type=int, default=40, help="batches per throughput measurement")
    ap.add_argument("--no-docs", action="store_true")
    args = ap.parse_args()

    from percept.device import cpu_description
    from percept.images import list_images
    from percept.training.configs import StyleTrainConfig
    from percept.training.data import RandomCropDataset, make_loader
    from percept.training.loop import prepare_run

    tmp = Path(tempfile.mkdtemp(prefix="percept-large-"))
    try:
        t = time.perf_counter()
        bad = make_folder(tmp / "photos", args.files)
        made = time.perf_counter() - t
        t = time.perf_counter()
        files = list_images(tmp / "photos")
        t_list = time.perf_counter() - t
        cfg = StyleTrainConfig(style="unused.jpg", data=str(tmp / "photos"), out=str(tmp / "out"))
        t = time.perf_counter()
        train_files, held, _ = prepare_run(cfg)
        t_prepare = time.perf_counter() - t
        rows = []
        for workers in (0, 2):
            ds = RandomCropDataset(train_files, cfg.image_size, (args.batches + 1) * cfg.batch_size, seed=workers)
            t = time.perf_counter()
            it = iter(make_loader(ds, cfg.batch_size, 0, workers))
            next(it)
            first = time.perf_counter() - t
            t = time.perf_counter()
            n = sum(1 for _ in it)
            rate = n * cfg.batch_size / (time.perf_counter() - t)
            rows.append((workers, first, rate, ds.skipped))
            print(workers, first, rate, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    md = "\n".join([
        f"Machine: {cpu_description()}. {len(files):,} JPEGs (256 px, {bad} of them corrupt) in sub-folders of 1000, "
        f"made in {made:.0f} s. Command: `.venv/bin/python scripts/bench_large_folder.py --files {args.files}`.", "",
        "| what | time |", "|---|---|",
        f"| list the folder (`list_images`: os.scandir, sorted) | {t_list:.2f} s |",
        f"| `prepare_run` (list, hold-out split, output folder; no header pass above 2000 photos) | {t_prepare:.2f} s |",
        *[f"| first batch, {w} loader workers | {f:.2f} s |" for w, f, _, _ in rows], "",
        "| loader workers | photos/s (192 px crops, batch 2) | corrupt photos met and skipped |", "|---|---|---|",
        *[f"| {w} | {r:.1f} | {s}{' (counted in the workers)' if w else ''} |" for w, _, r, s in rows], "",
        "The CPU training step takes about 2.5 photos/s (`bench_train.py`, bf16): loading in the main process "
        "already runs ahead of it; on a GPU, `train-style` uses 4 workers with pinned memory and prefetching."])
    print(md)
    if not args.no_docs:
        update_block("large_folder", "Large photo folders", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
