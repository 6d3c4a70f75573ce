"""The four shipped style models: listed, loadable with weights_only, carded, and they stylise."""

import json

import numpy as np
import pytest
import torch

from percept import stylize
from percept.cli import main
from percept.images import load_image, resize_long_side
from percept.registry import checkpoints_dir, list_models

STYLES = ["composition_vii", "starry_night", "the_scream", "wave"]
SHIPPED = sorted(STYLES + [f"{s}_rt" for s in STYLES])  # full-size (johnson) and real-time (rt) networks


def test_every_style_ships_in_both_architectures_with_cards():
    models = list_models("style-transformer")
    assert [m.name for m in models] == SHIPPED
    for m in models:
        torch.load(m.path, map_location="cpu", weights_only=True)
        card = json.loads(m.path.with_suffix(".json").read_text())
        assert card["style"]["file"] == f"{m.name.removesuffix('_rt')}.jpg"
        assert card["architecture"].get("arch", "johnson") == ("rt" if m.name.endswith("_rt") else "johnson")
        for key in ("data", "architecture", "hyperparameters", "iterations", "device", "wall_time_s",
                    "final_losses_running_avg"):
            assert key in card, (m.name, key)


def test_models_command_lists_them(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_stylises_a_photo(name, photo_path):
    photo = resize_long_side(load_image(photo_path), 96)
    out = stylize(photo, name, device="cpu")
    assert out.size == photo.size
    a, b = np.asarray(out, dtype=float), np.asarray(photo, dtype=float)
    assert np.abs(a - b).mean() > 10  # visibly changed
    assert a.std() > 10  # and not a flat image


def test_checkpoint_folder_is_the_repos():
    assert (checkpoints_dir() / "starry_night.pt").is_file()


def test_demo_writes_results_and_contact_sheet(tmp_path):
    from PIL import Image

    from percept.demo import run_demo

    sheet = run_demo(tmp_path, size=64, photos=("coffee",), tile=64, device="cpu", progress=False)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["coffee.png", "contact_sheet.png"] + [f"coffee_{s}.png" for s in SHIPPED])
    img = Image.open(sheet)
    assert img.size == (8 + 9 * (64 + 8), 8 + 64 + 18 + 8)  # photo + four styles x two architectures
    for s in SHIPPED:
        assert Image.open(tmp_path / f"coffee_{s}.png").size == Image.open(tmp_path / "coffee.png").size


def test_style_metric_ranks_a_shipped_model_above_the_photo(photo_path, painting_path):
    """The shipped starry_night model's output is closer to the painting's style than the photo is."""
    from percept.evaluation import StyleMetric

    photo = resize_long_side(load_image(photo_path), 128)
    metric = StyleMetric(load_image(painting_path), size=128)
    plain = metric(photo, photo)
    styled = metric(stylize(photo, "starry_night", device="cpu"), photo)
    assert plain.content == 0
    assert styled.style < 0.7 * plain.style
