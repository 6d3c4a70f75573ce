"""Rows of the fault probe (issue 11) that are fixed: each bad input gets one line on stderr, the exit
code it should, and nothing left in the output folder (hidden temporary files included)."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from percept.cli import main
from percept.errors import PerceptError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints"


def one_line_error(capsys, argv: list[str], code: int = 2) -> str:
    got = main(argv)
    err = capsys.readouterr().err
    assert got == code, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def write_clip(path: Path, frames: int = 12, size=(96, 64)) -> Path:
    import cv2

    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, size)
    for i in range(frames):
        f = np.full((size[1], size[0], 3), (40, 90, 160), np.uint8)
        cv2.circle(f, (8 + 6 * i, size[1] // 2), 8, (255, 220, 0), -1)
        w.write(f)
    w.release()
    return path


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height (the pixels are not there)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + chunk(b"IEND", b""))
    return path


# ----------------------------------------------------------------------------------- row 5: huge images

def test_a_decompression_bomb_is_one_line(capsys, tmp_path, photo_path):
    bomb = png_claiming(tmp_path / "bomb.png", 20000, 20000)
    out = tmp_path / "out"
    err = one_line_error(capsys, ["stylize", str(bomb), "--model", "starry_night_rt", "-o", str(out / "o.png")])
    assert "larger than percept opens" in err and "megapixels" in err
    err = one_line_error(capsys, ["optimize-style", "--content", str(photo_path), "--style", str(bomb),
                                  "-o", str(out / "g.png"), "--iterations", "1"])
    assert "larger than percept opens" in err
    assert leftovers(out) == []


# ----------------------------------------------------------------------------------- row 2: camera index

@pytest.mark.parametrize("index", ["-1", "-7"])
def test_a_negative_camera_index_is_refused_before_opencv(capsys, index):
    with pytest.raises(SystemExit) as exc:
        main(["webcam", "--camera", index, "--headless", "-o", "x.mp4", "--frames", "1"])
    assert exc.value.code == 2
    assert "must be 0 or more" in capsys.readouterr().err


def test_the_library_refuses_bad_camera_indices_too():
    from percept.inference.video import open_capture

    for bad in (-1, 64, 10**9):
        with pytest.raises(PerceptError, match="camera must be an index from 0 to 63"):
            open_capture(bad)


# ----------------------------------------------------------------------------------- row 3: signals

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_terminated_video_leaves_no_partial_file(tmp_path, sig):
    clip = write_clip(tmp_path / "clip.mp4", frames=400, size=(320, 240))
    out = tmp_path / "out"
    out.mkdir()
    # a terminal's hang-up reaches the child (under nohup, as CI may run, SIGHUP would be ignored, on purpose)
    proc = subprocess.Popen([sys.executable, "-m", "percept.cli", "video", str(clip), "-o", str(out / "v.mp4"),
                             "--model", "starry_night", "--quiet"], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.startswith(".") for p in out.iterdir()):
        time.sleep(0.1)  # wait until it is writing
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert f"stopped by {signal.Signals(sig).name}" in err and "Traceback" not in err
    assert leftovers(out) == []


def test_a_terminated_headless_webcam_keeps_what_it_recorded(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=300)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "percept.cli", "webcam", "--source", str(clip), "--headless",
                             "-o", str(out / "cam.mp4"), "--model", "starry_night_rt", "--size", "96"],
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.startswith(".") for p in out.iterdir()):
        time.sleep(0.1)
    time.sleep(1.0)  # a few frames in
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "kept the" in err and "frames recorded so far" in err
    assert leftovers(out) == ["cam.mp4"]
    import cv2

    cap = cv2.VideoCapture(str(out / "cam.mp4"))
    assert cap.isOpened() and cap.get(cv2.CAP_PROP_FRAME_COUNT) >= 1
    cap.release()


# ----------------------------------------------------------------------------------- row 1: a full disk

def mounted_tmpfs(folder: Path, options: str):
    """A tmpfs mounted on ``folder`` for the length of a test (root only; skipped with the reason elsewhere)."""
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tmpfs")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


@pytest.fixture()
def tiny_disk(tmp_path):
    """A 256 kB tmpfs: a disk that fills up after a few video frames."""
    yield from mounted_tmpfs(tmp_path / "full", "size=256k")


def test_a_video_on_a_full_disk_is_an_error_and_leaves_nothing(tiny_disk, tmp_path, capsys):
    clip = write_clip(tmp_path / "clip.mp4", frames=60, size=(640, 480))
    err = one_line_error(capsys, ["video", str(clip), "-o", str(tiny_disk / "v.mp4"), "--model", "starry_night_rt",
                                  "--size", "96", "--quiet"])
    assert "the video could not be written" in err and "nothing was saved" in err
    assert leftovers(tiny_disk) == []


# ----------------------------------------------------------------------------------- row 4: a corrupt photo

def test_training_skips_an_unreadable_photo_and_resumes(tmp_path, small_data, painting_path, capsys):
    from percept.training.style import StyleTrainConfig, train_style

    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    good = sorted(data.glob("*.jpg"))[0]
    data_bytes = good.read_bytes()
    (data / "aaa_truncated.jpg").write_bytes(data_bytes[: len(data_bytes) * 6 // 10])  # header ok, pixels cut
    (data / "notes.png").write_text("not an image")

    def cfg(iterations: int) -> StyleTrainConfig:
        return StyleTrainConfig(style=str(painting_path), data=str(data), out=str(tmp_path / "out"), name="t",
                                image_size=32, batch_size=2, iterations=iterations, channels=[4, 8, 8],
                                n_residual=1, style_size=64, checkpoint_every=3, preview_every=100,
                                holdout_every=0, seed=3)

    train_style(cfg(6), progress=False)
    err = capsys.readouterr().err
    assert "notes.png" in err and "skipped" in err
    assert "aaa_truncated.jpg" in err and "unreadable of" in err
    train_style(cfg(8), resume=True, progress=False)  # the run that used to die forever
    assert (tmp_path / "out" / "t.pt").is_file()


def test_a_large_folder_starts_without_a_header_pass_and_counts_what_it_skips(tmp_path, small_data, painting_path,
                                                                               capsys, monkeypatch):
    """Above HEADER_CHECK_LIMIT photos no file is opened before training starts (a COCO-sized folder starts at
    once); an unreadable photo is skipped when drawn, and the count is in the log and the model card."""
    from percept.checkpoint import load_checkpoint
    from percept.training import loop
    from percept.training.style import StyleTrainConfig, train_style

    monkeypatch.setattr(loop, "HEADER_CHECK_LIMIT", 3)
    data = tmp_path / "data"
    shutil.copytree(small_data, data)
    for i in range(4):
        (data / f"bad{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a photo")
    cfg = StyleTrainConfig(style=str(painting_path), data=str(data), out=str(tmp_path / "out"), name="big",
                           image_size=32, batch_size=2, iterations=12, channels=[4, 8, 8], n_residual=1,
                           style_size=64, checkpoint_every=12, preview_every=100, log_every=1, holdout_every=0, seed=1)
    path = train_style(cfg, progress=False)
    card = load_checkpoint(path)["card"]
    skipped = card["data"]["unreadable_skipped"]
    assert card["data"]["train_images"] == 10 and 1 <= skipped <= 4
    err = capsys.readouterr().err
    assert f"skipped ({skipped} unreadable of 10 training images)" in err
    assert "unreadable training image(s) of" not in err  # the start-up header pass (small folders) did not run
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "out" / "tb" / "big"))
    acc.Reload()
    assert acc.Scalars("data/unreadable_skipped")[-1].value == skipped


def test_a_dataset_of_unreadable_images_is_one_error(tmp_path):
    from percept.training.data import RandomCropDataset

    bad = tmp_path / "a.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(PerceptError, match="none of the 1 training images can be read"):
        RandomCropDataset([bad], 32, 4)[0]


# ----------------------------------------------------------------------------------- rows 8, 9, 14: checkpoints

def _style_checkpoint(tmp_path: Path, name: str, **change) -> Path:
    ckpt = torch.load(SHIPPED / "starry_night_rt.pt", map_location="cpu", weights_only=True)
    ckpt.update(change)
    path = tmp_path / f"{name}.pt"
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("config, message", [
    ({"arch": "rt", "channels": [-4, 8, 8], "n_residual": 1}, "channels must be three widths"),
    ({"arch": "rt", "channels": [16, 32, 64], "n_residual": 10_000_000}, "n_residual must be a whole number"),
    ("not a dict", "its config is not a table of settings"),
    ({"arch": "rt", "channels": "16,32,64"}, "channels must be three widths"),
])
def test_a_broken_config_is_one_line(capsys, tmp_path, photo_path, config, message):
    path = _style_checkpoint(tmp_path, "broken", config=config)
    err = one_line_error(capsys, ["stylize", str(photo_path), "--model", str(path), "-o", str(tmp_path / "o.png")])
    assert message in err
    assert not (tmp_path / "o.png").exists()


def test_nan_weights_are_refused_at_load(capsys, tmp_path, photo_path):
    ckpt = torch.load(SHIPPED / "starry_night_rt.pt", map_location="cpu", weights_only=True)
    key = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    ckpt["state_dict"][key] = torch.full_like(ckpt["state_dict"][key], float("nan"))
    torch.save(ckpt, tmp_path / "nan.pt")
    err = one_line_error(capsys, ["stylize", str(photo_path), "--model", str(tmp_path / "nan.pt"),
                                  "-o", str(tmp_path / "o.png")])
    assert "NaN or infinity" in err and not (tmp_path / "o.png").exists()


def test_resuming_from_a_finished_model_is_one_line(capsys, tmp_path, small_data, painting_path):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(SHIPPED / "starry_night_rt.pt", out / "t.train.pt")
    err = one_line_error(capsys, ["train-style", "--style", str(painting_path), "--data", str(small_data),
                                  "--out", str(out), "--name", "t", "--arch", "rt", "--resume", "--quiet"])
    assert "is a finished 'style-transformer' model, not a training state" in err


# ----------------------------------------------------------------------------------- row 10: broken cards

def test_models_lists_the_good_ones_and_names_the_broken_card(capsys, tmp_path, monkeypatch, photo_path):
    user = tmp_path / "user"
    user.mkdir()
    monkeypatch.setenv("PERCEPT_USER_MODELS", str(user))
    for suffix in (".pt", ".json"):
        shutil.copy(SHIPPED / f"wave_rt{suffix}", user / f"mine{suffix}")
        shutil.copy(SHIPPED / f"wave_rt{suffix}", user / f"bad{suffix}")
    (user / "bad.json").write_text("{ not json")
    code = main(["models"])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "bad.json: broken model card" in err
    assert any(line.startswith("mine ") for line in out.splitlines())
    assert any(line.startswith("starry_night ") for line in out.splitlines())
    err = one_line_error(capsys, ["stylize", str(photo_path), "--model", "nosuch", "-o", str(tmp_path / "o.png")])
    assert "unknown model 'nosuch'" in err and "mine" in err  # the good ones, despite the broken card


# ----------------------------------------------------------------------------------- rows 13, 16, 17: options

def test_style_blend_must_be_finite(capsys, tmp_path, photo_path, painting_path, wave_path):
    for blend in ("nan,1", "inf,1", "-1,2"):
        err = one_line_error(capsys, ["optimize-style", "--content", str(photo_path), "--style", str(painting_path),
                                      "--style", str(wave_path), f"--style-blend={blend}", "-o", str(tmp_path / "g.png")])
        assert "--style-blend needs 2 non-negative weights" in err


def test_snapshot_every_must_not_be_negative(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["optimize-style", "--content", "a.jpg", "--style", "b.jpg", "-o", str(tmp_path / "g.png"),
              "--snapshot-every", "-1"])
    assert exc.value.code == 2 and "must be 0 or more" in capsys.readouterr().err


def test_one_input_and_an_output_that_is_neither_image_nor_folder(capsys, tmp_path, photo_path):
    target = tmp_path / "plainfile"
    target.write_text("x")
    err = one_line_error(capsys, ["stylize", str(photo_path), "--model", "starry_night_rt", "-o", str(target)])
    assert "not an image file name" in err and "several inputs" not in err


def test_an_output_folder_named_like_an_image_fails_before_the_work(capsys, tmp_path, photo_path):
    (tmp_path / "dir.png").mkdir()
    err = one_line_error(capsys, ["stylize", str(photo_path), "--model", "starry_night", "-o",
                                  str(tmp_path / "dir.png")])
    assert "is a folder; give the output a file name" in err


# ----------------------------------------------------------------------------------- rows 6, 7: read-only, full

@pytest.fixture()
def read_only_dir(tmp_path):
    """A read-only tmpfs: EROFS for every write, root included."""
    yield from mounted_tmpfs(tmp_path / "ro", "ro,size=64k")


def test_read_only_outputs_fail_before_the_work(capsys, read_only_dir, tmp_path, photo_path, painting_path,
                                               small_data):
    clip = write_clip(tmp_path / "clip.mp4")
    cases = [
        ["stylize", str(photo_path), "--model", "starry_night", "-o", str(read_only_dir / "o.png")],
        ["optimize-style", "--content", str(photo_path), "--style", str(painting_path), "-o",
         str(read_only_dir / "sub" / "g.png")],
        ["export", "starry_night_rt", "-o", str(read_only_dir / "m.onnx")],
        ["invert", str(photo_path), "--layer", "relu2_1", "-o", str(read_only_dir / "i.png")],
        ["video", str(photo_path), "-o", str(read_only_dir / "v.mp4"), "--model", "starry_night_rt"],
        ["train-style", "--style", str(painting_path), "--data", str(small_data), "--out", str(read_only_dir / "t")],
        ["webcam", "--source", str(clip), "--headless", "--frames", "3", "--model", "starry_night_rt", "-o",
         str(read_only_dir / "cam.mp4")],
    ]
    for argv in cases:
        err = one_line_error(capsys, argv)
        assert "cannot write there (a read-only filesystem, or no permission)" in err, (argv, err)
    assert leftovers(read_only_dir) == []


def test_a_full_disk_for_an_image_is_one_line_and_leaves_nothing(capsys, tiny_disk, photo_path):
    # 200 of the 256 kB taken: the stylised 640x432 PNG (several hundred kB) cannot fit
    (tiny_disk / "filler2").write_bytes(b"\0" * (200 * 1024))
    err = one_line_error(capsys, ["stylize", str(photo_path), "--model", "starry_night_rt", "-o",
                                  str(tiny_disk / "o.png")])
    assert "cannot write it" in err and "nothing was saved" in err
    assert leftovers(tiny_disk) == ["filler2"]


# ----------------------------------------------------------------------------------- rows 11, 12: sizes

@pytest.mark.parametrize("argv", [
    ["stylize", "a.jpg", "--model", "m", "-o", "o.png", "--size", "100000"],
    ["stylize", "a.jpg", "--model", "m", "-o", "o.png", "--size", "1e20"],
    ["optimize-style", "--content", "a.jpg", "--style", "b.jpg", "-o", "g.png", "--size", "8"],
    ["train-style", "--style", "b.jpg", "--data", "d", "--image-size", "4"],
])
def test_sizes_out_of_range_are_refused_at_parse(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1
    assert "must be from 16 to 16384 px" in err or "expected a whole number of pixels" in err


def test_a_frame_too_big_for_the_memory_is_refused_before_it_is_allocated():
    from percept.inference.runtime import available_memory, check_frame_size

    free = available_memory()
    side = 16384 if free is None else int((free / 1000) ** 0.5) + 2048
    with pytest.raises(PerceptError, match=r"needs about [0-9.]+ GB of memory to stylise"):
        check_frame_size(side, side, 8, "starry_night")
    check_frame_size(512, 512, 8, "starry_night")  # a normal frame passes


# ----------------------------------------------------------------------------------- rows 13, 18, 19: training

def _train_cfg(painting_path, data, out, **kw):
    from percept.training.style import StyleTrainConfig

    base = dict(style=str(painting_path), data=str(data), out=str(out), name="t", image_size=32, batch_size=1,
                iterations=2, channels=[4, 8, 8], n_residual=1, style_size=64, checkpoint_every=1,
                holdout_every=0)
    return StyleTrainConfig(**{**base, **kw})


def test_training_run_options_that_cannot_work(capsys, tmp_path, painting_path, small_data):
    (tmp_path / "afile").write_text("x")
    err = one_line_error(capsys, ["train-style", "--style", str(painting_path), "--data", str(small_data),
                                  "--out", str(tmp_path / "afile"), "--quiet"])
    assert "is a file; --out must be a folder" in err
    err = one_line_error(capsys, ["train-style", "--style", str(painting_path), "--data", str(small_data),
                                  "--out", str(tmp_path / "o"), "--seed", "-1", "--quiet"])
    assert "seed must be 0 or more" in err


def test_stale_temp_files_of_a_killed_run_are_removed_and_a_finished_run_is_not_resumed(
        tmp_path, painting_path, small_data):
    from percept.training.style import train_style

    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".t.train.pt.abc123.tmp"
    stale.write_bytes(b"\0" * 1000)
    other = out / ".other.train.pt.abc.tmp"  # another run's: not ours to remove
    other.write_bytes(b"x")
    train_style(_train_cfg(painting_path, small_data, out), progress=False)
    assert not stale.exists() and other.exists()
    with pytest.raises(PerceptError, match="already finished its 2 iterations; give more --iterations"):
        train_style(_train_cfg(painting_path, small_data, out), resume=True, progress=False)
    train_style(_train_cfg(painting_path, small_data, out, iterations=3), resume=True, progress=False)
    card = (out / "t.json").read_text()
    assert '"final_losses_running_avg": {}' not in card


# ----------------------------------------------------------------------------------- rows 15, 21: video input

def test_a_text_file_as_video_is_exactly_one_line(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 50)
    res = subprocess.run([sys.executable, "-m", "percept.cli", "video", str(fake), "-o", str(tmp_path / "o.mp4"),
                          "--model", "starry_night_rt"], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "cannot open it as a video" in res.stderr


def test_a_truncated_video_says_how_many_frames_were_lost(tmp_path, capsys):
    import cv2

    clip = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(40):
        w.write(np.full((48, 64, 3), 6 * i, np.uint8))
    w.release()
    data = clip.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    code = main(["video", str(cut), "-o", str(tmp_path / "o.mp4"), "--model", "starry_night_rt", "--quiet"])
    err = capsys.readouterr().err
    if code == 2:  # this OpenCV cannot read the cut file at all: that is one clear line too
        assert err.count("\n") == 1
        return
    assert code == 0 and "frames could be read" in err and "of its 40 frames" in err


# ----------------------------------------------------------------------------------- the loader, fuzzed

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF"])
def test_fuzzed_image_files_give_an_image_or_the_one_error(tmp_path, photo_path, fmt):
    """Random byte mutations (flips, cuts, splices) of a real photo in each format: load_image returns an
    RGB image or raises PerceptError, never anything else."""
    import io
    import random

    from percept.images import load_image

    buf = io.BytesIO()
    Image.open(photo_path).convert("RGB").resize((64, 43)).save(buf, format=fmt)
    original = buf.getvalue()
    rng = random.Random(f"fuzz-{fmt}")
    path = tmp_path / f"f.{fmt.lower()}"
    outcomes = {"image": 0, "error": 0}
    for _ in range(150):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            op = rng.random()
            i = rng.randrange(max(1, len(data)))
            if op < 0.5:
                data[i] = rng.randrange(256)
            elif op < 0.7:
                del data[i:i + rng.randint(1, 64)]
            elif op < 0.85:
                data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
            else:
                data = data[: max(1, i)]
        path.write_bytes(bytes(data))
        try:
            img = load_image(path)
        except PerceptError:
            outcomes["error"] += 1
        else:
            assert img.mode == "RGB" and min(img.size) >= 16
            outcomes["image"] += 1
    assert outcomes["error"] > 0  # the mutations did break files


# ----------------------------------------------------------------------------------- row 22: a stale .onnx

def test_an_onnx_exported_from_another_training_is_not_run(tmp_path, capsys, photo_path):
    from percept.inference.engine import Engine

    for suffix in (".pt", ".onnx", ".json"):
        shutil.copy(SHIPPED / f"wave_rt{suffix}", tmp_path / f"mine{suffix}")
    assert Engine(tmp_path / "mine.pt").backend == "onnx"  # the pair belongs together
    ckpt = torch.load(tmp_path / "mine.pt", map_location="cpu", weights_only=True)
    ckpt["card"] = {**ckpt["card"], "trained_at": "2030-01-01T00:00:00+00:00"}  # retrained since the export
    first = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    ckpt["state_dict"][first] = ckpt["state_dict"][first] * 1.01  # (the export records the weights' SHA-256)
    torch.save(ckpt, tmp_path / "mine.pt")
    capsys.readouterr()
    engine = Engine(tmp_path / "mine.pt")
    err = capsys.readouterr().err
    assert engine.backend == "torch" and "exported from other weights" in err and "percept export" in err
    assert Engine(tmp_path / "mine.pt", backend="onnx").backend == "onnx"  # asked for: run it, with the note


def test_viz_outputs_are_checked_at_parse(capsys, read_only_dir, tmp_path, photo_path):
    for argv in (["viz", "activations", str(photo_path), "-o", str(read_only_dir / "act")],
                 ["viz", "filters", "-o", str(read_only_dir)]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.count("\n") == 1 and "cannot write there" in err
    with pytest.raises(SystemExit):
        main(["viz", "activations", str(photo_path), "-o", str(tmp_path / "a"), "--size", "4"])
    assert "must be from 16 to 16384 px" in capsys.readouterr().err


def test_a_run_that_fails_on_bad_data_leaves_no_tensorboard_stub(tmp_path, painting_path, small_data):
    from percept.training.style import train_style

    data = tmp_path / "data"
    data.mkdir()
    for p in sorted(small_data.glob("*.jpg"))[:3]:  # headers fine, pixels cut: found out when drawn
        raw = p.read_bytes()
        (data / p.name).write_bytes(raw[: len(raw) * 6 // 10])
    out = tmp_path / "out"
    with pytest.raises(PerceptError, match="none of the 3 training images can be read"):
        train_style(_train_cfg(painting_path, data, out), progress=False)
    assert not list(out.rglob("events.out.tfevents.*")) and not (out / "tb").exists()


def test_weights_that_overflow_give_an_error_not_a_black_picture(capsys, tmp_path, photo_path):
    ckpt = torch.load(SHIPPED / "starry_night_rt.pt", map_location="cpu", weights_only=True)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    first = next(k for k in state if k.endswith("weight") and state[k].dim() == 4)
    state[first] = torch.full_like(state[first], 3e38)  # finite, but the first convolution overflows
    torch.save({**ckpt, "state_dict": state}, tmp_path / "huge.pt")
    err = one_line_error(capsys, ["stylize", str(photo_path), "--model", str(tmp_path / "huge.pt"),
                                  "-o", str(tmp_path / "o.png")])
    assert "output is not finite" in err and not (tmp_path / "o.png").exists()


def test_an_onnx_exported_from_other_weights_is_told_by_the_weights_hash(tmp_path, capsys, tiny_model):
    """Row 22 with the hash: same training time, one weight changed after the export."""
    import json

    import onnx

    from percept.checkpoint import checkpoint_digest
    from percept.inference.engine import Engine
    from percept.inference.export import export_onnx

    shutil.copy(tiny_model, tmp_path / "mine.pt")
    export_onnx(tmp_path / "mine.pt", tmp_path / "mine.onnx")
    meta = {p.key: p.value for p in onnx.load(tmp_path / "mine.onnx").metadata_props}
    assert json.loads(meta["percept.card"])["weights_sha256"] == checkpoint_digest(tmp_path / "mine.pt")
    assert Engine(tmp_path / "mine.pt").backend == "onnx"
    ckpt = torch.load(tmp_path / "mine.pt", map_location="cpu", weights_only=True)
    first = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    ckpt["state_dict"][first] = ckpt["state_dict"][first] + 0.01      # same card, same trained_at
    torch.save(ckpt, tmp_path / "mine.pt")
    capsys.readouterr()
    engine = Engine(tmp_path / "mine.pt")
    err = capsys.readouterr().err
    assert engine.backend == "torch" and "weights SHA-256 differs" in err and "percept export" in err


def test_a_real_144_megapixel_photo_is_refused_from_its_header(capsys, tmp_path):
    """Row 11 with a real file: a 12000x12000 JPEG without --size is refused before it is decoded."""
    from percept.inference.runtime import available_memory

    free = available_memory()
    if free is not None and free > 150e9:
        pytest.skip(f"{free / 1e9:.0f} GB free: a 144-megapixel frame would fit here")
    big = tmp_path / "big.jpg"
    Image.new("RGB", (12000, 12000), (120, 140, 160)).save(big, quality=50)
    out = tmp_path / "out"
    err = one_line_error(capsys, ["stylize", str(big), "--model", "starry_night_rt", "-o", str(out / "o.png")])
    assert "12000x12000 px (144 megapixels) needs about 144.0 GB of memory" in err and "--size" in err
    assert not out.exists()
