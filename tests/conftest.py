"""Shared fixtures, all made from the repository alone (tests/images.py): a data folder of real photos
(scikit-image's bundled samples, as JPEG) and two procedurally painted paintings, a tiny style network
trained for real, and image files in every awkward format."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from images import write_fixture_data
from PIL import Image

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """``content/``: twelve photos as JPEG (tests/images.py PHOTOS: astronaut, chelsea, coffee, ...,
    rocket and four crops), long side <= 640 px; ``styles/``: ``starry.jpg`` and ``wave.jpg``."""
    return write_fixture_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def photo_path(data_dir) -> Path:
    """motorcycle.jpg (stereo_motorcycle's left view, 640x432): a busy, colourful, asymmetric indoor scene
    in about 3:2 (64 px wide is 64x43), like the Kodak photo the checks were first tuned on."""
    return data_dir / "content" / "motorcycle.jpg"


@pytest.fixture(scope="session")
def painting_path(data_dir) -> Path:
    """The starry-night-like painting: blue/yellow swirling brush strokes."""
    return data_dir / "styles" / "starry.jpg"


@pytest.fixture(scope="session")
def wave_path(data_dir) -> Path:
    """The great-wave-like painting: blue/white crests over a beige sky."""
    return data_dir / "styles" / "wave.jpg"


@pytest.fixture(scope="session")
def small_data(tmp_path_factory, data_dir) -> Path:
    """The first six photos by name, shrunk, as a training folder (fast to decode); the every-3rd
    hold-out split keeps coffee.jpg and motorcycle.jpg."""
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
