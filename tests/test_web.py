"""The browser export: ``percept export MODEL... --web DIR``, served from localhost and run by real
headless Chromium (its self-test against onnxruntime's reference, the webcam path with Chromium's fake
camera), the server's isolation headers, and the page's and the command's errors."""

from __future__ import annotations

import json
import os
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


def test_export_web_replaces_its_own_site(site, tmp_path):  # issue 30, row 4: and nothing it did not write
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("outside")
    out = tmp_path / "again"
    shutil.copytree(site, out)
    manifest = json.loads((out / MANIFEST).read_text())
    assert sorted(manifest["files"]) == sorted(str(p.relative_to(out)) for p in out.rglob("*")
                                               if p.is_file() and p.name != MANIFEST)
    del manifest["files"]  # an export from before the list: its layout says what it wrote
    (out / MANIFEST).write_text(json.dumps(manifest))
    (out / "models" / "mine.onnx").write_bytes(b"not percept's")
    (out / "notes.txt").write_text("mine")
    (out / "photos").mkdir()
    (out / "photos" / "a.jpg").write_bytes(b"jpeg")
    os.symlink(outside, out / "linked")
    os.symlink(outside / "keep.txt", out / "keep-link")
    before = {p.name for p in out.iterdir()}
    r = export_web([MODELS[0]], out, ort_web=find_ort_web())
    assert [m["name"] for m in r.models] == [MODELS[0]]
    assert not (out / "models" / f"{MODELS[1]}.onnx").exists()  # the previous export's model it no longer has
    assert not (out / "models" / f"{MODELS[1]}.reference.f32").exists()
    assert (out / "models" / "mine.onnx").read_bytes() == b"not percept's"
    assert (out / "notes.txt").read_text() == "mine" and (out / "photos" / "a.jpg").read_bytes() == b"jpeg"
    assert os.readlink(out / "linked") == str(outside) and os.readlink(out / "keep-link") == str(outside / "keep.txt")
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"] and (outside / "keep.txt").read_text() == "outside"
    assert {p.name for p in out.iterdir()} == before  # no temporary folder left inside
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again", "outside"]
    files = json.loads((out / MANIFEST).read_text())["files"]
    assert f"models/{MODELS[0]}.onnx" in files and "notes.txt" not in files and "models/mine.onnx" not in files


def test_export_web_into_a_site_refuses_what_it_did_not_write(site, tmp_path):  # issue 30, row 4
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("outside")
    # a models/ folder that is a link out of the site: nothing is written through it
    linked = tmp_path / "linked"
    shutil.copytree(site, linked)
    shutil.move(str(linked / "models"), str(outside / "models"))
    os.symlink(outside / "models", linked / "models")
    # a file the export would write that the previous export did not (not in its manifest)
    foreign = tmp_path / "foreign"
    shutil.copytree(site, foreign)
    manifest = json.loads((foreign / MANIFEST).read_text())
    manifest["files"] = [f for f in manifest["files"] if MODELS[1] not in f]
    manifest["files"] += ["../outside/keep.txt", "/etc/hostname", "models/../../outside/keep.txt", 7]
    (foreign / MANIFEST).write_text(json.dumps(manifest))
    snapshot = {p: sorted(str(f.relative_to(p)) for f in p.rglob("*")) for p in (linked, foreign, outside)}
    cases = [
        (linked, [MODELS[0]], f"{linked}: models/{MODELS[0]}.onnx would be written through a link or a file in the "
                              "way; the export replaces only what a previous export wrote (move it away)"),
        (foreign, [MODELS[1]], f"{foreign / 'models' / (MODELS[1] + '.onnx')}: not written by a previous percept "
                               f"export (not in its {MANIFEST}); the export replaces only what it wrote (move it away)"),
    ]
    for out, models, message in cases:
        r = _percept("export", *models, "--web", str(out))
        assert r.returncode == 2 and r.stderr == f"percept: error: {message}\n", r.stderr
    # the crafted entries outside the folder are never removed
    export_web([MODELS[0]], foreign, ort_web=find_ort_web())
    assert (outside / "keep.txt").read_text() == "outside" and Path("/etc/hostname").exists()
    assert (foreign / "models" / f"{MODELS[1]}.onnx").exists()  # not listed: kept
    assert {p: sorted(str(f.relative_to(p)) for f in p.rglob("*")) for p in (linked, outside)} == \
        {p: snapshot[p] for p in (linked, outside)}


# ------------------------------------------------------------------- issue 30: the server and the export's folder

def _mini_site(folder: Path) -> Path:
    """A site the server accepts (a percept models.json) without the slow export: a page and two folders."""
    folder.mkdir()
    (folder / MANIFEST).write_text(json.dumps({"percept": "test", "models": []}))
    (folder / "index.html").write_text("<p>the page</p>")
    (folder / "plain").mkdir()
    (folder / "plain" / "a.txt").write_text("inside")
    (folder / "withindex").mkdir()
    (folder / "withindex" / "index.html").write_text("<p>sub page</p>")
    return folder


