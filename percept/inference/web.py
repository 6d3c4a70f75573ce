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

import errno
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


def _read_manifest(folder: Path) -> dict | None:
    """``folder``'s ``models.json`` when it is a percept export's (a regular file, not a link), else None."""
    path = folder / MANIFEST
    try:
        if path.is_symlink() or not path.is_file():
            return None
        manifest = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return manifest if isinstance(manifest, dict) and "percept" in manifest else None


def _is_percept_site(folder: Path) -> bool:
    return _read_manifest(folder) is not None


def _site_path(entry: object) -> str | None:
    """A manifest's entry as a plain relative path inside the site (``models/a.onnx``), or None when it is
    anything else (absolute, ``..``, a NUL): the manifest is read from disk, so it is not trusted."""
    from pathlib import PurePosixPath

    if not isinstance(entry, str) or not entry or "\0" in entry or "\\" in entry or entry.startswith("/"):
        return None
    parts = PurePosixPath(entry).parts
    if not parts or any(part in (".", "..") for part in parts) or entry != "/".join(parts):
        return None
    return entry


def _site_files(names: list[str]) -> list[str]:
    """What an export of the models ``names`` writes, relative to its folder (``models.json`` last)."""
    return [*PAGE_FILES, "selftest.png", *(f"ort/{f}" for f in (*ORT_FILES, "README.txt")),
            *(f"models/{n}{ext}" for n in names for ext in (".onnx", ".reference.f32")), MANIFEST]


def _owned_files(manifest: dict) -> set[str]:
    """The files a previous export says it wrote: its ``files`` list, or (an export from before the list)
    the fixed layout plus each model's files."""
    listed: list = manifest.get("files")  # type: ignore[assignment]
    if not isinstance(listed, list):
        listed = _site_files([])
        for m in manifest.get("models") or []:
            if isinstance(m, dict):
                listed += [m.get("file"), m.get("reference")]
    return {p for p in map(_site_path, listed) if p is not None} | {MANIFEST}


def _plain_parents(folder: Path, rel: str) -> bool:
    """Whether every folder between ``folder`` and ``folder/rel`` is a real folder or missing (no link, no file)."""
    at = folder
    for part in rel.split("/")[:-1]:
        at = at / part
        if at.is_symlink() or (at.exists() and not at.is_dir()):
            return False
        if not at.exists():
            return True
    return True


def _check_merge(out: Path, owned: set[str], files: list[str]) -> None:
    """Refuse, before any work, an export into a previous one's folder that would replace something the
    previous export did not write, or write through a link."""
    for rel in files:
        dest = out / rel
        if not _plain_parents(out, rel):
            raise PerceptError(f"{out}: {rel} would be written through a link or a file in the way; the export "
                               "replaces only what a previous export wrote (move it away)")
        if (dest.is_symlink() or dest.exists()) and (rel not in owned or (dest.is_dir() and not dest.is_symlink())):
            raise PerceptError(f"{dest}: not written by a previous percept export (not in its {MANIFEST}); the export "
                               "replaces only what it wrote (move it away)")


def _merge(tmp: Path, out: Path, previous: dict, owned: set[str], files: list[str]) -> None:
    """Move the new export's ``files`` from ``tmp`` into ``out`` and remove what the previous export wrote
    and this one does not; nothing else in ``out`` is touched, and no link is followed."""
    interim = tmp / f".{MANIFEST}.interim"  # first the old manifest listing both: an interrupted merge is still owned
    interim.write_text(json.dumps({**previous, "files": sorted(owned | set(files))}, indent=1) + "\n")
    os.replace(interim, out / MANIFEST)
    for rel in files[:-1]:  # the manifest last: until then the previous one lists what is there
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / rel, dest)  # a rename replaces a link itself, never its target
    for rel in sorted(owned - set(files)):
        dest = out / rel
        if _plain_parents(out, rel) and (dest.is_symlink() or dest.is_file()):
            dest.unlink()
    os.replace(tmp / files[-1], out / files[-1])


