"""Shared fixtures: real photos and paintings from ../shared/data (never copied into the repo), a tiny
style network trained for real, and image files in every awkward format."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PERCEPT_DATA", REPO.parent / "shared" / "data"))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def _require_data() -> Path:
    if not (DATA / "content").is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _require_data()


@pytest.fixture(scope="session")
def photo_path(data_dir) -> Path:
    return data_dir / "content" / "kodim05.jpg"


@pytest.fixture(scope="session")
def painting_path(data_dir) -> Path:
    return data_dir / "styles" / "starry_night.jpg"


@pytest.fixture(scope="session")
def small_data(tmp_path_factory, data_dir) -> Path:
    """Six real photos, shrunk, as a training folder (fast to decode)."""
    folder = tmp_path_factory.mktemp("small_data")
    for p in sorted((data_dir / "content").glob("*.jpg"))[:6]:
        img = Image.open(p).convert("RGB")
        img.thumbnail((96, 96))
        img.save(folder / p.name)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, small_data, painting_path) -> Path:
    """A tiny style network really trained for a few steps: a valid percept .pt file."""
    from percept.training.style import StyleTrainConfig, train_style

    out = tmp_path_factory.mktemp("tiny_model")
    cfg = StyleTrainConfig(style=str(painting_path), data=str(small_data), out=str(out), name="tiny",
                           image_size=32, batch_size=2, iterations=3, channels=[4, 8, 8], n_residual=1,
                           style_size=64, checkpoint_every=3, preview_every=3, log_every=1, holdout_every=3)
    return train_style(cfg, progress=False)


@pytest.fixture()
def awkward_images(tmp_path, photo_path) -> dict[str, Path]:
    """The same photo saved in the formats users throw at us."""
    base = Image.open(photo_path).convert("RGB")
    base.thumbnail((64, 64))
    out: dict[str, Path] = {}
    out["cmyk"] = tmp_path / "cmyk.jpg"
    base.convert("CMYK").save(out["cmyk"])
    out["grey"] = tmp_path / "grey.png"
    base.convert("L").save(out["grey"])
    out["palette"] = tmp_path / "palette.png"
    base.convert("P", palette=Image.ADAPTIVE).save(out["palette"])
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    out["rgba"] = tmp_path / "rgba.png"
    rgba.save(out["rgba"])
    arr16 = (np.asarray(base.convert("L"), dtype=np.uint16) * 257)
    out["16bit"] = tmp_path / "16bit.png"
    Image.fromarray(arr16).save(out["16bit"])
    # EXIF orientation 6: stored landscape, displayed rotated 90 degrees clockwise (portrait)
    exif = Image.Exif()
    exif[0x0112] = 6
    out["exif"] = tmp_path / "exif.jpg"
    base.save(out["exif"], exif=exif)
    return out
