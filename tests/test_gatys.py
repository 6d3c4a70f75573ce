"""The Gatys baseline: the loss falls, snapshots are written, blending and bad arguments."""

import pytest

from percept.cli import main
from percept.errors import PerceptError
from percept.images import load_image
from percept.visualize.gatys import optimize_style


def test_lbfgs_lowers_the_loss_and_writes_snapshots(tmp_path, photo_path, painting_path):
    photo, paint = load_image(photo_path), load_image(painting_path)
    res = optimize_style(photo, paint, iterations=6, size=64, device="cpu", progress=False,
                         snapshot_every=3, snapshot_dir=tmp_path)
    first = res.history[0]["total"]
    assert res.losses["total"] < 0.7 * first
    assert res.image.size == (64, 43)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00003.png", "step_00006.png"]


def test_adam_from_noise_moves_towards_the_style(photo_path, painting_path):
    photo, paint = load_image(photo_path), load_image(painting_path)
    res = optimize_style(photo, paint, iterations=15, optimizer="adam", init="noise", size=48, lr=0.05,
                         device="cpu", progress=False)
    assert res.history[-1]["style"] < 0.8 * res.history[0]["style"]


def test_blend_needs_one_weight_per_style(photo_path, painting_path):
    img = load_image(photo_path)
    with pytest.raises(PerceptError, match="2 style images but 1 blend weights"):
        optimize_style(img, [img, img], blend=[1.0], iterations=1, size=32, progress=False)


def test_cli_optimize_style(capsys, tmp_path, photo_path, painting_path, wave_path):
    out = tmp_path / "g.png"
    code = main(["optimize-style", "--content", str(photo_path), "--style", str(painting_path),
                 "--style", str(wave_path), "--style-blend", "0.7,0.3",
                 "-o", str(out), "--iterations", "2", "--size", "48", "--preserve-color", "--quiet"])
    assert code == 0
    assert out.is_file()
    code = main(["optimize-style", "--content", str(photo_path), "--style", str(painting_path),
                 "--style-blend", "0.7,0.3", "-o", str(out), "--iterations", "2", "--size", "48"])
    err = capsys.readouterr().err
    assert code == 2 and "--style-blend needs 1 non-negative weights" in err
