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
    assert card["data"]["held_out"] == ["coffee.jpg", "motorcycle.jpg"]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb" / "t"))
    acc.Reload()
    tags = acc.Tags()
    assert {"loss/content", "loss/style", "loss/tv", "loss/total"} <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("loss/style")] == [1, 2, 3, 4]
    assert "held_out/photo_vs_stylized" in tags["images"]


def test_loss_falls(tmp_path, small_data, painting_path):
    """The trained network's loss on a fixed batch of photos is well below the untrained one's."""
    from percept.images import load_image, resize_long_side, to_tensor
    from percept.inference.stylize import load_style_model
    from percept.models.losses import PerceptualLoss
    from percept.models.transformer import TransformerNet

    cfg = _cfg(tmp_path, small_data, painting_path, iterations=60, lr=5e-3, channels=[8, 16, 16],
               checkpoint_every=60, preview_every=60)
    path = train_style(cfg, progress=False)
    loss = PerceptualLoss(cfg.content_weight, cfg.style_weight, cfg.tv_weight)
    loss.set_style(to_tensor(resize_long_side(load_image(painting_path), 64)))
    batch = RandomCropDataset(list_images(small_data), 32, 8, seed=99)
    x = torch.stack([batch[i] for i in range(8)])
    trained, _ = load_style_model(path)
    torch.manual_seed(cfg.seed)  # the same initial weights train_style started from
    untrained = TransformerNet([8, 16, 16], 1, cfg.output)
    with torch.no_grad():
        before = loss(untrained(x), x)["total"]
        after = loss(trained(x), x)["total"]
    assert after < 0.8 * before


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


def test_style_weight_controller_steers_towards_the_content_target():
    from percept.training.style import StyleWeightController

    low = StyleWeightController(0.7, 2.0, warmup=5, every=5)  # content under the target: more style
    weights = [low.update(0.35) for _ in range(60)]
    assert weights[4] == 2.0  # nothing moves during the warm-up
    assert all(b >= a for a, b in zip(weights, weights[1:])) and weights[-1] > 2.0 * 1.5
    assert max(b / a for a, b in zip(weights, weights[1:])) <= 1.1 + 1e-9  # small, slow steps
    high = StyleWeightController(0.7, 2.0, warmup=5, every=5)  # over it: less style, never under the floor
    assert [high.update(5.0) for _ in range(500)][-1] == 0.5
    floored = StyleWeightController(0.7, 2.0, bounds=(2.0, 50.0), warmup=5, every=5)  # the teacher route's floor
    assert [floored.update(5.0) for _ in range(100)][-1] == 2.0
    still = StyleWeightController(0.7, 2.0, warmup=5, every=5)  # at the target: stays
    assert abs(still.update(0.7) - 2.0) < 1e-9 and abs([still.update(0.7) for _ in range(50)][-1] - 2.0) < 1e-9
    summary = low.summary()
    assert summary["start"] == 2.0 and summary["final"] == round(weights[-1], 4) and summary["content_target"] == 0.7
    assert summary["trace"][0] == (0, 2.0) and summary["trace"][-1][0] == 50
    with pytest.raises(PerceptError, match="above 0"):
        StyleWeightController(0.0, 1.0)


def test_a_content_target_moves_the_weight_in_training_and_refuses_resume(tmp_path, small_data, painting_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = _cfg(tmp_path, small_data, painting_path, iterations=120, style_weight=1.0, content_target=50.0,
               checkpoint_every=120, preview_every=120, log_every=10)
    train_style(cfg, progress=False)  # an unreachable content loss: the weight only rises
    card = json.loads((tmp_path / "t.json").read_text())
    adapted = card["style_weight_adapted"]
    assert adapted["start"] == 1.0 and adapted["final"] > 1.0 and adapted["content_target"] == 50.0
    acc = EventAccumulator(str(tmp_path / "tb" / "t"))
    acc.Reload()
    logged = [e.value for e in acc.Scalars("loss/style_weight")]
    assert logged[0] == 1.0 and logged[-1] == pytest.approx(adapted["final"], rel=1e-4)  # after the warm-up
    with pytest.raises(PerceptError, match=r"^--resume: a run that adapts its style weight"):
        train_style(_cfg(tmp_path, small_data, painting_path, iterations=80, content_target=0.7), resume=True,
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


def test_distilled_student_learns_its_teacher(tiny_model, small_data, tmp_path):
    """The student's L1 distance to the teacher on held-out photos falls well below an untrained one's."""
    import torch.nn.functional as F

    from percept.images import load_image, resize_long_side, to_tensor
    from percept.inference.stylize import load_style_model
    from percept.models.transformer import build_transformer
    from percept.training.distill import DistillConfig, distill_style

    cfg = DistillConfig(teacher=str(tiny_model), data=str(small_data), out=str(tmp_path), name="student",
                        channels=[8, 8, 16], n_residual=1, image_size=32, pairs=16, batch_size=4,
                        iterations=80, lr=5e-3, holdout_every=3, device="cpu")
    path = distill_style(cfg, progress=False)
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["distilled_from"]["model"] == "tiny" and card["architecture"]["arch"] == "rt"
    teacher, _ = load_style_model(tiny_model)
    torch.manual_seed(0)
    untrained = build_transformer({"arch": "rt", "channels": [8, 8, 16], "n_residual": 1}).eval()
    student, _ = load_style_model(path)
    photos = [to_tensor(resize_long_side(load_image(p), 64)) for p in sorted(small_data.iterdir())[2::3]]
    with torch.no_grad():
        before = sum(float(F.l1_loss(untrained(x), teacher(x))) for x in photos)
        after = sum(float(F.l1_loss(student(x), teacher(x))) for x in photos)
    # measured 0.67 (0.58 on the old Kodak photos, where the bound was 0.6; twice the steps give 0.70); an
    # untrained student of another seed scores 0.82-1.09 of this untrained one's distance
    assert after < 0.75 * before
    assert list((tmp_path / "tb" / "student").iterdir())  # TensorBoard events written


def test_distillation_stops_at_its_time_limit(tiny_model, small_data, tmp_path):
    """`distill --time-limit`: the run stops when the time is up (a budget the teacher's pictures used up still
    trains the minimum number of steps), and the card says so."""
    from percept.training import distill
    from percept.training.distill import DistillConfig, distill_style

    cfg = DistillConfig(teacher=str(tiny_model), data=str(small_data), out=str(tmp_path), name="quick",
                        channels=[4, 4, 8], n_residual=1, image_size=32, pairs=4, batch_size=2,
                        iterations=100000, time_limit=1e-4, holdout_every=3, device="cpu")
    card = json.loads(distill_style(cfg, progress=False).with_suffix(".json").read_text())
    assert card["iterations"] == distill.MIN_STEPS and card["stopped_by_time_limit"] is True
