"""The browser: ``percept export MODEL... --web DIR`` writes a static site that stylises in the browser.

The site (open ``index.html`` through any web server; ``percept serve-web DIR`` is one):

* ``models/NAME.onnx``: each model exported and verified against PyTorch as ``percept export`` does
  (weights stored in float16, computed in float32: half the download);
* ``ort/``: onnxruntime-web's JavaScript and WebAssembly, copied from its npm package at export time
  (no CDN: the page works offline). The package is found in ``--ort-web DIR``, ``$PERCEPT_ORT_WEB``,
  ``./node_modules/onnxruntime-web`` or percept's cache, and fetched once with ``npm pack`` into the
  cache when none has it;
* ``index.html`` and ``app.js``: the page (webcam through getUserMedia, or a dropped image; strength
  slider, colour preservation, FPS readout, a style picker; WebAssembly with SIMD and threads, WebGPU
  where the browser offers it);
* ``selftest.png`` and ``models/NAME.reference.f32``: a test photo and each model's output on it,
  computed with onnxruntime in Python at export (raw little-endian float32, NCHW).
  ``index.html?selftest`` runs every model on the photo in the browser and writes
  ``ok max_abs_diff=<value>`` (or ``error <reason>``) into the element with id ``selftest``;
* ``models.json``: what the page reads (models, sizes, the versions that made it).

WebAssembly threads need a cross-origin isolated page: the server must send
``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Embedder-Policy: require-corp``, as
:func:`serve` does; elsewhere the page runs on one thread and says so.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from percept.clips import camera_clip, write_y4m
from percept.errors import PerceptError, warn
from percept.images import check_writable, to_float
from percept.inference.browser import Browser
from percept.inference.deploy_options import CheckWebOptions, ServeWebOptions
from percept.inference.engine import session_options
from percept.inference.export import export_onnx
from percept.registry import cache_dir, find_model
from percept.version import __version__

__all__ = ["ORT_WEB_VERSION", "WebReport", "export_web", "find_ort_web", "serve"]

ORT_WEB_VERSION = "1.30.0"
"""The onnxruntime-web release percept's page is written and tested against."""
ORT_FILES = ("ort.min.mjs", "ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm")
"""What the page loads: the ES module with the WebAssembly and WebGPU backends, and its WebAssembly build
(SIMD and threads)."""
PAGE_FILES = ("index.html", "app.js")
SELFTEST_SIZE = (128, 128)
"""(width, height) of the bundled self-test photo."""
MANIFEST = "models.json"
MIME = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json",
        ".onnx": "application/octet-stream", ".f32": "application/octet-stream", ".html": "text/html; charset=utf-8",
        ".png": "image/png", ".y4m": "application/octet-stream"}


@dataclass
class WebReport:
    """What :func:`export_web` wrote."""

    folder: Path
    models: list[dict] = field(default_factory=list)
    ort_web: str = ""
    bytes: int = 0
    max_abs_diff: float = 0.0
    """Largest difference between onnxruntime and PyTorch over the exported models (the export check)."""


def _cache_dir() -> Path:
    return cache_dir() / f"onnxruntime-web-{ORT_WEB_VERSION}"


def _dist(folder: Path) -> Path | None:
    """The folder holding the page's files: ``folder`` itself, or its ``dist/`` (an npm package)."""
    for cand in (folder / "dist", folder):
        if all((cand / f).is_file() for f in ORT_FILES):
            return cand
    return None


