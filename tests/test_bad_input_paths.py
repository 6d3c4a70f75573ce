"""Rows of the trust probe (issue 30) about outputs, inputs and late checks: each bad input gets one line on
stderr, exit 2, before any work, and nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from percept.cli import main


def one_line_error(capsys, argv: list[str], code: int = 2) -> str:
    got = main(argv)
    err = capsys.readouterr().err
    assert got == code, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def small_photo(path: Path, size=(40, 30)) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), np.uint8)).save(path)
    return path


# ------------------------------------------------------------------------- row 3: an output never equals an input

def test_an_output_that_is_the_input_is_refused(capsys, tmp_path, monkeypatch):
    photo = small_photo(tmp_path / "photo.png")
    before = photo.read_bytes()
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, ["stylize", "photo.png", "--model", "wave_rt", "-o", "."])
    assert "is the input photo.png" in err and "never overwrites an input" in err
    err = one_line_error(capsys, ["stylize", "photo.png", "--model", "wave_rt", "-o", str(photo)])
    assert "never overwrites an input" in err
    err = one_line_error(capsys, ["stylize", "photo.png", "--model", "wave_rt", "-o", ""])
    assert "-o/--output is empty" in err
    assert photo.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]


def test_a_video_output_that_is_the_input_is_refused(capsys, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not really a clip, never read")
    err = one_line_error(capsys, ["video", str(clip), "--model", "wave_rt", "-o", str(clip)])
    assert "is the input" in err and "never overwrites an input" in err
    assert clip.read_bytes() == b"not really a clip, never read"
    err = one_line_error(capsys, ["video", str(clip), "--model", "wave_rt", "-o", ""])
    assert "-o/--output is empty" in err
    err = one_line_error(capsys, ["webcam", "--source", str(clip), "--model", "wave_rt", "--headless", "-o", str(clip)])
    assert "is the input" in err and clip.read_bytes() == b"not really a clip, never read"


# ------------------------------------------------------------------------- row 5: inputs with the same base name

@pytest.mark.parametrize("names", [("a/photo.png", "b/photo.png"), ("photo.png", "photo.jpg")])
def test_inputs_that_would_write_one_output_are_refused(capsys, tmp_path, names):
    inputs = []
    for n in names:
        (tmp_path / n).parent.mkdir(parents=True, exist_ok=True)
        inputs.append(str(small_photo(tmp_path / n)))
    out = tmp_path / "out"
    err = one_line_error(capsys, ["stylize", *inputs, "--model", "wave_rt", "-o", str(out)])
    assert f"{inputs[0]} and {inputs[1]} would both be written to {out / 'photo.png'}" in err
    assert not out.exists()


# ------------------------------------------------------------------------- row 21: --camera and --source

def test_webcam_camera_and_source_exclude_each_other(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["webcam", "--source", str(tmp_path / "clip.mp4"), "--camera", "0", "--headless"])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "argument --camera: not allowed with argument --source" in err.strip().splitlines()[-1]


# ------------------------------------------------------------------------- row 20: late validation

def test_compare_refuses_an_unknown_method_before_any_work(capsys, tmp_path, photo_path, painting_path, monkeypatch):
    import percept.compare as compare

    def no_work(*a, **k):
        raise AssertionError("a stylizer was opened before the methods were checked")

    monkeypatch.setattr(compare, "open_stylizer", no_work)
    out = tmp_path / "page"
    err = one_line_error(capsys, ["compare", str(photo_path), "--style", str(painting_path), "-o", str(out),
                                  "--methods", "adain,bogus", "--gatys-steps", ""])
    assert err.strip().endswith("--methods: unknown method 'bogus' (use wct, adain, linear)")
    assert not out.exists()


@pytest.mark.parametrize("folder", ["empty", "corrupt"])
def test_int8_calibration_folder_is_read_before_the_export(capsys, tmp_path, folder, monkeypatch):
    import percept.inference.export as export

    def no_work(*a, **k):
        raise AssertionError("the model was loaded before the calibration folder was read")

    monkeypatch.setattr(export, "_load_torch_model", no_work)
    calib = tmp_path / "calib"
    calib.mkdir()
    if folder == "corrupt":
        (calib / "a.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    out = tmp_path / "out" / "m.onnx"
    err = one_line_error(capsys, ["export", "wave_rt", "-o", str(out), "--int8", "--calibration", str(calib)])
    assert str(calib) in err
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


# ------------------------------------------------------------------------- rows 9 and 14: what --resume resumes

def test_resume_refuses_another_commands_state_and_another_painting(capsys, tmp_path, small_data, painting_path,
                                                                     wave_path):
    import torch

    from percept.checkpoint import load_checkpoint
    from percept.training.style import StyleTrainConfig, train_style

    out = tmp_path / "out"
    train_style(StyleTrainConfig(style=str(painting_path), data=str(small_data), out=str(out), name="t",
                                 image_size=32, batch_size=2, iterations=2, channels=[4, 8, 8], n_residual=1,
                                 style_size=64, checkpoint_every=2, preview_every=2, log_every=1, holdout_every=3),
                progress=False)
    state_path = out / "t.train.pt"
    state = load_checkpoint(state_path)
    assert state["inputs"]["painting_sha1"][1] == str(painting_path)
    before = state_path.read_bytes()
    argv = ["train-style", "--data", str(small_data), "--out", str(out), "--name", "t", "--image-size", "32",
            "--batch-size", "2", "--iterations", "4", "--channels", "4,8,8", "--residual-blocks", "1", "--style-size",
            "64", "--holdout-every", "3", "--resume", "--quiet"]
    err = one_line_error(capsys, argv[:1] + ["--style", str(wave_path)] + argv[1:])
    assert err.strip().endswith(f"--resume: {state_path} was trained on {painting_path}, this run is given "
                                f"{wave_path} (another painting); resume with the same one, or start a new run")
    torch.save({**state, "kind": "feature-decoder-training", "config": {**state["config"], "batch_size": 8}},
               state_path)
    err = one_line_error(capsys, argv[:1] + ["--style", str(painting_path)] + argv[1:])
    assert err.strip().endswith(f"--resume: {state_path} is a train-decoder state; resume it with percept "
                                "train-decoder")
    state_path.write_bytes(before)
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".pt") == ["t.pt", "t.train.pt"]


# ------------------------------------------------------------------------- row 17: failed runs leave no empty folder

@pytest.mark.parametrize("command", [["train-style", "--style", "{painting}"], ["train-decoder", "--layer", "relu4_1"],
                                     ["distill", "--teacher", "starry_night_rt"],
                                     ["train-style", "--style", "{painting}", "--teacher", "adain"]])
def test_a_failed_training_run_removes_the_folders_it_made(capsys, tmp_path, small_data, painting_path, command):
    argv = [a.replace("{painting}", str(painting_path)) for a in command] + [
        "--data", str(small_data), "--seed", "-1", "--quiet"]
    err = one_line_error(capsys, argv + ["--out", str(tmp_path / "new" / "out")])
    assert "seed must be 0 or more" in err
    assert not (tmp_path / "new").exists()
    (tmp_path / "there").mkdir()
    one_line_error(capsys, argv + ["--out", str(tmp_path / "there")])
    assert (tmp_path / "there").is_dir() and list((tmp_path / "there").iterdir()) == []


# ------------------------------------------------------------------------- row 18: one line for one error

@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_folder_of_corrupt_photos_is_one_line(capsys, tmp_path, small_data, painting_path, damage):
    data = tmp_path / "data"
    data.mkdir()
    for p in sorted(small_data.glob("*.jpg"))[:4]:  # three training photos and one held out (every 3rd)
        raw = p.read_bytes()
        (data / p.name).write_bytes(b"not an image" * 30 if damage == "garbage" else raw[: len(raw) * 6 // 10])
    out = tmp_path / "out"
    err = one_line_error(capsys, ["train-style", "--style", str(painting_path), "--data", str(data), "--out", str(out),
                                  "--iterations", "2", "--image-size", "32", "--batch-size", "2", "--holdout-every", "3"])
    assert "none of the 3 training images can be read" in err and "train " not in err
    assert not out.exists()


def test_an_error_during_training_erases_the_progress_bar(capsys, tmp_path, small_data, painting_path, monkeypatch):
    from percept.errors import PerceptError
    from percept.training.style import StyleTask

    def fail(self, batch, step, seconds):
        raise PerceptError("the step failed")

    monkeypatch.setattr(StyleTask, "step", fail)
    out = tmp_path / "out"
    err = one_line_error(capsys, ["train-style", "--style", str(painting_path), "--data", str(small_data),
                                  "--out", str(out), "--iterations", "2", "--image-size", "32", "--batch-size", "2",
                                  "--holdout-every", "3"])
    assert err.endswith("percept: error: the step failed\n")
    assert not out.exists()


# ------------------------------------------------------------------------- row 16: odd frame sizes are kept

def odd_clip(path: Path, size=(17, 13), frames: int = 6) -> Path:
    """A clip with odd sides, written with PyAV (OpenCV's writer cannot make one: it crops to even)."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            f = np.zeros((size[1], size[0], 3), np.uint8)
            f[:, : 2 + 2 * i] = (250, 200, 40)
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def frame_sizes(path: Path) -> set[tuple[int, int]]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    sizes = set()
    while True:
        ok, f = cap.read()
        if not ok:
            break
        sizes.add((f.shape[1], f.shape[0]))
    cap.release()
    return sizes


@pytest.mark.parametrize("ext", [".mp4", ".avi"])
def test_video_and_webcam_keep_an_odd_frame_size(capsys, tmp_path, ext):
    clip = odd_clip(tmp_path / "clip.mp4")
    assert frame_sizes(clip) == {(17, 13)}
    out = tmp_path / f"out{ext}"
    assert main(["video", str(clip), "--model", "wave_rt", "-o", str(out), "--quiet"]) == 0
    assert "17x13" in capsys.readouterr().out
    assert frame_sizes(out) == {(17, 13)}
    cam = tmp_path / f"cam{ext}"
    assert main(["webcam", "--source", str(clip), "--model", "wave_rt", "--headless", "-o", str(cam),
                 "--frames", "4"]) == 0
    assert frame_sizes(cam) == {(17, 13)}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["clip.mp4", out.name, cam.name])
