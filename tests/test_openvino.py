"""The OpenVINO backend: the shipped .onnx run by real OpenVINO sessions, fp32 parity with onnxruntime,
bf16 and its quality check (recorded at export, or measured once and cached), ``--precision auto``,
and the errors of a missing OpenVINO, a CPU without bf16 and options that do not fit."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install openvino)")

from percept.errors import PerceptError  # noqa: E402
from percept.inference import openvino_backend as ovb  # noqa: E402
from percept.inference.engine import Engine  # noqa: E402


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _bf16_or_skip() -> None:
    if not ovb.bf16_supported():
        from percept.device import cpu_description

        pytest.skip(f"this CPU has no bf16 for OpenVINO ({cpu_description()})")


def _photo(h: int, w: int) -> np.ndarray:
    from PIL import Image
    from skimage import data

    im = Image.fromarray(data.chelsea()).resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(im, np.float32).transpose(2, 0, 1)[None] / np.float32(255.0)


@pytest.mark.parametrize("model", ["wave_rt", "the_scream"])
def test_fp32_agrees_with_onnxruntime(model):
    ref = Engine(model, backend="onnx")
    ov = Engine(model, backend="openvino", precision="fp32")
    assert ov.backend == "openvino" and ov.precision == "fp32" and ov.provider == "OpenVINO fp32 (CPU)"
    assert ov.name == model and ov.min_size == ref.min_size
    for h, w in ((96, 128), (61, 83), (96, 128)):  # odd sizes; the repeat reuses the compiled shape
        x = _photo(h, w)
        got, want = ov.run(x), ref.run(x)
        assert got.shape == want.shape == x.shape
        assert np.abs(got - want).max() < 1e-3
    assert len(ov._impl._compiled) == 2
    batch = np.concatenate([_photo(64, 64), _photo(64, 64)[:, :, ::-1]])
    assert np.abs(ov.run(batch) - ref.run(batch)).max() < 1e-3


def test_bf16_is_close_to_fp32_but_not_identical():
    _bf16_or_skip()
    x = _photo(128, 160)
    fp32 = Engine("the_scream_rt", backend="openvino", precision="fp32").run(x)
    bf16 = Engine("the_scream_rt", backend="openvino", precision="bf16").run(x)
    diff = np.abs(bf16 - fp32)
    psnr = 10 * np.log10(1.0 / float(np.mean(np.clip(bf16 - fp32, -1, 1) ** 2)))
    assert 0 < diff.max() < 0.2 and psnr >= ovb.BF16_MIN_PSNR


def test_auto_measures_once_caches_and_picks_bf16(tmp_path):
    _bf16_or_skip()
    e = Engine("wave_rt", backend="openvino")  # the shipped file carries no record: measured at load
    check = e._impl.check
    assert check is not None and check.photos == 8 and check.psnr >= ovb.BF16_MIN_PSNR
    assert e.precision == "bf16" and "bf16" in e.describe()
    cache = json.loads((tmp_path / "cache" / "percept" / "openvino-bf16.json").read_text())
    assert len(cache) == 1 and next(iter(cache.values()))["psnr"] == check.psnr
    entry = next(iter(cache))
    cache[entry]["psnr"] = 12.5  # the cache is what the next load believes
    (tmp_path / "cache" / "percept" / "openvino-bf16.json").write_text(json.dumps(cache))
    again = Engine("wave_rt", backend="openvino")
    assert again._impl.check.psnr == 12.5 and again.precision == "fp32"


def test_a_cache_that_cannot_be_written_costs_only_a_recheck(tmp_path, monkeypatch):
    _bf16_or_skip()
    (tmp_path / "file").write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    e = Engine("wave_rt", backend="openvino")
    assert e.precision == "bf16" and e._impl.check is not None and e._impl.check.passed


def test_export_records_the_check_and_auto_obeys_it(tmp_path):
    _bf16_or_skip()
    import onnx

    from percept.inference.export import export_onnx

    out = tmp_path / "wave_rt.onnx"
    report = export_onnx("wave_rt", out)
    assert report.bf16 is not None and report.bf16.passed
    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    recorded = json.loads(meta["percept.openvino_bf16"])
    assert recorded["passed"] is True and recorded["psnr"] == report.bf16.psnr
    assert Engine(out, backend="openvino").precision == "bf16"
    for p in proto.metadata_props:  # the same file with a failed check: auto keeps fp32, bf16 is still allowed
        if p.key == "percept.openvino_bf16":
            p.value = json.dumps({**recorded, "psnr": 20.0, "passed": False})
    failed = tmp_path / "failed.onnx"
    onnx.save(proto, str(failed))
    e = Engine(failed, backend="openvino")
    assert e.precision == "fp32" and not e._impl.check.passed
    assert Engine(failed, backend="openvino", precision="bf16").precision == "bf16"
    assert not (tmp_path / "cache" / "percept" / "openvino-bf16.json").exists()  # the record was used


def test_errors(monkeypatch):
    with pytest.raises(PerceptError, match=r"^`precision` bf16 is for the openvino backend \(`backend` openvino\)"):
        Engine("wave_rt", backend="onnx", precision="bf16")
    with pytest.raises(PerceptError, match=r"^unknown precision 'fp8'; use auto, fp32 or bf16$"):
        Engine("wave_rt", backend="openvino", precision="fp8")
    with pytest.raises(PerceptError, match=r"^the openvino backend runs on the CPU; --device cuda is for the onnx "):
        Engine("wave_rt", backend="openvino", device="cuda")
    with pytest.raises(PerceptError, match=r"^no \.onnx file for model 'decoder_relu9_9'|^unknown model"):
        Engine("decoder_relu9_9", backend="openvino")
    with pytest.raises(PerceptError, match=r"a feature decoder \(VGG19 relu3_1 features in\), not a style model"):
        Engine("decoder_relu3_1", backend="openvino")
    monkeypatch.setattr(ovb, "bf16_supported", lambda core=None: False)  # a CPU without AVX512-BF16 or AMX
    with pytest.raises(PerceptError, match=r"^--precision bf16 needs a CPU with AVX512-BF16 or AMX; this one has "
                                           r"neither \(.*\); use --precision fp32 or auto$"):
        Engine("wave_rt", backend="openvino", precision="bf16")
    e = Engine("wave_rt", backend="openvino")
    assert e.precision == "fp32" and e._impl.check is None  # auto without bf16: fp32, nothing measured
    monkeypatch.setitem(sys.modules, "openvino", None)  # OpenVINO not installed
    with pytest.raises(PerceptError, match=r"^the openvino backend needs OpenVINO: pip install openvino "):
        Engine("wave_rt", backend="openvino", precision="fp32")


def test_cli_stylize_and_video_with_openvino(tmp_path, photo_path):
    cat_jpg = photo_path
    from PIL import Image

    from percept.clips import camera_clip
    from percept.inference.video import read_clip

    outs = {}
    for backend in ("onnx", "openvino"):
        outs[backend] = tmp_path / f"{backend}.png"
        r = subprocess.run([sys.executable, "-m", "percept.cli", "stylize", str(cat_jpg), "--model", "wave_rt",
                            "--size", "96", "--backend", backend, "--precision", "fp32" if backend == "openvino" else "auto",
                            "-o", str(outs[backend])], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    a, b = (np.asarray(Image.open(outs[k]), dtype=int) for k in ("onnx", "openvino"))
    assert np.abs(a - b).max() <= 1
    r = subprocess.run([sys.executable, "-m", "percept.cli", "stylize", str(cat_jpg), "--model", "wave_rt",
                        "--precision", "bf16", "-o", str(tmp_path / "x.png")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip() == ("percept: error: --precision bf16 is for the openvino backend "
                                                      "(--backend openvino); for onnxruntime, export the precision you "
                                                      "want (percept export --fp16 or --int8)")
    import cv2
    from skimage import data

    src = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 12, (96, 64))
    for f in camera_clip(data.astronaut(), frames=6, size=(96, 64)):
        w.write(f[..., ::-1])
    w.release()
    import percept

    res = percept.stylize_video(src, tmp_path / "out.mp4", "wave_rt", backend="openvino", precision="fp32")
    assert res["frames"] == 6 and len(read_clip(tmp_path / "out.mp4")) == 6


def test_openvino_telemetry_is_off(tmp_path):
    """Importing OpenVINO starts its usage telemetry (a client id and counters under ``~/intel``):
    a real OpenVINO load and run through percept leaves HOME untouched."""
    home = tmp_path / "home"
    home.mkdir()
    photo = tmp_path / "in.png"
    from PIL import Image

    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(photo)
    env = {**__import__("os").environ, "HOME": str(home)}
    env.pop("CI", None)  # openvino-telemetry stays quiet in CI on its own: test percept, not that
    r = subprocess.run([sys.executable, "-m", "percept.cli", "stylize", str(photo), "--model", "wave_rt", "--size",
                        "32", "--backend", "openvino", "--precision", "fp32", "-o", str(tmp_path / "out.png")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.png").is_file()
    assert not (home / "intel").exists(), sorted(p.name for p in home.iterdir())