def _package_version(dist: Path) -> str:
    try:
        return str(json.loads((dist.parent / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "unknown"


def find_ort_web(explicit: str | os.PathLike | None = None, fetch: bool = True) -> Path:
    """The folder with onnxruntime-web's files (see the module doc for where it looks); with ``fetch``,
    ``npm pack onnxruntime-web@ORT_WEB_VERSION`` into percept's cache when nothing else has them."""
    if explicit is not None:
        found = _dist(Path(explicit))
        if found is None:
            raise PerceptError(f"--ort-web {explicit}: not onnxruntime-web's npm package (it needs "
                               f"{', '.join(ORT_FILES)} in it or in its dist/)")
        return found
    env = os.environ.get("PERCEPT_ORT_WEB")
    if env:
        found = _dist(Path(env))
        if found is None:
            raise PerceptError(f"PERCEPT_ORT_WEB={env}: not onnxruntime-web's npm package (no {ORT_FILES[0]} in it "
                               "or in its dist/)")
        return found
    for cand in (Path.cwd() / "node_modules" / "onnxruntime-web", _cache_dir() / "package"):
        found = _dist(cand)
        if found is not None:
            return found
    if not fetch:
        raise PerceptError("onnxruntime-web's files are not here (see percept.inference.web)")
    return _npm_fetch()


def _npm_fetch() -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise PerceptError(f"the web page needs onnxruntime-web's files and there is no npm to fetch them: install "
                           f"Node.js (npm), or `npm install onnxruntime-web@{ORT_WEB_VERSION}` elsewhere and pass "
                           "--ort-web node_modules/onnxruntime-web")
    cache = _cache_dir()
    cache.parent.mkdir(parents=True, exist_ok=True)
    warn(f"fetching onnxruntime-web {ORT_WEB_VERSION} from the npm registry into {cache} (once)")
    with tempfile.TemporaryDirectory(dir=cache.parent) as tmp:
        try:
            r = subprocess.run([npm, "pack", f"onnxruntime-web@{ORT_WEB_VERSION}", "--silent"], cwd=tmp,
                               capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PerceptError(f"npm pack onnxruntime-web@{ORT_WEB_VERSION} failed: {exc}") from None
        tgz = next(Path(tmp).glob("onnxruntime-web-*.tgz"), None)
        if r.returncode != 0 or tgz is None:
            last = (r.stderr or r.stdout or "").strip().splitlines()
            raise PerceptError(f"npm pack onnxruntime-web@{ORT_WEB_VERSION} failed: {last[-1] if last else r.returncode}"
                               "; pass --ort-web DIR with the npm package instead")
        import tarfile

        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tgz) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith("package/") and (
                m.name == "package/package.json" or m.name.startswith("package/dist/")) and m.isfile()
                and ".." not in m.name.split("/")]
            if hasattr(tarfile, "data_filter"):  # Python < 3.10.12 has no extraction filters
                tar.extractall(unpacked, members=members, filter="data")
            else:  # the members were vetted above: regular files under package/, no ".."
                tar.extractall(unpacked, members=members)
        if _dist(unpacked / "package") is None:
            raise PerceptError(f"onnxruntime-web@{ORT_WEB_VERSION} from npm lacks {', '.join(ORT_FILES)}")
        try:
            os.replace(unpacked, cache)
        except OSError:  # another export filled the cache meanwhile: use it if it is complete
            if _dist(cache / "package") is None:
                shutil.rmtree(cache, ignore_errors=True)
                os.replace(unpacked, cache)
    found = _dist(cache / "package")
    assert found is not None
    return found


def selftest_photo() -> np.ndarray:
    """The self-test photo: scikit-image's astronaut at :data:`SELFTEST_SIZE`, uint8 HxWx3."""
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).convert("RGB").resize(SELFTEST_SIZE, Image.Resampling.LANCZOS))


def _is_percept_site(folder: Path) -> bool:
    try:
        return "percept" in json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError, TypeError):
        return False


