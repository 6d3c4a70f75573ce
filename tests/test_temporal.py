"""Flicker: the warping-error metric, flow-guided stylisation (video, webcam, API), the training regulariser,
on clips made here (a camera panning / zooming over scikit-image photos, a crossing disc, noise, a cut)."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from percept.cli import main
from percept.clips import camera_clip, sprite_mask
from percept.errors import PerceptError
from percept.evaluation import warping_error
from percept.flow import FlowEstimator, consistent, warp
from percept.inference.temporal import TemporalFilter
from percept.inference.video import read_clip

SIZE = (160, 120)


@pytest.fixture(scope="module")
def engine():
    from percept.inference.engine import Engine

    return Engine("starry_night_rt")


@pytest.fixture(scope="module")
def pan():
    return camera_clip(skimage.data.astronaut(), frames=16, size=SIZE, motion="pan", seed=1)


def write(frames, path):
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()
    return path


def run(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:                   # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_flow_follows_a_known_shift_and_the_check_masks_the_border():
    photo = skimage.data.astronaut()[100:220, 100:260]
    a, b = photo[:, :-6], photo[:, 6:]          # b is a moved 6 px to the left: a(p) = b(p - 6)
    est = FlowEstimator("medium")
    fw, bw = est(a, b), est(b, a)
    inner = fw[20:-20, 20:-20]
    assert abs(float(np.median(inner[..., 0])) + 6) < 0.5 and abs(float(np.median(inner[..., 1]))) < 0.5
    ok = consistent(fw, bw)
    assert ok[20:-20, 20:-20].mean() > 0.9 and not ok[:, :3].any()     # flows out of the frame on the left
    moved, inside = warp(b, fw)
    diff = np.abs(moved.astype(float) - a.astype(float))[20:-20, 20:-20].mean()
    assert diff < 6 and inside.mean() < 1


def test_warping_error_is_zero_for_a_still_clip_and_grows_with_flicker(pan):
    still = [pan[0]] * 5
    assert warping_error(still, still).value == 0.0
    rng = np.random.default_rng(0)
    flicker = [np.clip(f.astype(int) + rng.integers(-40, 41, f.shape), 0, 255).astype(np.uint8) for f in pan]
    floor, noisy = warping_error(pan, pan), warping_error(pan, flicker)
    assert 0 < floor.value < 0.02 and noisy.value > 5 * floor.value
    assert len(noisy.per_pair) == len(pan) - 1 and 0.5 < noisy.valid <= 1
    half = [f[::2, ::2] for f in flicker]                 # a stylisation at another size is compared too
    assert warping_error(pan, half).value > 5 * floor.value


@pytest.mark.parametrize("frames,message", [
    (1, "a warping error needs at least two frames"),
])
def test_warping_error_bad_input(pan, frames, message):
    with pytest.raises(PerceptError, match=message):
        warping_error(pan[:frames], pan[:frames])
    with pytest.raises(PerceptError, match="the clips have different lengths: 3 and 2 frames"):
        warping_error(pan[:3], pan[:2])
    grown = pan[:2] + [np.zeros((60, 80, 3), np.uint8)]
    with pytest.raises(PerceptError, match="the source clip changes size at frame 2"):
        warping_error(grown, grown)


@pytest.mark.parametrize("motion,flow", [("pan", "medium"), ("zoom", "medium"), ("pan", "ultrafast")])
def test_flow_guided_stylisation_cuts_the_flicker_without_trails(engine, motion, flow):
    clip = camera_clip(skimage.data.astronaut(), frames=16, size=SIZE, motion=motion, seed=2)
    per = engine.frames(clip)
    tf = TemporalFilter(flow=flow)
    assert tf.flow.preset == flow
    out = [tf(f, y) for f, y in zip(clip, per)]
    e_per, e_tmp = warping_error(clip, per).value, warping_error(clip, out).value
    assert e_tmp < 0.6 * e_per, (e_per, e_tmp)
    assert tf.stats.resets == 0 and tf.stats.confident > 0.5
    trail, rest = [], []                                   # where the disc just was: the new frame, no ghost
    for t in range(2, len(clip)):
        behind = sprite_mask(t - 1, len(clip), SIZE) & ~sprite_mask(t, len(clip), SIZE)
        d = np.abs(out[t].astype(float) - per[t].astype(float)).mean(-1)
        if behind.any():
            trail.append(d[behind].mean())
            rest.append(d[~sprite_mask(t, len(clip), SIZE)].mean())
    assert np.mean(trail) < 0.3 * np.mean(rest)


def test_a_scene_cut_and_a_size_change_reset_the_history(engine):
    cut = camera_clip(skimage.data.astronaut(), frames=10, size=SIZE, cut_at=5, cut_photo=skimage.data.coffee())
    per = engine.frames(cut)
    tf = TemporalFilter()
    out = [tf(f, y) for f, y in zip(cut, per)]
    assert tf.stats.resets == 1 and np.array_equal(out[5], per[5]) and not np.array_equal(out[4], per[4])
    from percept.inference.stylizer import Stylizer

    styler, flt = Stylizer(engine), TemporalFilter()
    small = [f[::2, ::2].copy() for f in cut[:3]]
    mixed = list(styler.stream(cut[:3] + small + cut[3:5], batch=5, temporal=flt))  # the size changes inside a batch
    assert [m.shape for m in mixed] == [f.shape for f in cut[:3] + small + cut[3:5]]
    assert flt.stats.resets == 2


def test_alpha_zero_is_the_per_frame_output_and_bad_settings_are_refused(engine, pan):
    per = engine.frames(pan[:4])
    tf = TemporalFilter(alpha=0)
    assert all(np.array_equal(tf(f, y), y) for f, y in zip(pan[:4], per))
    with pytest.raises(PerceptError, match=r"alpha must be in \[0, 1\), got 1"):
        TemporalFilter(alpha=1)
    with pytest.raises(PerceptError, match="unknown optical flow preset 'slow'; use ultrafast, fast, medium"):
        TemporalFilter(flow="slow")


def test_the_better_flow_is_the_video_default_and_flickers_less(engine):
    from percept.argtypes import FLOW_PRESETS, LIVE_FLOW, VIDEO_FLOW
    from percept.flow import PRESETS

    assert FLOW_PRESETS == tuple(PRESETS) and (LIVE_FLOW, VIDEO_FLOW) == ("ultrafast", "medium")
    assert TemporalFilter().flow.preset == VIDEO_FLOW
    clip = camera_clip(skimage.data.coffee(), frames=16, size=SIZE, motion="zoom", seed=4)
    per = engine.frames(clip)
    err = {}
    for flow in (LIVE_FLOW, VIDEO_FLOW):
        tf = TemporalFilter(flow=flow)
        err[flow] = warping_error(clip, [tf(f, y) for f, y in zip(clip, per)]).value
    assert err[VIDEO_FLOW] < err[LIVE_FLOW], err


def test_cli_video_temporal_and_eval_video(capsys, tmp_path, pan):
    src = write(pan, tmp_path / "pan.mp4")
    outs = {}
    for flag in ([], ["--temporal"]):
        dst = tmp_path / f"out{len(flag)}.mp4"
        code, out, err = run(capsys, "video", src, "-o", dst, "--model", "starry_night_rt", "--quiet", *flag)
        assert code == 0, err
        assert ("flow-guided (alpha 0.8, medium flow)" in out) == bool(flag)
        code, out, err = run(capsys, "eval-video", src, dst)
        assert code == 0, err
        outs[bool(flag)] = float(out.split("E_warp ")[1].split()[0])
        assert "the source's own: the floor" in out
    assert outs[True] < 0.7 * outs[False]
    assert len(read_clip(tmp_path / "out1.mp4")) == len(pan)


@pytest.mark.parametrize("argv,message", [
    (["video", "{src}", "-o", "{out}", "--model", "starry_night_rt", "--temporal-alpha", "1"],
     "must be at least 0 and below 1"),
    (["video", "{src}", "-o", "{out}", "--model", "starry_night_rt", "--temporal", "--flow", "slow"],
     "argument --flow: invalid choice: 'slow' (choose from"),
    (["eval-video", "{src}", "{short}"], "has 16 frames and"),
    (["eval-video", "{one}", "{one}"], "a warping error needs at least two frames"),
    (["eval-video", "{src}", "{missing}"], "no such video file"),
])
def test_cli_temporal_bad_input(capsys, tmp_path, pan, argv, message):
    src = write(pan, tmp_path / "pan.mp4")
    short = write(pan[:5], tmp_path / "short.mp4")
    one = write(pan[:1], tmp_path / "one.mp4")
    argv = [a.format(src=src, short=short, one=one, out=tmp_path / "o.mp4", missing=tmp_path / "nope.mp4")
            for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "o.mp4").exists()


def test_headless_webcam_toggles_flow_guidance_with_t(tmp_path, pan):
    from percept.inference.webcam import run_webcam

    src = write(pan, tmp_path / "pan.mp4")
    stats = run_webcam(["starry_night_rt"], source=str(src), size=160, headless=True, output=tmp_path / "cam.mp4",
                       frames=10, temporal=True, keys=lambda i: ord("t") if i == 5 else -1)
    assert stats.shown == 10 and (tmp_path / "cam.mp4").is_file()


def test_compound_regulariser_is_zero_for_the_identity_and_trains_stability():
    from percept.training.temporal import compound_loss, random_flow
    from percept.training.temporal import warp as twarp

    gen = torch.Generator().manual_seed(0)
    flow = random_flow(2, 32, 48, gen)
    assert flow.shape == (2, 2, 32, 48) and float(flow.abs().max()) <= 6.0 + 1e-5
    x = torch.rand(2, 3, 32, 48, generator=gen)
    assert torch.allclose(twarp(x, torch.zeros_like(flow)), x, atol=1e-5)
    ident = torch.nn.Identity()
    assert float(compound_loss(ident, x, x, gen, noise=0.0)) < 0.02     # only the borders of the warp
    jumpy = torch.nn.Conv2d(3, 3, 3, padding=1)
    with torch.no_grad():
        loss_jumpy = float(compound_loss(jumpy, x, jumpy(x), torch.Generator().manual_seed(1)))
    assert loss_jumpy > 0


def test_train_style_with_the_temporal_weight_logs_it(tmp_path, small_data, painting_path):
    from percept.training.style import StyleTrainConfig, train_style

    cfg = StyleTrainConfig(style=str(painting_path), data=str(small_data), out=str(tmp_path), name="tmp",
                           image_size=32, batch_size=2, iterations=3, channels=[4, 8, 8], n_residual=1,
                           style_size=64, checkpoint_every=3, preview_every=3, log_every=1, holdout_every=3,
                           temporal_weight=2.0)
    path = train_style(cfg, progress=False)
    import json

    card = json.loads(path.with_suffix(".json").read_text())
    assert card["hyperparameters"]["temporal_weight"] == 2.0
    assert "temporal" in card["final_losses_running_avg"]


def test_the_python_api_runs_the_flow_guided_mode(tmp_path, pan):
    import percept

    src = write(pan, tmp_path / "pan.mp4")
    r = percept.stylize_video(src, tmp_path / "o.mp4", "starry_night_rt", temporal=True)
    assert r["frames"] == len(pan) and r["temporal_stats"].frames == len(pan)
    assert r["temporal_stats"].resets == 0 and r["temporal_stats"].confident > 0.5
