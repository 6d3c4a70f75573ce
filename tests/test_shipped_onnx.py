"""The shipped models' .onnx: derived from the .pt (stored once in git), made by `make models`, carried by the
wheel, and exported once on first use into the cache where an install lacks them."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from percept.checkpoint import checkpoint_digest
from percept.inference.shipped import PT_ONLY, export_missing, first_use_path, onnx_digest, wants_onnx
from percept.registry import find_model

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints"
TRACKED_LIMIT = 55 * 1000 * 1000
"""The tracked tree's ceiling (bytes), so that a GPU run can carry its data beside the checkout (the device takes
64 MiB in all). It is 54.7 MB: 52.1 MB of shipped .pt weights and cards (the five largest stored deflated by
scripts/pack_checkpoints.py), 2.6 MB of code and docs; the .onnx (52.7 MB more) are not committed."""


def _copy(names_suffixes: list[tuple[str, str]], folder: Path, rename: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, suffix in names_suffixes:
        shutil.copy(SHIPPED / f"{name}{suffix}", folder / f"{(rename or {}).get(name, name)}{suffix}")
    return folder


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> tuple[Path, list[str]]:
    """A folder of shipped .pt (an fp16-stored style network, the fp32-stored decoder, and a .pt-only model)
    after export_missing: (folder, the names it exported)."""
    folder = _copy([("wave_rt", ".pt"), ("wave_rt", ".json"), ("decoder_relu1_1", ".pt"),
                    ("decoder_relu1_1", ".json")], tmp_path_factory.mktemp("made"))
    shutil.copy(SHIPPED / "decoder_relu1_1.pt", folder / "decoder_relu4_1_adain.pt")  # a stand-in, by name
    lines: list[str] = []
    done = export_missing(folder, log=lines.append)
    assert len(lines) == len(done)
    return folder, [name for name, _ in done]


def test_make_models_exports_what_is_missing_with_the_shipped_settings(made):
    import onnx

    folder, exported = made
    assert exported == ["decoder_relu1_1", "wave_rt"]
    assert not (folder / "decoder_relu4_1_adain.onnx").exists() and "decoder_relu4_1_adain" in PT_ONLY
    for name, weights in (("wave_rt", "fp16"), ("decoder_relu1_1", "fp32")):  # as the .pt stores them
        model = onnx.load(str(folder / f"{name}.onnx"))
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["percept.weights"] == weights and meta["percept.precision"] == "fp32"
        assert model.opset_import[0].version == 18 and "percept.openvino_bf16" not in meta
        assert onnx_digest(folder / f"{name}.onnx") == checkpoint_digest(folder / f"{name}.pt")
    assert export_missing(folder, log=None) == []  # every one current: nothing is redone
    shutil.copy(folder / "wave_rt.onnx", folder / "decoder_relu1_1.onnx")  # another model's file: stale
    assert [name for name, _ in export_missing(folder, log=None)] == ["decoder_relu1_1"]
    assert onnx_digest(folder / "decoder_relu1_1.onnx") == checkpoint_digest(folder / "decoder_relu1_1.pt")


def _check_wheel():
    spec = importlib.util.spec_from_file_location("check_wheel", REPO / "scripts" / "check_wheel.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_wheel_wants_every_verified_onnx(made, tmp_path, capsys):
    folder = made[0]
    check = _check_wheel().check

    def wheel(name: str, swap: dict[str, str] | None = None, leave_out: str = "") -> Path:
        path = tmp_path / f"{name}.whl"
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("percept/py.typed", "")
            for f in sorted(folder.iterdir()):
                if f.name != leave_out:
                    z.write(folder / (swap or {}).get(f.name, f.name), f"percept/checkpoints/{f.name}")
        return path

    assert check(wheel("good"), folder) == []
    assert "3 shipped models (7 files, 2 verified .onnx)" in capsys.readouterr().out
    problems = check(wheel("no_onnx", leave_out="wave_rt.onnx"), folder)
    assert len(problems) == 1 and "missing from the wheel: wave_rt.onnx" in problems[0] and "make models" in problems[0]
    problems = check(wheel("swapped", swap={"wave_rt.onnx": "decoder_relu1_1.onnx"}), folder)
    assert len(problems) == 1 and "wave_rt.onnx (records other weights" in problems[0]


@pytest.fixture()
def bare_install(tmp_path, monkeypatch) -> Path:
    """PERCEPT_CHECKPOINTS: shipped models as .pt and cards only (no .onnx); an empty cache and user folder."""
    folder = _copy([("wave_rt", ".pt"), ("wave_rt", ".json")], tmp_path / "bare")
    monkeypatch.setenv("PERCEPT_CHECKPOINTS", str(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "user").mkdir()
    monkeypatch.setenv("PERCEPT_USER_MODELS", str(tmp_path / "user"))
    return folder


def test_a_shipped_pt_without_its_onnx_is_exported_once_into_the_cache(bare_install, tmp_path, capsys):
    from percept.inference.engine import Engine

    pt = bare_install / "wave_rt.pt"
    assert find_model("wave_rt").onnx is None
    torch_engine = Engine("wave_rt", backend="torch", device="cpu")  # the torch backend needs no .onnx
    assert not (tmp_path / "cache").exists() and capsys.readouterr().err == ""

    engine = Engine("wave_rt", device="cpu")
    target = first_use_path("wave_rt", checkpoint_digest(pt))
    assert engine.backend == "onnx" and engine.path == target
    assert target.parent == tmp_path / "cache" / "percept" / "onnx"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("percept: note: wave_rt has no .onnx") and str(target) in err
    assert onnx_digest(target) == checkpoint_digest(pt)  # exported (and checked) from this .pt
    x = np.random.default_rng(0).random((1, 3, 37, 52), dtype=np.float32)
    assert np.abs(engine.run(x) - torch_engine.run(x)).max() < 1e-3

    again = Engine("wave_rt", device="cpu")  # the cached file: no second export, no second note
    assert again.path == target and capsys.readouterr().err == ""
    assert not list(bare_install.glob("*.onnx"))  # the shipped folder is left as it was


def test_a_cache_that_cannot_be_written_falls_back_to_pytorch(bare_install, tmp_path, monkeypatch, capsys):
    from percept.inference.engine import Engine

    (tmp_path / "not_a_folder").write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not_a_folder"))
    engine = Engine("wave_rt", device="cpu")
    assert engine.backend == "torch"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not export wave_rt to ONNX" in err and "Traceback" not in err


def test_the_checkout_has_every_shipped_onnx_current():
    """`make models` (run by make install/test/demo/wheel) has exported every shipped .onnx from its .pt."""
    from percept.checkpoint import load_checkpoint

    for pt in sorted(SHIPPED.glob("*.pt")):
        if pt.name.endswith(".train.pt") or not wants_onnx(pt.stem, load_checkpoint(pt)["kind"]):
            continue
        onnx_path = pt.with_suffix(".onnx")
        assert onnx_path.is_file(), f"{onnx_path} is missing: run `make models`"
        assert onnx_digest(onnx_path) == checkpoint_digest(pt), f"{onnx_path} is stale: run `make models`"


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True)


def test_the_tracked_tree_stores_each_model_once():
    if shutil.which("git") is None or _git("rev-parse", "--is-inside-work-tree").returncode != 0:
        pytest.skip("not a git checkout")
    tracked = [f for f in _git("ls-files", "-z").stdout.decode().split("\0") if f]
    assert not [f for f in tracked if f.startswith("checkpoints/") and f.endswith(".onnx")]
    assert _git("check-ignore", "-q", "checkpoints/starry_night.onnx").returncode == 0
    size = sum((REPO / f).stat().st_size for f in tracked if (REPO / f).is_file())
    assert size < TRACKED_LIMIT, f"the tracked tree is {size / 1e6:.1f} MB"


def test_the_wheel_still_takes_the_onnx_files():
    tomllib = pytest.importorskip("tomllib")
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "*.onnx" in data["percept.checkpoints"]