def export_web(models: list[str | os.PathLike], out: str | os.PathLike, ort_web: str | os.PathLike | None = None,
               progress: bool = False) -> WebReport:
    """Write the browser site for ``models`` (shipped names or ``.pt`` paths) into the folder ``out``.

    The folder is built beside ``out`` and moved into place when complete; an existing percept site
    there is replaced, any other non-empty folder is refused.

    Raises:
        PerceptError: a model that is not a style network or fails the export check, onnxruntime-web's
            files not to be had, or ``out`` not a place to write the site.
    """
    import onnxruntime as ort
    from PIL import Image

    out = Path(out).resolve()  # "." has no name to build the temporary folder's from
    if not models:
        raise PerceptError("give at least one model to export for the web")
    if out.exists() and not out.is_dir():
        raise PerceptError(f"{out}: not a folder (--web takes the folder to write the site into)")
    if out.is_dir() and any(out.iterdir()) and not _is_percept_site(out):
        raise PerceptError(f"{out}: a folder with other files in it; give a new or empty folder (or a previous "
                           "--web export, which is replaced)")
    check_writable(out.parent if not out.exists() else out)
    names: list[str] = []
    for m in models:  # every model is checked before any work
        files = find_model(m)
        kind = files.card.get("kind", "style-transformer") if files.card else "style-transformer"
        if kind != "style-transformer":
            raise PerceptError(f"{m}: a '{kind}' model; the web page runs style networks")
        files.require_pt("export for the web starts from the PyTorch weights")
        name = str((files.card or {}).get("name") or Path(str(m)).stem)
        if name in names:
            raise PerceptError(f"{m}: the model '{name}' is given twice")
        names.append(name)
    dist = find_ort_web(ort_web)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = WebReport(out, ort_web=_package_version(dist))
    photo = selftest_photo()
    x = to_float(photo).transpose(2, 0, 1)[None]
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "models").mkdir()
        (tmp / "ort").mkdir()
        from tqdm import tqdm

        for m, name in tqdm(list(zip(models, names)), desc="export for the web", disable=not progress or len(models) < 2):
            onnx_file = tmp / "models" / f"{name}.onnx"
            r = export_onnx(m, onnx_file, fp16_weights=True, openvino_check=False)
            report.max_abs_diff = max(report.max_abs_diff, r.max_abs_diff)
            sess = ort.InferenceSession(str(onnx_file), session_options(), providers=["CPUExecutionProvider"])
            meta = sess.get_modelmeta().custom_metadata_map
            ref = sess.run(None, {sess.get_inputs()[0].name: x})[0].astype("<f4")
            (tmp / "models" / f"{name}.reference.f32").write_bytes(ref.tobytes())
            card = json.loads(meta.get("percept.card", "{}") or "{}")
            report.models.append({
                "name": name, "file": f"models/{name}.onnx", "reference": f"models/{name}.reference.f32",
                "style": Path(meta.get("percept.style", "")).stem, "min_size": int(meta.get("percept.min_size", 8)),
                "architecture": (card.get("architecture") or {}).get("arch", ""), "bytes": onnx_file.stat().st_size,
            })
        for f in ORT_FILES:
            shutil.copyfile(dist / f, tmp / "ort" / f)
        (tmp / "ort" / "README.txt").write_text(
            f"onnxruntime-web {report.ort_web} (MIT license, (c) Microsoft Corporation), copied from its npm package "
            "by percept export --web.\n")
        page = resources.files("percept") / "web"
        for f in PAGE_FILES:
            (tmp / f).write_bytes((page / f).read_bytes())
        Image.fromarray(photo, "RGB").save(tmp / "selftest.png")
        manifest = {"percept": __version__, "onnxruntime_web": report.ort_web, "models": report.models,
                    "selftest": {"image": "selftest.png", "width": SELFTEST_SIZE[0], "height": SELFTEST_SIZE[1],
                                 "tolerance": 1e-2}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        report.bytes = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        os.chmod(tmp, 0o755)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise PerceptError(f"{out}: cannot write the site ({exc.strerror or exc})") from None
        raise
    return report


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with the headers that make the page cross-origin isolated (WebAssembly threads)."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME}

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        if os.environ.get("PERCEPT_WEB_LOG"):
            super().log_message(format, *args)


class _Server(http.server.ThreadingHTTPServer):
    """A browser that closes a connection mid-transfer (a reload, a closed tab) is routine, not a traceback."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def serve(folder: str | os.PathLike, host: str = ServeWebOptions.host,
          port: int = ServeWebOptions.port) -> http.server.ThreadingHTTPServer:
    """A web server for the site in ``folder`` (cross-origin isolated), not yet serving: call
    ``serve_forever()``, or :func:`serve_in_background`. ``port=0`` picks a free port
    (``server.server_address[1]``)."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise PerceptError(f"{folder}: not a percept web export (no {MANIFEST}; make one with percept export MODEL --web DIR)")
    handler = functools.partial(_Handler, directory=str(folder))
    try:
        return _Server((host, port), handler)
    except OSError as exc:
        raise PerceptError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None


def serve_in_background(folder: str | os.PathLike, host: str = ServeWebOptions.host, port: int = 0):
    """(server, base URL) with the server answering in a daemon thread; ``server.shutdown()`` stops it."""
    server = serve(folder, host, port)
    threading.Thread(target=server.serve_forever, daemon=True, name="percept-web").start()
    return server, f"http://{host}:{server.server_address[1]}/"


CAMERA_SIZE = (640, 480)
"""The fake camera's frame size in :func:`check_web` (what the page asks getUserMedia for)."""


@dataclass
class WebCheck:
    """What :func:`check_web` read from the page in headless Chromium."""

    selftest: str
    camera: str = ""
    fps: float | None = None
    """Frames per second the page reported for the fake camera (640x480 through the first model)."""
    screenshots: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.selftest.startswith("ok") and (not self.camera or self.camera.startswith("ok"))


def _field(text: str, key: str) -> str | None:
    for part in text.split():
        if part.startswith(key + "="):
            return part.split("=", 1)[1]
    return None


def check_web(folder: str | os.PathLike, camera: bool = not CheckWebOptions.no_camera,
              frames: int = CheckWebOptions.frames, backend: str = CheckWebOptions.backend,
              timeout: float = CheckWebOptions.timeout, screenshots: str | os.PathLike | None = None,
              model: str | None = None) -> WebCheck:
    """Open an exported site in headless Chromium, served from localhost with the isolation headers:
    ``index.html?selftest``, then (``camera``) ``index.html?camera`` with Chromium's fake camera playing
    a generated 640x480 clip (a camera panning over a photo) for ``frames`` frames; returns what the page
    wrote. ``screenshots``: a folder for a PNG of each page."""
    if backend not in ("wasm", "webgpu", "auto"):
        raise PerceptError(f"unknown web backend '{backend}'; use wasm, webgpu or auto")
    server, url = serve_in_background(folder)
    shots = Path(screenshots) if screenshots is not None else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="percept-webcheck-") as tmp:
            with Browser() as b:
                b.open(f"{url}index.html?selftest&backend={backend}")
                text = b.wait_for_text("selftest", timeout) or f"error no answer within {timeout:g} s"
                result = WebCheck(text)
                if shots is not None:
                    result.screenshots.append(b.screenshot(shots / "selftest.png"))
            if not camera:
                return result
            from skimage import data

            clip = write_y4m(camera_clip(data.astronaut(), frames=90, size=CAMERA_SIZE), Path(tmp) / "camera.y4m")
            fake = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                    f"--use-file-for-fake-video-capture={clip}"]
            with Browser(fake) as b:
                from urllib.parse import quote

                pick = f"&model={quote(model)}" if model else ""
                b.open(f"{url}index.html?camera&frames={frames}&backend={backend}{pick}")
                result.camera = b.wait_for_text("camera-test", timeout) or f"error no answer within {timeout:g} s"
                fps = _field(result.camera, "fps")
                result.fps = float(fps) if fps else None
                if shots is not None:
                    result.screenshots.append(b.screenshot(shots / "camera.png"))
            return result
    finally:
        server.shutdown()
        server.server_close()