def _get(port: int, path: str, host: str | None = None) -> tuple[int, dict, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host if host is not None else f"127.0.0.1:{port}")
        conn.endheaders()
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.fixture()
def mini_server(tmp_path):
    """A real server on 127.0.0.1 for a small site with real symlinks: to a file and a folder outside it
    (``x``, ``d``), through a folder link to a file outside (``d/secret.txt``), and one inside (``alias``)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET")
    site = _mini_site(tmp_path / "site")
    os.symlink(outside / "secret.txt", site / "x")
    os.symlink(outside, site / "d")
    os.symlink(site / "index.html", site / "alias")
    os.symlink("/etc/passwd", site / "passwd")
    server, url = serve_in_background(site)
    try:
        yield server.server_address[1], site
    finally:
        server.shutdown()
        server.server_close()


def test_server_answers_only_inside_its_folder(mini_server):  # issue 30, row 1
    port, site = mini_server
    for path in ("/x", "/d/", "/d", "/d/secret.txt", "/passwd", "/plain/", "/plain", "/nothing", "/index.html/",
                 "/%2e%2e/outside/secret.txt", "/../outside/secret.txt", "/d%2fsecret.txt"):
        status, headers, body = _get(port, path)
        assert status == 404, (path, status, body[:200])
        assert b"SECRET" not in body and b"root:" not in body and b"a.txt" not in body, path
    assert _get(port, "/index.html")[2] == b"<p>the page</p>"
    assert _get(port, "/")[2] == b"<p>the page</p>"
    assert _get(port, "/alias")[2] == b"<p>the page</p>"  # a link that stays inside is followed
    assert _get(port, "/plain/a.txt")[2] == b"inside"
    status, headers, _ = _get(port, "/withindex")
    assert status == 301 and headers["location"] == "/withindex/"
    assert _get(port, "/withindex/")[2] == b"<p>sub page</p>"


def test_server_answers_only_its_own_host_names(mini_server):  # issue 30, row 1: DNS rebinding
    port, _ = mini_server
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST:{port}"):
        status, headers, body = _get(port, "/index.html", host)
        assert status == 200 and body == b"<p>the page</p>", host
        assert headers["server"] == "percept"
        assert "python" not in " ".join(headers.values()).lower()
    for host in (f"evil.example:{port}", "evil.example", f"localhost.evil.example:{port}", f"127.0.0.1:{port + 1}",
                 "127.0.0.1", f"10.1.2.3:{port}", f"user@127.0.0.1:{port}", ""):
        status, headers, body = _get(port, "/index.html", host)
        assert status == 403 and b"the page" not in body, host
        assert headers["server"] == "percept"


def test_server_answers_a_nul_in_the_path_without_a_traceback(mini_server, capfd):  # issue 30, row 13
    port, _ = mini_server
    for path in ("/a%00b", "/index.html%00", "/index.html%00.png", "/%00/", "/%ED%A0%80", "/%ff"):
        status, _, body = _get(port, path)
        assert status in (400, 404) and b"the page" not in body, (path, status)
    assert _get(port, "/index.html")[0] == 200  # still answering
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ValueError" not in err, err


def test_serve_web_bad_ports_are_one_line(tmp_path):  # issue 30, row 12
    import socket

    site = _mini_site(tmp_path / "site")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        cases = [
            (["serve-web", str(site), "--port", "99999"],
             "percept serve-web: error: argument --port: a port is from 0 to 65535, got 99999"),
            (["serve-web", str(site), "--port", "-1"],
             "percept serve-web: error: argument --port: a port is from 0 to 65535, got -1"),
            (["serve-web", str(site), "--port", "http"],
             "percept serve-web: error: argument --port: expected a port number, got 'http'"),
            (["serve-web", str(site), "--port", str(busy)],
             f"percept: error: cannot serve on 127.0.0.1:{busy}: the port is in use"),
        ]
        for args, message in cases:
            r = _percept(*args)
            assert r.returncode == 2 and r.stderr == message + "\n", (args, r.stderr)
    from percept.inference.web import serve

    with pytest.raises(PerceptError, match="port 70000: give a port from 0 to 65535"):
        serve(site, port=70000)


def _read_only_place(tmp_path: Path) -> Path:
    """A read-only tmpfs (EROFS for root too), or a folder without write permission for others."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555)
        return ro
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)],
                                                       capture_output=True).returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here")
    return ro


def test_check_web_screenshots_into_a_file_or_a_read_only_place(tmp_path):  # issue 30, row 11
    site = _mini_site(tmp_path / "site")
    started = tmp_path / "browser-started"
    fake = tmp_path / "chromium"
    fake.write_text(f"#!/bin/sh\ntouch {started}\nexit 1\n")
    fake.chmod(0o755)
    a_file = tmp_path / "shots.png"
    a_file.write_bytes(b"mine")
    ro = _read_only_place(tmp_path)
    try:
        cases = [
            ([str(a_file)], f"percept: error: --screenshots {a_file}: a file, not a folder (give the folder to save "
                            "the pages' PNGs in)"),
            ([str(a_file / "sub")], f"percept: error: --screenshots {a_file / 'sub'}: {a_file} is a file, not a folder "
                                    "(give the folder to save the pages' PNGs in)"),
            ([str(ro / "shots")], f"percept check-web: error: argument --screenshots: {ro}: cannot write there (a "
                                  "read-only filesystem, or no permission)"),
        ]
        for shots, message in cases:
            r = subprocess.run([sys.executable, "-m", "percept.cli", "check-web", str(site), "--screenshots", *shots],
                               capture_output=True, text=True, env={**os.environ, "PERCEPT_CHROMIUM": str(fake)})
            assert r.returncode == 2 and r.stderr == message + "\n", (shots, r.stderr)
        assert not started.exists()  # refused before the browser starts
        assert a_file.read_bytes() == b"mine" and sorted(p.name for p in ro.iterdir()) == []
        with pytest.raises(PerceptError, match="a file, not a folder"):
            check_web(site, camera=False, screenshots=a_file)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(ro)], capture_output=True)
