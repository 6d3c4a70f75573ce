"""The installable package: where models are found (shipped, user folder, override), what a broken
or missing model folder says, the wheel's contents and the float16 storage of the shipped models, and
one engine behind the API and the CLI (the same pixels)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import skimage.data
import torch
from PIL import Image

import percept
from percept.cli import main
from percept.errors import PerceptError
from percept.registry import ModelKind, find_model, list_models, shipped_dir, user_dir

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints"


@pytest.fixture()
def cat_jpg(tmp_path) -> Path:
    path = tmp_path / "cat.jpg"
    Image.fromarray(skimage.data.chelsea()).resize((150, 100)).save(path, quality=92)
    return path


@pytest.fixture()
def user_models(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "user-models"
    folder.mkdir()
    monkeypatch.setenv("PERCEPT_USER_MODELS", str(folder))
    return folder


def copy_model(name: str, folder: Path, new_name: str | None = None) -> None:
    for suffix in (".pt", ".onnx", ".json"):
        shutil.copy(SHIPPED / f"{name}{suffix}", folder / f"{new_name or name}{suffix}")


def one_line_error(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ----------------------------------------------------------------------------------- where models live

def test_source_checkout_finds_the_repository_checkpoints(monkeypatch):
    monkeypatch.delenv("PERCEPT_CHECKPOINTS", raising=False)
    assert shipped_dir().resolve() == SHIPPED.resolve()
    names = {m.name for m in list_models(source="shipped")}
    assert {"starry_night", "starry_night_rt", "wave", "decoder_relu3_1"} <= names


def test_user_folder_defaults_to_the_xdg_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("PERCEPT_USER_MODELS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert user_dir() == tmp_path / "cache" / "percept" / "models"


def test_a_user_model_is_listed_and_found_by_name(user_models, cat_jpg, tmp_path, capsys):
    copy_model("wave_rt", user_models, "my_wave")
    (user_models / "my_wave.train.pt").write_bytes(b"training state is not a model")
    entry = find_model("my_wave")
    assert entry.source == "user" and entry.pt and entry.onnx and entry.kind == ModelKind.STYLE.value
    assert [m.name for m in list_models(source="user")] == ["my_wave"]
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("my_wave "))
    assert "user" in row and "pt+onnx" in row and f"user models: {user_models}: 1" in out
    out_png = tmp_path / "o.png"
    assert main(["stylize", str(cat_jpg), "--model", "my_wave", "-o", str(out_png), "--quiet"]) == 0
    assert Image.open(out_png).size == (150, 100)


def test_shipped_names_come_first(user_models):
    copy_model("wave_rt", user_models, "starry_night_rt")
    assert find_model("starry_night_rt").source == "shipped"
    assert [m.source for m in list_models() if m.name == "starry_night_rt"] == ["shipped", "user"]


def test_a_broken_user_card_is_one_line(user_models, capsys):
    copy_model("wave_rt", user_models, "broken")
    (user_models / "broken.json").write_text('{"kind": "style-transformer", ')
    err = one_line_error(capsys, ["models"])
    assert "broken.json: broken model card" in err


def test_an_override_that_is_not_a_folder_is_one_line(monkeypatch, tmp_path, cat_jpg, capsys):
    monkeypatch.setenv("PERCEPT_CHECKPOINTS", str(tmp_path / "nowhere"))
    err = one_line_error(capsys, ["stylize", str(cat_jpg), "--model", "starry_night", "-o", str(tmp_path / "o.png")])
    assert "PERCEPT_CHECKPOINTS=" in err and "no such folder" in err
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("PERCEPT_CHECKPOINTS", str(tmp_path / "afile"))
    assert "is not a folder" in one_line_error(capsys, ["models"])


def test_an_install_without_its_models_says_so(monkeypatch, tmp_path, cat_jpg, capsys, user_models):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PERCEPT_CHECKPOINTS", str(empty))
    err = one_line_error(capsys, ["stylize", str(cat_jpg), "--model", "starry_night", "-o", str(tmp_path / "o.png")])
    assert "no shipped models are installed" in err and "PERCEPT_CHECKPOINTS" in err
    err = one_line_error(capsys, ["demo", "-o", str(tmp_path / "demo"), "--quiet"])
    assert "no shipped style models" in err
    assert not (tmp_path / "demo").exists() and not (tmp_path / "o.png").exists()
    assert main(["models"]) == 1
    assert "no models found" in capsys.readouterr().out


def test_a_near_miss_gets_a_suggestion(cat_jpg, tmp_path, capsys):
    err = one_line_error(capsys, ["stylize", str(cat_jpg), "--model", "starry_nite", "-o", str(tmp_path / "o.png")])
    assert "unknown model 'starry_nite' (did you mean 'starry_night'?); models: " in err


def test_a_path_that_is_no_model_file(tmp_path, cat_jpg, capsys):
    err = one_line_error(capsys, ["stylize", str(cat_jpg), "--model", str(cat_jpg), "-o", str(tmp_path / "o.png")])
    assert "not a model file" in err


# ----------------------------------------------------------------------------------- one engine

@pytest.mark.parametrize("backend", ["auto", "torch"])
def test_api_and_cli_give_identical_pixels(cat_jpg, tmp_path, backend):
    api = percept.stylize(cat_jpg, "starry_night_rt", size=120, strength=0.7, preserve_color=True, backend=backend)
    out = tmp_path / "cli.png"
    assert main(["stylize", str(cat_jpg), "--model", "starry_night_rt", "--size", "120", "--strength", "0.7",
                 "--preserve-color", "--backend", backend, "-o", str(out), "--quiet"]) == 0
    a, b = np.asarray(api), np.asarray(Image.open(out))
    assert a.shape == b.shape == (80, 120, 3)
    assert (a == b).all()


def test_the_api_runs_on_the_engine_and_both_backends_agree(cat_jpg):
    from percept.inference.engine import Engine
    from percept.inference.stylizer import _cached, open_stylizer

    onnx_img = np.asarray(percept.stylize(cat_jpg, "wave_rt", size=96), dtype=int)
    assert _cached.cache_info().currsize >= 1  # opened once, then reused
    opened = open_stylizer("wave_rt")
    assert isinstance(opened.engine, Engine) and opened.backend == "onnx"
    torch_img = np.asarray(open_stylizer("wave_rt", backend="torch")(cat_jpg, size=96), dtype=int)
    assert np.abs(onnx_img - torch_img).max() <= 1


def test_strength_and_colour_are_one_implementation():
    """The video path (arrays) and the image path (PIL) give the same pixels."""
    from percept.images import blend, finish_frame, preserve_color

    rng = np.random.default_rng(0)
    styl, photo = (rng.integers(0, 256, (20, 30, 3), dtype=np.uint8) for _ in range(2))
    pil = np.asarray(blend(preserve_color(Image.fromarray(styl), Image.fromarray(photo)), Image.fromarray(photo), 0.6))
    assert (pil == finish_frame(styl, photo, 0.6, True)).all()
    assert (finish_frame(styl, photo, 0.0) == photo).all() and (finish_frame(styl, photo, 1.0) == styl).all()
    with pytest.raises(PerceptError, match="strength must be between 0 and 1"):
        finish_frame(styl, photo, 1.5)


# ----------------------------------------------------------------------------------- storage

@pytest.mark.parametrize("name", ["starry_night", "wave_rt", "decoder_relu2_1"])
def test_shipped_models_store_their_weights_in_float16(name):
    state = torch.load(SHIPPED / f"{name}.pt", map_location="cpu", weights_only=True)["state_dict"]
    big = [v for v in state.values() if v.is_floating_point() and v.numel() >= 64]
    assert big and all(v.dtype == torch.float16 for v in big)
    model = onnx.load(str(SHIPPED / f"{name}.onnx"))
    floats = [t for t in model.graph.initializer if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
              and int(np.prod(t.dims)) >= 64]
    assert floats and all(t.data_type == onnx.TensorProto.FLOAT16 for t in floats)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["percept.weights"] == "fp16" and meta["percept.precision"] == "fp32"
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_fp16_weight_export_halves_the_file_and_keeps_fp32_arithmetic(tmp_path):
    from percept.checkpoint import save_style_model
    from percept.inference.export import export_onnx
    from percept.models.transformer import build_transformer

    torch.manual_seed(0)  # a freshly initialised float32 network, as a user's own would be
    net = build_transformer({"arch": "johnson", "channels": [16, 32, 48], "n_residual": 2})
    src = save_style_model(net, {"name": "m32"}, tmp_path, "m32")
    full = export_onnx(src, tmp_path / "full.onnx")
    half = export_onnx(src, tmp_path / "half.onnx", fp16_weights=True)
    assert full.weights == "fp32" and half.weights == "fp16" and half.precision == "fp32"
    assert half.bytes < 0.6 * full.bytes
    assert half.max_abs_diff <= 1e-3      # against the network with its weights rounded to float16
    assert 0 < half.rounding_diff < 1e-2  # what the rounding itself moved (images in [0, 1])
    casts = [n for n in onnx.load(str(tmp_path / "half.onnx")).graph.node if n.op_type == "Cast"]
    assert len(casts) >= 10


# ----------------------------------------------------------------------------------- the wheel

def test_pyproject_lists_every_subpackage():
    """setuptools is given an explicit package list (to map checkpoints/ into the wheel): a new
    subpackage that is not in it would be missing from the wheel."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "percept").rglob("__init__.py")}
    assert on_disk | {"percept.checkpoints"} == listed
    assert config["package-dir"]["percept.checkpoints"] == "checkpoints"


