"""The browser export: ``percept export MODEL... --web DIR``, served from localhost and run by real
headless Chromium (its self-test against onnxruntime's reference, the webcam path with Chromium's fake
camera), the server's isolation headers, and the page's and the command's errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from percept.errors import PerceptError
from percept.inference.browser import Browser, find_chromium
from percept.inference.web import (
    MANIFEST,
    ORT_FILES,
    SELFTEST_SIZE,
    check_web,
    export_web,
    find_ort_web,
    serve_in_background,
)

MODELS = ["starry_night_rt", "wave_rt"]


def _ort_web_or_skip() -> Path:
    try:
        return find_ort_web()  # the cache, ./node_modules, or fetched once with npm
    except PerceptError as exc:
        pytest.skip(f"onnxruntime-web's npm package cannot be had here: {exc}")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    _ort_web_or_skip()
    out = tmp_path_factory.mktemp("web") / "site"
    report = export_web(MODELS, out)
    assert [m["name"] for m in report.models] == MODELS
    assert report.max_abs_diff < 1e-3
    return out


def _chromium_or_skip() -> str:
    exe = find_chromium()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install chromium); the site was checked without a browser")
    return exe


def test_site_layout_and_references(site):
    import onnxruntime as ort
    from PIL import Image

    manifest = json.loads((site / MANIFEST).read_text())
    assert manifest["onnxruntime_web"] == "1.30.0"
    assert [m["name"] for m in manifest["models"]] == MODELS
    for f in ORT_FILES:
        assert (site / "ort" / f).stat().st_size > 10_000
    assert (site / "index.html").read_text().count('id="selftest"') == 1
    photo = np.asarray(Image.open(site / "selftest.png").convert("RGB"))
    assert photo.shape == (SELFTEST_SIZE[1], SELFTEST_SIZE[0], 3)
    x = photo.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    for m in manifest["models"]:
        assert m["architecture"] == "rt" and m["min_size"] == 9
        sess = ort.InferenceSession(str(site / m["file"]), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"image": x})[0]
        ref = np.fromfile(site / m["reference"], dtype="<f4").reshape(got.shape)
        assert np.abs(got - ref).max() < 1e-5  # the reference is this file's own output on the photo
        assert 0.0 <= ref.min() and ref.max() <= 1.0 and ref.std() > 0.05


def test_server_sends_isolation_headers_and_types(site):
    server, url = serve_in_background(site)
    try:
        for path, mime in (("index.html", "text/html"), ("app.js", "text/javascript"),
                           (f"ort/{ORT_FILES[2]}", "application/wasm"), (f"ort/{ORT_FILES[0]}", "text/javascript")):
            with urllib.request.urlopen(url + path) as r:
                assert r.headers["Content-Type"].startswith(mime), path
                assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin"
                assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    finally:
        server.shutdown()
        server.server_close()


def test_selftest_and_fake_camera_in_chromium(site, tmp_path):
    _chromium_or_skip()
    r = check_web(site, camera=True, frames=8, screenshots=tmp_path)
    assert r.selftest.startswith("ok max_abs_diff="), r.selftest
    assert float(r.selftest.split()[1].split("=")[1]) <= 1e-2
    assert "backend=wasm models=2" in r.selftest
    assert r.camera.startswith("ok frames=8 "), r.camera
    assert "size=640x480" in r.camera and "threads=2" in r.camera  # isolated page: WebAssembly threads
    assert r.fps is not None and r.fps > 0
    from PIL import Image

    shot = np.asarray(Image.open(tmp_path / "camera.png").convert("RGB"))
    assert shot.shape[0] > 400 and shot.std() > 20  # the page drew the frames, not a blank page


def test_selftest_fails_on_a_wrong_reference(site, tmp_path):
    _chromium_or_skip()
    broken = tmp_path / "broken"
    shutil.copytree(site, broken)
    ref = broken / "models" / f"{MODELS[1]}.reference.f32"
    values = np.fromfile(ref, dtype="<f4")
    values[::97] += 0.05
    values.tofile(ref)
    r = check_web(broken, camera=False)
    assert r.selftest.startswith("error max_abs_diff=5.0"), r.selftest
    assert "exceeds 0.01" in r.selftest and not r.ok


def test_page_errors_are_one_clear_message(site, tmp_path):
    _chromium_or_skip()
    broken = tmp_path / "broken"
    shutil.copytree(site, broken)
    (broken / "models" / f"{MODELS[0]}.onnx").write_bytes(b"not an onnx file")
    server, url = serve_in_background(broken)
    try:
        with Browser() as b:
            b.open(url + "index.html?selftest&backend=wasm")
            text = b.wait_for_text("selftest", 120)
            assert text.startswith(f"error onnxruntime-web cannot run models/{MODELS[0]}.onnx with wasm"), text
        with Browser(["--use-fake-device-for-media-stream", "--deny-permission-prompts"]) as b:
            b.open(url + "index.html?camera&frames=3&backend=wasm")
            assert b.wait_for_text("camera-test", 60) == "error camera permission was refused"
            assert b.text("status") == "camera permission was refused"
        with Browser(["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]) as b:
            b.open(url + "index.html?camera&frames=3&backend=wasm&model=no%20such")
            assert b.wait_for_text("camera-test", 60) == (f"error no model 'no such' in this export (it has "
                                                          f"{', '.join(MODELS)})")
        with Browser() as b:  # headless Chromium has no GPU adapter
            b.open(url + "index.html?selftest&backend=webgpu")
            assert b.wait_for_text("selftest", 60) == "error this browser offers no WebGPU adapter; choose WebAssembly"
    finally:
        server.shutdown()
        server.server_close()


def _percept(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "percept.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_export_web_bad_input(site, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    cases = [
        (["export", "decoder_relu3_1", "--web", str(tmp_path / "d")],
         "percept: error: decoder_relu3_1: a 'feature-decoder' model; the web page runs style networks"),
        (["export", "starry_night_rt", "--web", str(foreign)],
         f"percept: error: {foreign}: a folder with other files in it; give a new or empty folder (or a previous "
         "--web export, which is replaced)"),
        (["export", "starry_night_rt", "starry_night_rt", "--web", str(tmp_path / "twice")],
         "percept: error: starry_night_rt: the model 'starry_night_rt' is given twice"),
        (["export", "starry_night_rt", "--web", str(tmp_path / "x"), "-o", "x.onnx"],
         "percept: error: give either -o OUT.onnx or --web DIR"),
        (["export", "starry_night_rt", "wave_rt", "-o", str(tmp_path / "x.onnx")],
         "percept: error: one model per .onnx export (2 given); --web DIR takes several"),
        (["export", "starry_night_rt", "--web", str(tmp_path / "y"), "--ort-web", str(tmp_path)],
         f"percept: error: --ort-web {tmp_path}: not onnxruntime-web's npm package (it needs "
         f"{', '.join(ORT_FILES)} in it or in its dist/)"),
        (["check-web", str(tmp_path)],
         f"percept: error: {tmp_path}: not a percept web export (no models.json; make one with percept export "
         "MODEL --web DIR)"),
    ]
    for args, message in cases:
        r = _percept(*args)
        assert r.returncode != 0 and r.stderr.strip().splitlines()[-1] == message, (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # nothing half-written beside


def test_export_web_replaces_its_own_site(site, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(site, out)
    (out / "models" / "stale.onnx").write_bytes(b"old")
    r = export_web([MODELS[0]], out, ort_web=find_ort_web())
    assert [m["name"] for m in r.models] == [MODELS[0]]
    assert not (out / "models" / "stale.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]
