"""Linear style transfer (Li et al. 2019): the transform's algebra, training it (encoder and decoder frozen),
the one-graph ONNX export and its parity with PyTorch, the painting baked into a single-input model that
every backend runs (onnxruntime, OpenVINO, PyTorch agree), the live commands (`video --style`,
`webcam --style`), and the errors of bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from percept.errors import PerceptError


def _photo(size: int = 96) -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).resize((size, size), Image.Resampling.LANCZOS)


@pytest.fixture(scope="module")
def tiny_linear(tmp_path_factory, small_data, data_dir):
    """A linear model really trained for a few steps, on a tiny decoder saved as a percept checkpoint."""
    from percept.checkpoint import save_model
    from percept.models.decoder import FeatureDecoder
    from percept.training.configs import LinearTrainConfig
    from percept.training.linear import train_linear

    out = tmp_path_factory.mktemp("linear")
    torch.manual_seed(0)
    dec = FeatureDecoder("relu3_1", 16, 0, min_width=8)
    save_model(dec, {"name": "dec", "kind": "feature-decoder", "layer": "relu3_1"}, out, "dec", kind="feature-decoder")
    cfg = LinearTrainConfig(data=str(small_data), styles=[str(data_dir / "styles"), str(small_data)], out=str(out),
                            name="lin", decoder=str(out / "dec.pt"), rank=8, image_size=64, batch_size=2,
                            iterations=4, checkpoint_every=2, preview_every=2, log_every=1, holdout_every=3)
    return train_linear(cfg, progress=False), cfg


def test_transform_code_is_the_paintings_and_strength_passes_the_photo():
    from percept.models.linear import LinearTransform

    torch.manual_seed(0)
    t = LinearTransform("relu3_1", 8).eval()
    t.scale.fill_(0.01)
    content, style = torch.rand(2, 256, 12, 10) * 100, torch.rand(1, 256, 9, 11) * 100
    with torch.no_grad():
        full = t(content, style.expand(2, -1, -1, -1))
        code = t.style_code(style)
        assert torch.allclose(t.transfer(content, code), full, atol=1e-4)  # one painting for the batch: the same
        assert torch.equal(t.transfer(content, code, alpha=0.0), content)
        # the photo's own mean does not matter (it is taken out): only its centred features and the painting do
        assert torch.allclose(t.transfer(content + 5.0, code), full, atol=1e-3)
        assert not torch.allclose(t.transfer(content, t.style_code(style * 2)), full, atol=1e-2)


def test_training_writes_a_model_that_resumes(tiny_linear):
    from percept.models.linear import load_linear

    path, cfg = tiny_linear
    net, card = load_linear(path)
    assert card["kind"] == "linear-style" and card["iterations"] == 4 and card["layer"] == "relu3_1"
    assert [f["images"] for f in card["data"]["style_folders"]] == [2, 6]  # style folders: every image
    assert card["architecture"]["rank"] == 8 and not any(k.startswith("encoder.") for k in net.state_dict())
    y = net(torch.rand(1, 3, 36, 40), torch.rand(1, 3, 48, 48))
    assert y.shape == (1, 3, 36, 40) and 0 <= float(y.min()) and float(y.max()) <= 1
    assert (path.parent / "tb" / "lin").is_dir()
    from percept.training.linear import train_linear

    cfg.iterations = 6  # --resume continues the run from its state
    state = torch.load(path.parent / "lin.train.pt", weights_only=True)
    assert state["step"] == 4
    train_linear(cfg, resume=True, progress=False)
    assert load_linear(path)[1]["iterations"] == 6


def test_training_errors(tmp_path, small_data):
    from percept.training.configs import LinearTrainConfig
    from percept.training.linear import train_linear

    with pytest.raises(PerceptError, match=r"^no such folder|not a folder|no readable style images|: no "):
        train_linear(LinearTrainConfig(data=str(small_data), styles=[str(tmp_path / "none")], out=str(tmp_path / "o")))
    with pytest.raises(PerceptError, match=r"^--image-size must be a multiple of 8 from 64 up, got 60$"):
        train_linear(LinearTrainConfig(data=str(small_data), styles=[str(small_data)], out=str(tmp_path / "o"),
                                       image_size=60))


def test_export_one_graph_and_bake_a_painting(tiny_linear, tmp_path, wave_path, monkeypatch):
    """The one graph (photo + painting in) agrees with PyTorch within 1e-3; the painting baked in gives the
    same pixels as the one graph fed that painting, from a single-input file without the painting's branch."""
    import onnx
    import onnxruntime as ort

    from percept.images import painting_tensor
    from percept.inference.export import export_onnx
    from percept.inference.linear import bake_style
    from percept.models.linear import load_linear

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path, _ = tiny_linear
    report = export_onnx(path, tmp_path / "lin.onnx")
    assert report.max_abs_diff <= 1e-3
    # the decoder's in-place activations after each sub-pixel crop would export as full-resolution
    # slice-scatters (transposes + ScatterND, a third of a frame's time in onnxruntime)
    ops = {n.op_type for n in onnx.load(str(tmp_path / "lin.onnx")).graph.node}
    assert "ScatterND" not in ops and "DepthToSpace" in ops
    full = ort.InferenceSession(str(tmp_path / "lin.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in full.get_inputs()] == ["image", "style"]
    assert [o.name for o in full.get_outputs()] == ["stylized", "style_matrix", "style_mean"]
    x = np.asarray(_photo(64), np.float32).transpose(2, 0, 1)[None] / 255
    style = painting_tensor(str(wave_path)).numpy()
    want = full.run(["stylized"], {"image": x, "style": style})[0]
    net, _ = load_linear(path)
    with torch.no_grad():
        ref = net(torch.from_numpy(x), torch.from_numpy(style)).numpy()
    assert np.abs(want - ref).max() <= 1e-3
    baked = bake_style(tmp_path / "lin.onnx", str(wave_path))
    assert baked.parent == tmp_path / "cache" / "percept" / "linear"
    import percept.inference.linear as L

    monkeypatch.setattr(L, "_code_values", None)  # a second bake of the same painting reads the cache
    assert bake_style(tmp_path / "lin.onnx", str(wave_path)) == baked
    monkeypatch.undo()
    one = ort.InferenceSession(str(baked), providers=["CPUExecutionProvider"])
    assert [i.name for i in one.get_inputs()] == ["image"] and len(one.get_outputs()) == 1
    assert np.abs(one.run(None, {"image": x})[0] - want).max() <= 1e-5
    proto = onnx.load(str(baked))
    assert len(proto.graph.node) < len(onnx.load(str(tmp_path / "lin.onnx")).graph.node)
    with pytest.raises(PerceptError, match=r"^--fp16 is not offered for the linear style model"):
        export_onnx(path, tmp_path / "lin16.onnx", fp16=True)


def test_engine_backends_agree_with_a_painting(tiny_linear, tmp_path, wave_path, monkeypatch):
    from percept.inference.engine import Engine
    from percept.inference.export import export_onnx

    path, _ = tiny_linear
    export_onnx(path, path.with_suffix(".onnx"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    photo = _photo(72).resize((72, 60))
    outs = {}
    backends = ["onnx", "torch"]
    try:
        import openvino  # noqa: F401

        backends.append("openvino")
    except ImportError:
        pass
    for b in backends:
        e = Engine(path, backend=b, style=str(wave_path), precision="fp32" if b == "openvino" else "auto")
        assert e.name == "lin+wave.jpg" and e.style == "wave.jpg"
        outs[b] = np.asarray(e(photo), np.float32)
        assert outs[b].shape == (60, 72, 3)
    for b in backends[1:]:
        assert np.abs(outs[b] - outs["onnx"]).max() <= 2, b  # uint8 pixels: rounding at most
    with pytest.raises(PerceptError, match=r"is a linear style model: give it a painting \(`style` PAINTING\)$"):
        Engine(path)
    with pytest.raises(PerceptError, match=r"^style= \(a painting\) is for the linear style model"):
        Engine("wave_rt", style=str(wave_path))
    with pytest.raises(PerceptError, match=r"the style image is one flat colour"):
        Engine(path, style=Image.new("RGB", (64, 64), (10, 20, 30)))


def test_live_commands(tiny_linear, tmp_path, wave_path, painting_path, monkeypatch):
    """`video --style` and `webcam --style` (headless, a clip played as the camera) run the linear model;
    bad combinations are one line and leave nothing behind."""
    import cv2
    from skimage import data

    from percept.clips import camera_clip

    path, _ = tiny_linear
    monkeypatch.setenv("PERCEPT_USER_MODELS", str(path.parent))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from percept.inference.export import export_onnx

    export_onnx(path, path.with_suffix(".onnx"))
    clip = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 12, (80, 64))
    for f in camera_clip(data.astronaut(), frames=6, size=(80, 64)):
        w.write(f[..., ::-1])
    w.release()
    run = lambda *a: subprocess.run([sys.executable, "-m", "percept", *a], capture_output=True, text=True)  # noqa: E731
    r = run("video", str(clip), "-o", str(tmp_path / "v.mp4"), "--style", str(wave_path), "--model", str(path),
            "--quiet")
    assert r.returncode == 0, r.stderr
    assert "6 frames" in r.stdout and "lin+wave.jpg" in r.stdout
    r = run("webcam", "--source", str(clip), "--headless", "-o", str(tmp_path / "w.mp4"), "--style", str(wave_path),
            "--style", str(painting_path), "--model", str(path), "--frames", "4", "--size", "64")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "w.mp4").stat().st_size > 0
    for args, msg in (
        (["video", str(clip), "-o", str(tmp_path / "x.mp4"), "--style", str(wave_path), "--model", "wave_rt"],
         "--style PAINTING runs the linear style model; 'wave_rt' is a per-style network (give --model or --style, "
         "not both)"),
        (["video", str(clip), "-o", str(tmp_path / "x.mp4")], "give --model NAME (see `percept models`) or --style PAINTING"),
        (["video", str(clip), "-o", str(tmp_path / "x.mp4"), "--style", str(wave_path), "--style", str(wave_path),
          "--model", str(path)], "video takes one --style painting"),
    ):
        r = run(*args)
        assert r.returncode == 2 and r.stderr.strip() == f"percept: error: {msg}", (args, r.stderr)
    assert not (tmp_path / "x.mp4").exists()


def test_teacher_route_distils_then_fine_tunes(tiny_linear, tmp_path, small_data, painting_path, monkeypatch):
    """`train-style --teacher linear`: the student learns the teacher's pictures, then the perceptual losses; one
    model and one card come out (the student's scratch folder is gone), naming the teacher and both phases."""
    from percept.inference.anystyle import Teacher
    from percept.models.transformer import load_style_network
    from percept.training import fast
    from percept.training.configs import StyleTrainConfig

    path, _ = tiny_linear
    monkeypatch.setattr(fast, "PAIRS", 8)
    monkeypatch.setattr(fast, "DISTILL_ITERATIONS", 6)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path.parent / f"{tmp_path.name}_cache"))
    path.with_suffix(".onnx").unlink(missing_ok=True)
    teacher = Teacher("linear", str(painting_path), "cpu", model=str(path))  # the tiny one: a fast test
    assert teacher.card["name"] == "lin" and "via torch" in teacher.runtime  # no .onnx: PyTorch
    try:
        import openvino  # noqa: F401
    except ImportError:
        openvino = None
    if openvino is not None:  # with its .onnx, the painting baked in and run by OpenVINO: the same pictures
        from percept.inference.export import export_onnx

        export_onnx(path, path.with_suffix(".onnx"))
        fast_teacher = Teacher("linear", str(painting_path), "cpu", model=str(path))
        assert fast_teacher.runtime.startswith("lin+") and "via openvino" in fast_teacher.runtime
        x = torch.rand(3, 3, 40, 48)
        a, b = teacher(x), fast_teacher(x)
        assert a.shape == b.shape == x.shape and float((a - b).abs().mean()) < 0.01, float((a - b).abs().mean())
        teacher = fast_teacher
        path.with_suffix(".onnx").unlink()
    cfg = StyleTrainConfig(style=str(painting_path), data=str(small_data), out=str(tmp_path), name="fast",
                           arch="rt", image_size=32, batch_size=2, iterations=3, style_size=64, teacher="linear",
                           checkpoint_every=3, preview_every=3, log_every=1, holdout_every=3)
    out = fast.train_style_from_teacher(cfg, teacher, teacher.card, progress=False)
    model, card = load_style_network(out)
    assert card["teacher"]["method"] == "linear" and card["teacher"]["pictures"] == 8
    assert card["teacher"]["runtime"] == teacher.runtime
    assert card["distillation"]["iterations"] == 6 and card["iterations"] == 3
    weight = card["style_weight"]["value"]  # not given: balanced at the distilled network, and recorded
    assert card["style_weight"]["chosen"].startswith("balanced") and 0.5 <= weight <= 50
    assert card["style_weight"]["chosen"].endswith(
        "then steered to content loss 0.7 during the fine-tuning (never below the balanced weight)")
    adapted = card["style_weight"]["adapted"]
    assert adapted["start"] == weight and adapted["bounds"] == [weight, 50.0] and "style_weight_adapted" not in card
    assert card["hyperparameters"]["style_weight"] == weight
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("tb")) == [
        "fast.json", "fast.pt", "fast.train.pt"]
    with torch.no_grad():
        y = model(torch.rand(1, 3, 40, 40))
    assert y.shape == (1, 3, 40, 40) and torch.isfinite(y).all()
