"""Behaviour unchanged by the one-stylizer redesign: `percept stylize` gives the pixels the command line gave before
it (tests/data/stylize_pixels/, written by the old tree: tests/stylize_cases.py), on every route the stylizer
chooses between. Another CPU may round the last bit of a float differently (AVX2, AVX-512 and AMX kernels), so a
pixel may differ by a level or two; a changed route (another method, size, colour match or backend) moves
thousands of pixels by far more."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from percept.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from stylize_cases import CASES, PHOTO, argv  # noqa: E402

REFS = Path(__file__).parent / "data" / "stylize_pixels"


@pytest.mark.parametrize("case", sorted(CASES))
def test_stylize_gives_the_pixels_it_gave_before(case, data_dir, tmp_path):
    out = tmp_path / f"{case}.png"
    assert main(argv(case, data_dir / "content" / PHOTO, data_dir / "styles" / "starry.jpg",
                     data_dir / "styles" / "wave.jpg", out)) == 0
    got = np.asarray(Image.open(out), dtype=int)
    ref = np.asarray(Image.open(REFS / f"{case}.png"), dtype=int)
    assert got.shape == ref.shape
    diff = np.abs(got - ref)
    assert diff.max() <= 3 and diff.mean() < 0.05, (case, int(diff.max()), float(diff.mean()))


def test_the_comparison_sees_another_route(data_dir, tmp_path):
    """The check above cannot pass by accident: the same photo through a neighbouring route (AdaIN without its
    colour match) is far from the AdaIN reference."""
    out = tmp_path / "other.png"
    args = argv("adain", data_dir / "content" / PHOTO, data_dir / "styles" / "starry.jpg",
                data_dir / "styles" / "wave.jpg", out)
    assert main(args + ["--color-match", "0"]) == 0
    diff = np.abs(np.asarray(Image.open(out), dtype=int) - np.asarray(Image.open(REFS / "adain.png"), dtype=int))
    assert diff.max() > 20 and diff.mean() > 1
