"""The real-time runtime: ONNX export, the onnxruntime engine, video files and the webcam loop.

Everything runs for real: torch.onnx export, the ONNX checker, onnxruntime sessions, OpenCV decoding
and encoding of real video files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from percept.cli import main
from percept.errors import PerceptError
from percept.images import load_image, resize_long_side
from percept.inference.engine import Engine
from percept.inference.export import export_onnx
from percept.inference.runtime import choose_providers
from percept.registry import checkpoints_dir

STYLES = ["composition_vii", "starry_night", "the_scream", "wave"]
SHIPPED = STYLES + [f"{s}_rt" for s in STYLES]


def make_video(path: Path, frames: int = 12, size=(160, 120), fps: float = 12.0) -> Path:
    """A short real video: a window panning across scikit-image's astronaut."""
    import cv2
    from skimage import data

    img = data.astronaut()
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    step = 2 if 2 * max(w, h) <= 400 else 1  # subsample small frames from the 512 px photo
    for i in range(frames):
        dy, dx = 40 + (3 * i) % 40, 60 + (2 * i) % 40
        crop = img[dy: dy + step * h: step, dx: dx + step * w: step]
        assert crop.shape[:2] == (h, w)
        writer.write(np.ascontiguousarray(crop[..., ::-1]))
    writer.release()
    return path


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f[..., ::-1])
    cap.release()
    return frames, fps


@pytest.fixture(scope="module")
def tiny_onnx(tiny_model, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("onnx")
    pt = folder / "tiny.pt"
    shutil.copy(tiny_model, pt)
    export_onnx(pt, folder / "tiny.onnx")
    return folder / "tiny.onnx"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("video") / "clip.mp4")


# ----------------------------------------------------------------------------------------- export

def test_export_writes_a_checked_onnx_with_metadata(tiny_onnx):
    model = onnx.load(str(tiny_onnx))
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["percept.kind"] == "style-transformer"
    assert meta["percept.name"] == "tiny"
    assert "[0, 1]" in meta["percept.input"] and "NCHW" in meta["percept.input"]
    card = json.loads(meta["percept.card"])
    assert card["architecture"]["channels"] == [4, 8, 8]
    shape = model.graph.input[0].type.tensor_type.shape.dim
    assert [bool(d.dim_param) for d in shape] == [True, False, True, True]  # dynamic N, H, W; 3 channels


@pytest.mark.parametrize("n,h,w", [(1, 64, 64), (3, 37, 53), (1, 130, 91)])
def test_onnxruntime_matches_pytorch_on_any_size(tiny_onnx, n, h, w):
    x = np.random.default_rng(1).random((n, 3, h, w), dtype=np.float32)
    a = Engine(tiny_onnx, backend="onnx", device="cpu").run(x)
    b = Engine(tiny_onnx.with_suffix(".pt"), backend="torch", device="cpu").run(x)
    assert a.shape == b.shape == x.shape
    assert np.abs(a - b).max() < 1e-3


def test_export_refuses_a_model_that_disagrees_and_writes_nothing(tiny_model, tmp_path):
    with pytest.raises(PerceptError, match=r"disagree by .* tolerance 0"):
        export_onnx(tiny_model, tmp_path / "bad.onnx", tolerance=0.0)
    assert list(tmp_path.iterdir()) == []