def export_web(models: list[str | os.PathLike], out: str | os.PathLike, ort_web: str | os.PathLike | None = None,
               progress: bool = False) -> WebReport:
    """Write the browser site for ``models`` (shipped names or ``.pt`` paths) into the folder ``out``.

    The folder is built beside ``out`` and moved into place when complete. Into a previous export's folder,
    the new files replace the ones its ``models.json`` lists (the ``files`` it wrote) and those it no longer
    writes are removed; anything else there (files, folders, links) stays, and the export is refused before
    any work when it would replace such a thing or write through a link. Any other non-empty folder is
    refused.

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
    previous = _read_manifest(out) if out.is_dir() else None
    if out.is_dir() and any(out.iterdir()) and previous is None:
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
    site_files = _site_files(names)
    owned = _owned_files(previous) if previous is not None else set()
    if previous is not None:
        _check_merge(out, owned, site_files)
    dist = find_ort_web(ort_web)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = WebReport(out, ort_web=_package_version(dist))
    photo = selftest_photo()
    x = to_float(photo).transpose(2, 0, 1)[None]
    # built beside the folder (or, into a previous export, inside it: the files are renamed in one by one)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}." if previous is None else ".percept-export.",
                                dir=out.parent if previous is None else out))
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
                                 "tolerance": 1e-2},
                    "files": site_files[:-1]}  # what this export wrote: all a later export may replace or remove
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        report.bytes = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
        os.chmod(tmp, 0o755)
        if previous is not None:
            _merge(tmp, out, previous, owned, site_files)
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, out)  # a new folder, or onto an empty one
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise PerceptError(f"{out}: cannot write the site ({exc.strerror or exc})") from None
        raise
    return report


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with the headers that make the page cross-origin isolated (WebAssembly threads).

    What it answers (issue 30): only requests addressed to this server's own names (the ``Host`` header is
    the bound address, ``localhost``, ``127.0.0.1`` or ``[::1]`` with the port; any other is 403, so a page on
    another site cannot read it by DNS rebinding); only regular files whose real path (symlinks resolved)
    lies inside the real path of the site's folder (anything else is 404); no directory listings (a folder
    answers with its ``index.html`` or 404); a malformed path (``%00``) is 400. The ``Server`` header is a
    plain ``percept``."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME}
    root = ""
    """The real path of the site's folder (set by :func:`serve`)."""
    hosts: frozenset[str] = frozenset()
    """The ``Host`` header values (lower case, ``name:port``) this server answers (set by :func:`serve`)."""

    def version_string(self) -> str:
        return "percept"

    def _inside(self, path: str) -> str | None:
        """``path``'s real path when it is inside the site's folder, else None."""
        real = os.path.realpath(path)
        return real if real == self.root or real.startswith(self.root.rstrip(os.sep) + os.sep) else None

    def send_head(self):
        import stat
        import urllib.parse

        host = (self.headers.get("Host") or "").strip().lower()
        if host not in self.hosts:
            self.send_error(http.HTTPStatus.FORBIDDEN, "Unknown host name",
                            "This server answers only its own address (localhost).")
            return None
        try:
            path = self.translate_path(self.path)
            if "\0" in path:
                raise ValueError("a NUL byte in the path")
            os.fsencode(path)
            real = self._inside(path)
            if real is not None and os.path.isdir(real):  # a folder: its index.html, never a listing
                real = self._inside(os.path.join(real, "index.html"))
                parts = urllib.parse.urlsplit(self.path)
                if real is not None and os.path.isfile(real) and not parts.path.endswith("/"):
                    self.send_response(http.HTTPStatus.MOVED_PERMANENTLY)  # to the folder's URL, with its slash
                    self.send_header("Location", urllib.parse.urlunsplit(parts._replace(path=parts.path + "/")))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
            elif path.endswith("/"):  # a file asked for as a folder
                real = None
        except ValueError:  # a NUL byte, a path that is not text
            self.send_error(http.HTTPStatus.BAD_REQUEST, "Bad path")
            return None
        fd = -1
        if real is not None:
            try:  # O_NOFOLLOW: the last part is not swapped for a link since; O_NONBLOCK: a FIFO does not hang
                fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
            except OSError:
                fd = -1
        if real is None or fd < 0:
            self.send_error(http.HTTPStatus.NOT_FOUND, "File not found")
            return None
        f = os.fdopen(fd, "rb")
        try:
            fs = os.fstat(fd)
            if not stat.S_ISREG(fs.st_mode):
                f.close()
                self.send_error(http.HTTPStatus.NOT_FOUND, "File not found")
                return None
            self.send_response(http.HTTPStatus.OK)
            self.send_header("Content-type", self.guess_type(real))
            self.send_header("Content-Length", str(fs.st_size))
            self.send_header("Last-Modified", self.date_time_string(int(fs.st_mtime)))
            self.end_headers()
            return f
        except BaseException:
            f.close()
            raise

    def list_directory(self, path):
        self.send_error(http.HTTPStatus.NOT_FOUND, "File not found")
        return None

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
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise PerceptError(f"port {port}: give a port from 0 to 65535 (0 picks a free one)")
    root = os.path.realpath(folder)
    handler: type[_Handler] = type("_SiteHandler", (_Handler,), {"root": root})
    try:
        server = _Server((host, port), functools.partial(handler, directory=root))
    except (OSError, OverflowError, ValueError) as exc:
        why = "the port is in use" if getattr(exc, "errno", None) == errno.EADDRINUSE else \
            getattr(exc, "strerror", None) or str(exc)
        raise PerceptError(f"cannot serve on {host}:{port}: {why}") from None
    handler.hosts = _host_names(host, server.server_address[1])
    return server


