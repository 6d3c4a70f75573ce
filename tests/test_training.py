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
    from percept.models.losses import PerceptualLoss
    from percept.models.transformer import TransformerNet
    from percept.models.transformer import load_style_network as load_style_model

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
    from percept.models.transformer import build_transformer
    from percept.models.transformer import load_style_network as load_style_model
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


# ------------------------------------------------------------------ pinned losses of tiny seeded runs
# Recorded from the code before the training loop was unified (one ``fit`` for every task): the same seed and
# settings must keep giving the same losses, step by step (TensorBoard's ``loss/*``) and in the model card's
# running averages. fp32 everywhere (bf16 rounding depends on the CPU); the tolerance allows for other CPUs'
# fp32 kernels, far below what another batch, crop or random draw would change.

def _scalars(folder, tags) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags}


def _pinned_run(kind: str, tmp_path, small_data, data_dir, painting_path, teacher) -> dict:
    base = dict(data=str(small_data), out=str(tmp_path), name="p", holdout_every=3, device="cpu", seed=5)
    loop = dict(checkpoint_every=100, preview_every=100, log_every=1)
    if kind.startswith("style"):
        cfg = StyleTrainConfig(style=str(painting_path), image_size=32, batch_size=2, iterations=4, arch="rt",
                               channels=[4, 8, 8], n_residual=1, style_size=64, amp=False,
                               temporal_weight=2.0 if kind == "style+temporal" else 0.0, **base, **loop)
        path = train_style(cfg, progress=False)
        tags = ["loss/total", "loss/content", "loss/style"] + (["loss/temporal"] if "temporal" in kind else [])
    elif kind.startswith("decoder"):
        from percept.training.configs import DecoderTrainConfig
        from percept.training.decoder import train_decoder

        adain = kind == "decoder-adain"
        cfg = DecoderTrainConfig(layer="relu2_1", image_size=32, batch_size=2, iterations=4, lr=2e-3, lr_final=1e-4,
                                 width=8, n_blocks=1, loss="adain" if adain else "pixel+feature",
                                 styles=[str(data_dir / "styles")] if adain else None,
                                 gram_weight=0.5 if adain else 0.0, **base, **loop)
        path = train_decoder(cfg, progress=False)
        tags = ["loss/total", "loss/content", "loss/style", "loss/gram"] if adain else \
            ["loss/total", "loss/pixel", "loss/feature"]
    elif kind == "linear":
        from percept.checkpoint import save_model
        from percept.models.decoder import FeatureDecoder
        from percept.training.configs import LinearTrainConfig
        from percept.training.linear import train_linear

        torch.manual_seed(0)
        dec = FeatureDecoder("relu3_1", 16, 0, min_width=8)
        save_model(dec, {"name": "dec", "kind": "feature-decoder", "layer": "relu3_1"}, tmp_path, "dec",
                   kind="feature-decoder")
        cfg = LinearTrainConfig(styles=[str(data_dir / "styles")], decoder=str(tmp_path / "dec.pt"), rank=4,
                                image_size=64, batch_size=2, iterations=3, amp=False, **{**base, "name": "lin"}, **loop)
        path = train_linear(cfg, progress=False)
        tags = ["loss/total", "loss/content", "loss/style"]
    else:
        from percept.training.distill import DistillConfig, distill_style

        temporal = kind == "distill+temporal"
        cfg = DistillConfig(teacher=str(teacher), arch="rt", channels=[4, 4, 8], n_residual=1, image_size=32, pairs=8,
                            batch_size=4, iterations=20, temporal_weight=1.0 if temporal else 0.0, **base)
        path = distill_style(cfg, progress=False)
        tags = ["loss/temporal"] if temporal else ["loss/l1_to_teacher"]
    running = json.loads(path.with_suffix(".json").read_text())["final_losses_running_avg"]
    return {"scalars": _scalars(tmp_path / "tb" / path.stem, tags), "running": running}


PINNED = {  # kind: the steps logged, the losses at those steps, the card's running averages
    "style": ([1, 2, 3, 4], {"loss/total": [9.2886724, 9.0599594, 8.9463797, 8.6130514],
                             "loss/content": [0.7589446, 0.6783785, 0.8631086, 0.6679543],
                             "loss/style": [0.8491355, 0.8334274, 0.8031913, 0.7902271]},
              {"content": 0.75571, "style": 0.8433, "tv": 0.00396, "total": 9.22831}),
    "style+temporal": ([1, 2, 3, 4], {"loss/total": [9.4571333, 9.2581921, 9.1828909, 8.8160772],
                                      "loss/content": [0.7589446, 0.678351, 0.8689671, 0.6664995],
                                      "loss/style": [0.8491355, 0.833913, 0.8025668, 0.7913791],
                                      "loss/temporal": [0.0842304, 0.0967778, 0.1183453, 0.0964336]},
                       {"content": 0.75591, "style": 0.84335, "tv": 0.00396, "total": 9.40308, "temporal": 0.08703}),
    "decoder": ([1, 2, 3, 4], {"loss/total": [0.1533091, 0.0675063, 0.1662532, 0.0542482],
                               "loss/pixel": [0.1442042, 0.0585393, 0.1574105, 0.045687],
                               "loss/feature": [0.9104931, 0.896698, 0.8842657, 0.8561183]},
                {"pixel": 0.13604, "feature": 0.90591, "total": 0.1451, "psnr": 8.81842}),
    "decoder-adain": ([1, 2, 3, 4], {"loss/total": [2.1761656, 1.9805486, 1.78751, 1.9464188],
                                     "loss/content": [0.8953981, 0.8407792, 0.6608254, 0.7972643],
                                     "loss/style": [0.8037615, 0.7123322, 0.5628596, 0.6461414],
                                     "loss/gram": [0.9540119, 0.8548746, 1.12765, 1.0060264]},
                      {"content": 0.87688, "style": 0.78031, "gram": 0.96039, "total": 2.13739}),
    "linear": ([1, 2, 3], {"loss/total": [366.6152954, 217.1319885, 229.3346252],
                           "loss/content": [6.2347264, 6.468502, 8.4967289],
                           "loss/style": [36.0380554, 21.066349, 22.0837898]},
               {"content": 6.35893, "style": 34.62919, "total": 352.6508}),
    "distill": ([10, 20], {"loss/l1_to_teacher": [0.0941497, 0.0877559]}, {"l1_to_teacher": 0.10506}),
    "distill+temporal": ([10, 20], {"loss/temporal": [0.0381977, 0.026096]}, {}),
}


@pytest.mark.parametrize("kind", list(PINNED))
def test_a_tiny_seeded_run_gives_the_pinned_losses(kind, tmp_path, small_data, data_dir, painting_path, tiny_model):
    got = _pinned_run(kind, tmp_path, small_data, data_dir, painting_path, tiny_model)
    steps, scalars, running = PINNED[kind]
    for tag, values in scalars.items():
        assert [s for s, _ in got["scalars"][tag]] == steps, tag
        assert [v for _, v in got["scalars"][tag]] == pytest.approx(values, rel=1e-4, abs=1e-6), tag
    for key, value in running.items():
        assert got["running"][key] == pytest.approx(value, rel=1e-4, abs=2e-5), key