@pytest.mark.skipif(sys.platform != "linux", reason="the wheel check runs on Linux")
def test_the_wheel_carries_every_shipped_model(tmp_path):
    """A real build of the wheel (no network: setuptools from this environment)."""
    import subprocess

    pytest.importorskip("setuptools")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                          "-w", str(tmp_path), str(REPO)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    wheel, = tmp_path.glob("percept-*.whl")
    check = subprocess.run([sys.executable, str(REPO / "scripts" / "check_wheel.py"), str(wheel)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "15 shipped models" in check.stdout  # 8 style networks, 6 decoders, the linear style model
    shutil.rmtree(REPO / "build", ignore_errors=True)


def test_no_test_reads_outside_the_repository():
    """A clone with nothing beside it runs every test: no test names the data folder next to the checkout."""
    outside = ("..", "/".join(("shared", "data")), "PERCEPT" + "_DATA")
    hits = [f"{p.name}: {word}" for p in (REPO / "tests").glob("*.py") for word in outside[1:]
            if word in p.read_text()]
    assert not hits, hits


def test_a_model_trained_without_out_lands_in_the_user_folder(user_models, small_data, painting_path, cat_jpg,
                                                               tmp_path, capsys):
    code = main(["train-style", "--style", str(painting_path), "--data", str(small_data), "--name", "mine",
                 "--image-size", "32", "--batch-size", "1", "--iterations", "2", "--channels", "4,8,8",
                 "--residual-blocks", "1", "--style-size", "64", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert (user_models / "mine.pt").is_file() and (user_models / "mine.json").is_file()
    assert [m.name for m in list_models(source="user")] == ["mine"]  # not its .train.pt
    out = tmp_path / "o.png"
    assert main(["stylize", str(cat_jpg), "--model", "mine", "-o", str(out), "--quiet"]) == 0
    assert Image.open(out).size == (150, 100)