def test_export_fp16_keeps_float32_io_and_stays_close(tiny_model, tmp_path):
    report = export_onnx(tiny_model, tmp_path / "half.onnx", fp16=True)
    assert report.precision == "fp16" and report.max_abs_diff < 2e-2
    model = onnx.load(str(tmp_path / "half.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)


def test_export_int8_quantizes_the_convolutions_and_stays_close(tiny_model, tmp_path, photo_path):
    report = export_onnx(tiny_model, tmp_path / "q.onnx", int8=True, calibration=photo_path.parent)
    assert report.precision == "int8" and report.photos >= 1 and report.psnr >= 20.0
    model = onnx.load(str(tmp_path / "q.onnx"))
    ops = [n.op_type for n in model.graph.node]
    n_conv = ops.count("Conv")
    assert n_conv > 0 and ops.count("DequantizeLinear") >= 2 * n_conv  # weights and inputs of every conv
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["percept.precision"] == "int8" and "photos of" in meta["percept.calibration"]
    photo = resize_long_side(load_image(photo_path), 96)
    a = np.asarray(Engine(tmp_path / "q.onnx", backend="onnx")(photo), dtype=float)
    b = np.asarray(Engine(tiny_model, backend="torch")(photo), dtype=float)
    assert a.shape == b.shape and 10 * np.log10(255.0 ** 2 / np.mean((a - b) ** 2)) > 20.0


def test_export_int8_refusals_write_nothing(tiny_model, tmp_path, capsys):
    with pytest.raises(PerceptError, match="below|too far"):
        export_onnx(tiny_model, tmp_path / "q.onnx", int8=True, min_psnr=200.0)
    assert main(["export", str(tiny_model), "-o", str(tmp_path / "x.onnx"), "--int8", "--fp16"]) == 2
    assert "choose one of --fp16, --fp16-weights and --int8" in capsys.readouterr().err
    assert main(["export", str(tiny_model), "-o", str(tmp_path / "x.onnx"), "--calibration", str(tmp_path)]) == 2
    assert "--calibration is for --int8" in capsys.readouterr().err
    assert main(["export", "decoder_relu2_1", "-o", str(tmp_path / "x.onnx"), "--int8"]) == 2
    assert "--int8 is for style networks" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_export_cli_reports_the_difference(tiny_model, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(tiny_model), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "max abs diff" in text and out.is_file()
    assert main(["export", str(tiny_model), "-o", str(tmp_path / "m.txt")]) == 2
    assert "must end in .onnx" in capsys.readouterr().err


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_has_a_verified_onnx(name):
    onnx_path = checkpoints_dir() / f"{name}.onnx"
    assert onnx_path.is_file(), f"run `percept export {name}`"
    x = np.random.default_rng(0).random((1, 3, 67, 93), dtype=np.float32)
    a = Engine(onnx_path, backend="onnx", device="cpu").run(x)
    b = Engine(name, backend="torch", device="cpu").run(x)
    assert np.abs(a - b).max() < 1e-3


# ----------------------------------------------------------------------------------------- engine

@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_each_model_states_its_smallest_frame(backend):
    """The real-time network needs 9 px (8 would leave a 1x1 bottleneck): a clear error, not a crash."""
    rt = Engine("starry_night_rt", backend=backend, device="cpu")
    assert rt.min_size == 9 and Engine("starry_night", backend=backend, device="cpu").min_size == 8
    with pytest.raises(PerceptError, match=r"at least 9x9 px for starry_night_rt, got 8x8"):
        rt.frames([np.zeros((8, 8, 3), np.uint8)])
    assert rt.frames([np.zeros((9, 11, 3), np.uint8)])[0].shape == (9, 11, 3)


def test_stylizer_tensor_api_states_the_smallest_image():
    from percept.inference.stylizer import open_stylizer

    with pytest.raises(PerceptError, match=r"at least 9x9 px for starry_night_rt, got 12x8"):
        open_stylizer("starry_night_rt", device="cpu").tensor(torch.rand(1, 3, 8, 12))


def test_auto_backend_prefers_onnx_and_falls_back_to_torch(tiny_onnx, tiny_model):
    e = Engine(tiny_onnx.with_suffix(".pt"))
    assert e.backend == "onnx" and e.provider == "CPUExecutionProvider"
    assert Engine(tiny_model).backend == "torch"  # no .onnx beside it
    with pytest.raises(PerceptError, match="no .onnx file"):
        Engine(tiny_model, backend="onnx")


def test_engine_gives_the_same_picture_as_the_torch_stylizer(tiny_onnx, photo_path):
    photo = resize_long_side(load_image(photo_path), 90)
    a = np.asarray(Engine(tiny_onnx, backend="onnx")(photo, strength=0.8, preserve_color=True), dtype=int)
    b = np.asarray(Engine(tiny_onnx.with_suffix(".pt"), backend="torch")(photo, strength=0.8,
                                                                          preserve_color=True), dtype=int)
    assert a.shape == (photo.height, photo.width, 3)
    assert np.abs(a - b).max() <= 1


GPU_PROVIDERS = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_provider_choice():
    assert choose_providers("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"], gpu=True)[0] == \
        "CUDAExecutionProvider"
    assert choose_providers("auto", GPU_PROVIDERS, gpu=True)[:2] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    assert choose_providers("tensorrt", GPU_PROVIDERS, gpu=True) == GPU_PROVIDERS
    assert choose_providers("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(PerceptError, match="no CUDAExecutionProvider here"):
        choose_providers("cuda", ["CPUExecutionProvider"])


def test_gpu_provider_options(tmp_path, monkeypatch):
    """TensorRT: fp16 engines cached beside the model (or in percept's cache where that cannot be written);
    the providers a CPU-only machine cannot start are still configured the same way, checked here."""
    from percept.inference.runtime import provider_options

    model = tmp_path / "m.onnx"
    opts = provider_options(GPU_PROVIDERS, model)
    assert [o if isinstance(o, str) else o[0] for o in opts] == GPU_PROVIDERS
    trt = dict(opts[0][1])
    assert trt["trt_fp16_enable"] is True and trt["trt_engine_cache_enable"] is True
    assert trt["trt_engine_cache_path"] == str(tmp_path / "m.trt") and (tmp_path / "m.trt").is_dir()
    assert opts[1][1]["cudnn_conv_algo_search"] == "EXHAUSTIVE" and opts[2] == "CPUExecutionProvider"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "ro").write_text("a file where the model's folder would be")
    elsewhere = dict(provider_options(GPU_PROVIDERS[:1], tmp_path / "ro" / "m.onnx")[0][1])["trt_engine_cache_path"]
    assert elsewhere.startswith(str(tmp_path / "cache" / "percept" / "tensorrt" / "m-"))


def test_gpu_providers_without_a_gpu_mean_the_cpu():
    """onnxruntime-gpu lists its CUDA and TensorRT providers on any machine: auto must not pick them
    without a GPU, and asking for them is one clear error."""
    assert choose_providers("auto", GPU_PROVIDERS, gpu=False) == ["CPUExecutionProvider"]
    with pytest.raises(PerceptError, match="no CUDA GPU here"):
        choose_providers("cuda", GPU_PROVIDERS, gpu=False)
    with pytest.raises(PerceptError, match="unknown device 'tpu'"):
        choose_providers("tpu", GPU_PROVIDERS, gpu=False)


def test_auto_on_this_machine_finds_the_real_gpu_or_none(tiny_onnx):
    import torch

    from percept.inference.runtime import cuda_gpu_present

    assert cuda_gpu_present() == torch.cuda.is_available()
    expected = "CPUExecutionProvider" if not cuda_gpu_present() else Engine(tiny_onnx).provider
    assert Engine(tiny_onnx, device="auto").provider == expected


def test_truncated_onnx_is_refused(tiny_onnx, tmp_path):
    bad = tmp_path / "cut.onnx"
    bad.write_bytes(tiny_onnx.read_bytes()[: tiny_onnx.stat().st_size // 2])
    with pytest.raises(PerceptError, match="not a readable ONNX model"):
        Engine(bad)


def test_foreign_onnx_is_refused(tmp_path):
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8), str(path))
    with pytest.raises(PerceptError, match="not a percept model"):
        Engine(path)


def test_missing_provider_is_one_line_on_the_cli(tiny_onnx, photo_path, tmp_path, capsys):
    code = main(["stylize", str(photo_path), "--model", str(tiny_onnx), "-o", str(tmp_path / "o.png"),
                 "--device", "cuda", "--backend", "onnx"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "CUDAExecutionProvider" in err
    assert not (tmp_path / "o.png").exists()


def test_stylize_cli_onnx_backend(tiny_onnx, photo_path, tmp_path):
    out = tmp_path / "o.png"
    assert main(["stylize", str(photo_path), "--model", str(tiny_onnx), "-o", str(out), "--size", "80",
                 "--backend", "onnx"]) == 0
    assert max(Image.open(out).size) == 80


# ----------------------------------------------------------------------------------------- video

def test_video_keeps_frame_rate_size_and_count(tiny_onnx, clip, tmp_path, capsys):
    out = tmp_path / "styled.mp4"
    assert main(["video", str(clip), "-o", str(out), "--model", str(tiny_onnx), "--size", "96", "--quiet"]) == 0
    src, fps_in = read_video(clip)
    got, fps_out = read_video(out)
    assert len(got) == len(src) == 12
    assert fps_out == pytest.approx(fps_in)
    assert got[0].shape == src[0].shape
    assert np.abs(got[5].astype(float) - src[5].astype(float)).mean() > 5  # stylised, not copied
    assert "12 frames" in capsys.readouterr().out


def test_video_bad_inputs_are_one_line_and_leave_nothing(tiny_onnx, tmp_path, capsys):
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video")
    assert main(["video", str(fake), "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_onnx)]) == 2
    assert "cannot open it as a video" in capsys.readouterr().err
    assert main(["video", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "o.mp4"), "--model", str(tiny_onnx)]) == 2
    assert "no such video file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.mp4"]


def test_interrupted_video_leaves_no_partial_file(tiny_onnx, clip, tmp_path):
    from percept.inference.options import VideoOptions
    from percept.inference.stylizer import open_stylizer
    from percept.inference.video import stylize_video

    def interrupt(n):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stylize_video(clip, tmp_path / "o.mp4", open_stylizer(tiny_onnx), VideoOptions(size=64, batch=2),
                      progress=False, on_frame=interrupt)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------- webcam

def test_headless_webcam_writes_video_and_obeys_keys(tiny_onnx, tiny_model, clip, tmp_path):
    from percept.inference.webcam import run_webcam

    presses = {2: ord("n"), 3: ord("s"), 4: ord("-")}
    stats = run_webcam([str(tiny_onnx), str(tiny_model)], source=str(clip), size=96, headless=True,
                       output=tmp_path / "cam.mp4", frames=6, snapshot_dir=tmp_path / "snaps",
                       keys=lambda i: presses.get(i, -1))
    assert 1 <= stats.shown <= 6
    assert stats.captured >= stats.shown and stats.dropped <= stats.captured - stats.shown
    frames, _ = read_video(tmp_path / "cam.mp4")
    assert len(frames) == stats.shown and frames[0].shape == (120, 160, 3)
    if stats.shown >= 3:
        assert len(stats.snapshots) == 1 and stats.snapshots[0].is_file()


def test_overlay_outline_hugs_the_text():
    """The FPS overlay: white text with a dark outline around the same letters, not beside them."""
    from percept.inference.webcam import _overlay

    out = _overlay(np.full((60, 320, 3), 128, np.uint8), ["starry_night  13.9 FPS", "strength 1.0  dropped 0"])
    white = np.nonzero((out > 200).all(axis=2).any(axis=0))[0]
    dark = np.nonzero((out < 50).all(axis=2).any(axis=0))[0]
    assert white.size and dark.size
    assert dark.min() >= white.min() - 3 and dark.max() <= white.max() + 3


def test_webcam_errors(tiny_onnx, tmp_path, capsys, monkeypatch):
    assert main(["webcam", "--model", str(tiny_onnx), "--camera", "7", "--headless",
                 "-o", str(tmp_path / "c.mp4")]) == 2
    assert "no camera at index 7" in capsys.readouterr().err
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["webcam", "--model", str(tiny_onnx)]) == 2
    assert "no display" in capsys.readouterr().err
    assert main(["webcam", "--model", str(tiny_onnx), "--headless"]) == 2
    assert "needs -o" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_camera_that_disappears_is_one_clear_error(tiny_onnx, clip, tmp_path):
    """A 'camera' whose frames stop: the run ends with a message and no partial recording."""
    import cv2

    from percept.inference.webcam import FrameGrabber

    cap = cv2.VideoCapture(str(clip))
    grabber = FrameGrabber(cap, pace_fps=None, is_camera=True, label="camera 0")
    grabber.start()
    seen = 0
    while grabber.newest(timeout=5) is not None:
        seen += 1
    grabber.join(5)
    assert seen >= 1 and grabber.error == "camera 0 stopped delivering frames (disconnected?)"


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb not installed (apt-get install xvfb)")
def test_webcam_window_under_xvfb_shows_a_stylized_frame(tmp_path):
    """The real window: Xvfb, the CLI with a video file as the camera, a screenshot of the screen."""
    import mss

    clip = make_video(tmp_path / "long.mp4", frames=150, size=(320, 240), fps=15.0)  # 10 s: time to see the window
    display = f":{90 + (int(time.time()) % 500)}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {**__import__("os").environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    proc = None
    try:
        time.sleep(1.0)
        shot, seen, launches = None, "nothing", 0
        # a second launch when the first one's window never reached the screen: under Xvfb without a window
        # manager, about one run in five (in CI and here) showed nothing for the whole clip and exited 0
        while shot is None and launches < 2:
            launches += 1
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)
            proc = subprocess.Popen([sys.executable, "-m", "percept.cli", "webcam", "--model", "starry_night",
                                     "--source", str(clip), "--size", "160", "--side-by-side"],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 60
            while time.time() < deadline and proc.poll() is None:
                time.sleep(1.0)
                with mss.MSS(display=display) as sct:
                    grab = sct.grab(sct.monitors[1])
                arr = np.asarray(Image.frombytes("RGB", grab.size, grab.bgra, "raw", "BGRX"))
                ys, xs = np.nonzero(arr.max(axis=2) > 0)  # the window on the black root: its bounding box, drawn
                if xs.size:
                    box = arr[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
                    seen = f"{box.shape[1]}x{box.shape[0]} px, std {box.std():.1f}"
                    if box.shape[1] >= 300 and box.shape[0] >= 150 and box.std() > 20:
                        shot = arr  # (a per-channel std over the whole screen missed a bluish window once)
                        break
        assert shot is not None, (f"no window content appeared in {launches} launches (last seen: {seen}); exit code "
                                  f"{proc.poll()}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}")
        Image.fromarray(shot).save(tmp_path / "screen.png")
        ys, xs = np.nonzero(shot.max(axis=2) > 0)
        window = shot[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
        assert window.shape[1] >= 600 and window.shape[0] >= 200  # raw | stylised, side by side
        half = window.shape[1] // 2
        raw, styled = window[50:-30, :half].astype(float), window[50:-30, half: 2 * half].astype(float)
        assert styled.std() > 10  # a picture, not a grey square
        assert np.abs(styled - raw).mean() > 15  # and visibly not the raw camera frame
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(10)
        xvfb.terminate()
        xvfb.wait(10)
