"""Style training for real on tiny inputs: files written, losses fall, exact resume, NaN guard, TensorBoard."""

import json

import pytest
import torch

from percept.checkpoint import load_checkpoint
from percept.errors import PerceptError
from percept.training.data import RandomCropDataset, list_images, split_holdout
from percept.training.style import StyleTrainConfig, train_style


def _cfg(tmp_path, data, style, **kw):
    base = dict(style=str(style), data=str(data), out=str(tmp_path), name="t", image_size=32, batch_size=2,
                iterations=4, channels=[4, 8, 8], n_residual=1, style_size=64, checkpoint_every=2,
                preview_every=2, log_every=1, holdout_every=3)
    base.update(kw)
    return StyleTrainConfig(**base)


def test_dataset_is_a_function_of_seed_and_index(small_data):
    files = list_images(small_data)
    a = RandomCropDataset(files, 32, 10, seed=1)
    b = RandomCropDataset(files, 32, 10, seed=1)
    c = RandomCropDataset(files, 32, 10, seed=2)
    assert a[3].shape == (3, 32, 32) and 0 <= a[3].min() and a[3].max() <= 1
    assert torch.equal(a[3], b[3])
    assert not torch.equal(a[3], c[3])


def test_holdout_split_is_deterministic():
    files = [f"f{i:02d}" for i in range(20)]
    train, held = split_holdout(files, 10)
    assert held == ["f09", "f19"] and len(train) == 18


def test_training_writes_model_card_and_tensorboard(tmp_path, small_data, painting_path):
    path = train_style(_cfg(tmp_path, small_data, painting_path), progress=False)
    assert path == tmp_path / "t.pt"
    ckpt = load_checkpoint(path)
    assert ckpt["kind"] == "style-transformer" and ckpt["config"]["channels"] == [4, 8, 8]
    card = json.loads((tmp_path / "t.json").read_text())
    for key in ("style", "data", "architecture", "hyperparameters", "iterations", "device", "wall_time_s",
                "final_losses_running_avg"):
        assert key in card
    assert card["iterations"] == 4 and card["hyperparameters"]["batch_size"] == 2
    assert card["data"]["held_out"] == ["kodim03.jpg", "kodim06.jpg"]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb" / "t"))
    acc.Reload()
    tags = acc.Tags()
    assert {"loss/content", "loss/style", "loss/tv", "loss/total"} <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("loss/style")] == [1, 2, 3, 4]
    assert "held_out/photo_vs_stylized" in tags["images"]


def test_loss_falls(tmp_path, small_data, painting_path):
    cfg = _cfg(tmp_path, small_data, painting_path, iterations=40, lr=5e-3, log_every=1,
               checkpoint_every=40, preview_every=40)
    train_style(cfg, progress=False)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb" / "t"))
    acc.Reload()
    total = [e.value for e in acc.Scalars("loss/total")]
    assert sum(total[-8:]) / 8 < 0.8 * sum(total[:4]) / 4


def test_resume_continues_exactly(tmp_path, small_data, painting_path):
    straight = train_style(_cfg(tmp_path / "a", small_data, painting_path, iterations=4), progress=False)
    # "killed" after the checkpoint at step 2, then resumed to step 4
    train_style(_cfg(tmp_path / "b", small_data, painting_path, iterations=2), progress=False)
    resumed = train_style(_cfg(tmp_path / "b", small_data, painting_path, iterations=4), resume=True,
                          progress=False)
    a, b = load_checkpoint(straight)["state_dict"], load_checkpoint(resumed)["state_dict"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert load_checkpoint(tmp_path / "b" / "t.train.pt")["step"] == 4


def test_resume_refuses_a_different_architecture(tmp_path, small_data, painting_path):
    train_style(_cfg(tmp_path, small_data, painting_path, iterations=2), progress=False)
    with pytest.raises(PerceptError, match="channels was"):
        train_style(_cfg(tmp_path, small_data, painting_path, iterations=4, channels=[8, 8, 8]), resume=True,
                    progress=False)


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, small_data, painting_path):
    train_style(_cfg(tmp_path, small_data, painting_path, iterations=2), progress=False)
    state = tmp_path / "t.train.pt"
    before = state.read_bytes()
    with pytest.raises(PerceptError, match=r"the loss became nan at step 3; .*last good checkpoint is .*t\.train\.pt"):
        train_style(_cfg(tmp_path, small_data, painting_path, iterations=4, content_weight=float("nan")),
                    resume=True, progress=False)
    assert state.read_bytes() == before
    assert load_checkpoint(state)["step"] == 2