def _host_names(host: str, port: int) -> frozenset[str]:
    """The ``Host`` header values a server bound to ``host``:``port`` answers: its own address and the
    loopback names, with the port (without it on port 80). A server bound to every address (0.0.0.0, ::)
    answers any address literal too, never a DNS name other than localhost (DNS rebinding)."""
    import ipaddress

    names = {"localhost", "127.0.0.1", "[::1]"}
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
        names.add(f"[{ip.compressed}]" if ip.version == 6 else ip.compressed)
        anywhere = ip.is_unspecified
    except ValueError:  # a host name given to --host
        names.add(host.lower())
        anywhere = False
    values = {f"{n}:{port}" for n in names} | (names if port == 80 else set())
    return _AnyAddress(values, port) if anywhere else frozenset(values)


class _AnyAddress(frozenset):
    """The host names of a server bound to every address: its own names, and any IP address literal with
    its port."""

    port: int

    def __new__(cls, values, port: int):
        self = super().__new__(cls, values)
        self.port = port
        return self

    def __contains__(self, value: object) -> bool:
        import ipaddress
        import urllib.parse

        if frozenset.__contains__(self, value):
            return True
        if not isinstance(value, str) or not value or "@" in value:
            return False
        try:
            parts = urllib.parse.urlsplit("//" + value)
            ip = ipaddress.ip_address(parts.hostname or "")
            port = parts.port or 80
        except ValueError:
            return False
        return port == self.port and (ip.version == 4 or value.startswith("["))


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


def screenshot_folder(path: str | os.PathLike) -> Path:
    """``path`` as the folder for :func:`check_web`'s screenshots, checked before any browser starts: not a file,
    somewhere that can be written."""
    shots = Path(path)
    probe = shots
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise PerceptError(f"`screenshots` {shots}: {'' if probe == shots else f'{probe} is '}a file, not a folder "
                           "(give the folder to save the pages' PNGs in)")
    check_writable(shots)
    return shots


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
    shots = screenshot_folder(screenshots) if screenshots is not None else None
    server, url = serve_in_background(folder)
    try:
        if shots is not None:
            try:
                shots.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PerceptError(f"{shots}: cannot make the folder for the screenshots "
                                   f"({exc.strerror or exc})") from None
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
