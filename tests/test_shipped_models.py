"""The four shipped style models: listed, loadable with weights_only, carded, and they stylise."""

import json

import numpy as np
import pytest
import torch

from percept import stylize
from percept.cli import main
from percept.imageio import load_image, resize_long_side
from percept.inference.registry import checkpoints_dir, list_models

SHIPPED = ["composition_vii", "starry_night", "the_scream", "wave"]


def test_four_models_are_shipped_with_cards():
    models = list_models("style-transformer")
    assert [m.name for m in models] == SHIPPED
    for m in models:
        torch.load(m.path, map_location="cpu", weights_only=True)
        card = json.loads(m.path.with_suffix(".json").read_text())
        assert card["style"]["file"] == f"{m.name}.jpg"
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
