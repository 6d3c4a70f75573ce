"""OpenVINO: the exported ``.onnx`` run by Intel's OpenVINO runtime on the CPU, in fp32 or bf16.

``Engine(model, backend="openvino", precision="fp32"|"bf16"|"auto")``, ``percept stylize|video|webcam
--backend openvino [--precision ...]``. The same ``.onnx`` file that onnxruntime runs is read (no
conversion step, nothing written beside the model), with its metadata checked the same way.

* **Static shapes**: each input shape (batch, height, width) gets its own compiled model, kept in a
  small cache: OpenVINO's kernels for a fixed shape are much faster than its dynamic-shape path (rt
  network at 640x480 on a Zen 4: 87 FPS static vs 59 dynamic at fp32), and a video or the webcam has
  one shape. A compile takes about 0.2 s.
* **fp32** sets OpenVINO's ``INFERENCE_PRECISION_HINT`` to f32 explicitly: its default on CPUs with
  AVX512-BF16 or AMX is bf16, which changes the pixels.
* **bf16** is offered only where the CPU reports it (OpenVINO's ``OPTIMIZATION_CAPABILITIES``), and
  is checked like the int8 export: PSNR of the bf16 output against the fp32 output on photos
  (:func:`check_bf16`). ``percept export`` records that check in the file (``percept.openvino_bf16``)
  when OpenVINO is installed; files exported without it (or on another CPU) are checked once at load
  and the result is cached per file, CPU and OpenVINO version. ``auto`` picks bf16 only where the
  check passes, fp32 otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from percept.device import cpu_description
from percept.errors import PerceptError
from percept.images import atomic_write_bytes
from percept.inference.runtime import (  # noqa: F401 - read_onnx_metadata: re-exported
    PROBE_SECONDS,
    calibration_images,
    check_io_types,
    check_probe_output,
    percept_metadata,
    probe_input,
    read_onnx_metadata,
    run_guarded,
    runtime_reason,
)
from percept.registry import cache_dir

__all__ = ["BF16_MIN_PSNR", "PRECISIONS", "Bf16Check", "OpenVinoBackend", "bf16_supported", "check_bf16",
           "openvino_core", "openvino_installed"]

PRECISIONS = ("auto", "fp32", "bf16")
BF16_MIN_PSNR = 35.0
"""Smallest PSNR (dB) of the bf16 output against fp32 on the check photos for ``auto`` to pick bf16.
35 dB is an RMS difference of 4.5/255, below what the eye tells apart in a stylised picture; the shipped
networks measure 40-52 dB on a Zen 4 (``scripts/eval_precision.py``), and a network whose activations
overflow or lose their range in bf16 falls far below it."""
CHECK_SIZE = 256
"""Long side of the check photos (scikit-image's samples, as the int8 calibration)."""
BF16_CHECK_SECONDS = 120.0
"""Time budget of the bf16 check at load (a few seconds for a style network)."""
SHAPE_CACHE = 4
"""Compiled models kept, one per input shape."""
_OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


def openvino_installed() -> bool:
    """Whether OpenVINO can be imported (asked without importing it: that takes a second)."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def import_openvino():
    """``import openvino`` with its telemetry off. Importing OpenVINO starts its usage telemetry (the
    ``openvino-telemetry`` package, through ``openvino.tools.ovc``), which writes a client id and usage
    counters under ``~/intel`` on every run and may send them; percept is an offline tool, so before the
    first import it makes ``openvino_telemetry`` unimportable in this process and OpenVINO falls back on
    its own no-op stub (its path when the package is absent). A process that imported
    ``openvino_telemetry`` itself before is left as it is."""
    import sys

    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    import openvino

    return openvino


def openvino_core():
    """A fresh ``openvino.Core``, or one clear error when OpenVINO is not installed."""
    try:
        ov = import_openvino()
    except ImportError:
        raise PerceptError("the openvino backend needs OpenVINO: pip install openvino "
                           "(or pip install 'percept[openvino]')") from None
    return ov.Core()


def bf16_supported(core=None) -> bool:
    """Whether OpenVINO can compute in bf16 on this CPU (AVX512-BF16 or AMX)."""
    core = core or openvino_core()
    try:
        return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # noqa: BLE001 - an old plugin without the property: no bf16
        return False


def _require_bf16(core) -> None:
    if not bf16_supported(core):
        raise PerceptError(f"--precision bf16 needs a CPU with AVX512-BF16 or AMX; this one has neither "
                           f"({cpu_description()}); use --precision fp32 or auto")


def _compile(core, model, precision: str, threads: int | None):
    config: dict = {"INFERENCE_PRECISION_HINT": _OV_PRECISION[precision], "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return core.compile_model(model, "CPU", config)


@dataclass
class Bf16Check:
    """The bf16 quality check of one model: PSNR (worst photo) and max abs difference against fp32."""

    psnr: float
    max_abs: float
    photos: int
    min_psnr: float = BF16_MIN_PSNR
    cpu: str = ""

    @property
    def passed(self) -> bool:
        return bool(self.psnr >= self.min_psnr)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "passed": self.passed})

    @classmethod
    def from_json(cls, text: str) -> Bf16Check | None:
        try:
            d = json.loads(text)
            return cls(float(d["psnr"]), float(d["max_abs"]), int(d["photos"]), float(d.get("min_psnr", BF16_MIN_PSNR)),
                       str(d.get("cpu", "")))
        except (ValueError, KeyError, TypeError):
            return None


def _cpu_model() -> str:
    return cpu_description()


def check_bf16(model_bytes_or_path, images: list[np.ndarray] | None = None, core=None) -> Bf16Check:
    """Run a model in fp32 and bf16 on photos (default: scikit-image's samples at 256 px) and measure
    how far bf16 is from fp32. Needs a CPU with bf16."""
    core = core or openvino_core()
    _require_bf16(core)
    if images is None:
        images = calibration_images(None, CHECK_SIZE)
    src = model_bytes_or_path
    model = core.read_model(str(src)) if isinstance(src, (str, os.PathLike)) else _read_bytes(core, src)
    worst, diff = float("inf"), 0.0
    for x in images:
        model.reshape(list(x.shape))
        ref = _compile(core, model, "fp32", None).create_infer_request().infer({0: x})[0]
        got = _compile(core, model, "bf16", None).create_infer_request().infer({0: x})[0]
        got, ref = np.clip(got, 0, 1), np.clip(ref, 0, 1)
        worst = min(worst, 10 * np.log10(1.0 / max(float(np.mean((got - ref) ** 2)), 1e-12)))
        diff = max(diff, float(np.abs(got - ref).max()))
    return Bf16Check(round(float(worst), 2), round(diff, 4), len(images), cpu=_cpu_model())


def _read_bytes(core, data: bytes):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # read_model(bytes) needs the weights as a tensor: use a file
        p = Path(tmp) / "model.onnx"
        p.write_bytes(data)
        return core.read_model(str(p))


def _cache_file() -> Path:
    return cache_dir() / "openvino-bf16.json"


def _cached_check(path: Path, core) -> Bf16Check:
    """The bf16 check of the file at ``path``: from its metadata when it was made on this CPU, else from
    the cache (per file content, CPU and OpenVINO version), else measured now and cached."""
    import openvino as ov

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    key = f"{digest}|{_cpu_model()}|{ov.__version__}"
    cache = _cache_file()
    try:
        entries = json.loads(cache.read_text())
    except (OSError, ValueError):
        entries = {}
    if isinstance(entries, dict) and key in entries:
        hit = Bf16Check.from_json(json.dumps(entries[key]))
        if hit is not None:
            return hit
    check = check_bf16(path, core=core)
    try:  # a cache that cannot be written costs a re-check next time, nothing else
        entries = entries if isinstance(entries, dict) else {}
        entries[key] = json.loads(check.to_json())
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cache, json.dumps(entries, indent=1).encode())
    except (OSError, PerceptError):  # a read-only or full cache folder
        pass
    return check


def _guarded(path: Path, call, stop, budget: float | None, refused: str):
    """:func:`~percept.inference.runtime.run_guarded` for OpenVINO: a run over ``budget`` is refused with ``refused``
    (its ``{}`` takes how long), OpenVINO's own failure is one line with its reason; Ctrl-C passes through."""
    try:
        return run_guarded(call, stop, budget)
    except TimeoutError as exc:
        raise PerceptError(f"{path}: refused: {refused.format(exc)}") from None
    except (KeyboardInterrupt, PerceptError):
        raise
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError with a long text
        raise PerceptError(f"{path}: OpenVINO cannot run it ({runtime_reason(exc)})") from None


class OpenVinoBackend:
    """A percept ``.onnx`` style model run by OpenVINO on the CPU (see the module doc)."""

    def __init__(self, path: Path, device: str, threads: int | None, precision: str = "auto") -> None:
        if precision not in PRECISIONS:
            raise PerceptError(f"unknown precision '{precision}'; use {', '.join(PRECISIONS)}")
        if device not in ("auto", "cpu"):
            raise PerceptError(f"the openvino backend runs on the CPU; --device {device} is for the onnx backend "
                               "(use --device cpu or auto)")
        core = openvino_core()
        meta = read_onnx_metadata(path)
        self.card, self.name, self.min_size, self.kind = percept_metadata(path, meta)
        try:
            self.model = core.read_model(str(path))
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError with a long text
            raise PerceptError(f"{path}: OpenVINO cannot read it ({runtime_reason(exc)[:200]})") from None
        check_io_types(path, [_port(p) for p in self.model.inputs], [_port(p) for p in self.model.outputs])
        self.meta, self.path = meta, path
        self.core, self.precision, self.threads = core, "fp32", threads
        self._compiled: OrderedDict[tuple[int, ...], object] = OrderedDict()
        self._probe_shapes(path)
        self.check: Bf16Check | None = None
        """The bf16 quality check, where one was made (precision bf16 or auto on a bf16 CPU)."""
        if precision == "bf16":
            _require_bf16(core)
        elif precision == "auto":
            precision = "fp32"
            if bf16_supported(core):
                recorded = Bf16Check.from_json(meta.get("percept.openvino_bf16", ""))
                self.check = recorded if recorded is not None and recorded.cpu == _cpu_model() \
                    else self._guarded_check(path, core)
                precision = "bf16" if self.check.passed else "fp32"
        if precision != self.precision:
            self._compiled.clear()
        self.precision = precision
        self.provider = f"OpenVINO {precision} (CPU)"

    def _request(self, shape: tuple[int, ...]):
        req = self._compiled.get(shape)
        if req is not None:
            self._compiled.move_to_end(shape)
            return req
        model = self.model.clone()
        model.reshape(list(shape))
        req = _compile(self.core, model, self.precision, self.threads).create_infer_request()
        self._compiled[shape] = req
        while len(self._compiled) > SHAPE_CACHE:
            self._compiled.popitem(last=False)
        return req

    def _guarded_check(self, path: Path, core) -> Bf16Check:
        """The bf16 check (it runs the untrusted file on photos): Ctrl-C stops it, :data:`BF16_CHECK_SECONDS`
        bounds it, a runtime failure is one line."""
        return _guarded(path, lambda: _cached_check(path, core), None, BF16_CHECK_SECONDS,
                        "OpenVINO's bf16 check of it {}; the model file is broken or hostile (or use --precision fp32)")

    def _probe_shapes(self, path: Path) -> None:
        """OpenVINO's shape inference for a probe frame, under a time budget, before any bf16 check runs the file:
        the output must have the input's shape (a compiled probe run would cost a 0.2 s compile of a shape never
        used again; the first real run is stoppable by Ctrl-C and reports a runtime failure as one line)."""
        x = probe_input(self.min_size)

        def shape() -> tuple:
            model = self.model.clone()
            model.reshape(list(x.shape))
            out = model.outputs[0].get_partial_shape()
            return tuple(d.get_length() if d.is_static else -1 for d in out) if out.rank.is_static else ()

        try:
            got = run_guarded(shape, None, PROBE_SECONDS)
        except TimeoutError as exc:
            raise PerceptError(f"{path}: refused: OpenVINO's shape inference for a probe frame {exc}") from None
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError with a long text
            raise PerceptError(f"{path}: OpenVINO cannot run it ({runtime_reason(exc)[:200]})") from None
        if -1 not in got:
            check_probe_output(path, x, np.zeros(got, np.float32))

    def _run(self, x: np.ndarray, budget: float | None = None, what: str = "compiling and running it"):
        """Compile (once per shape) and run, stoppable by Ctrl-C (the request is cancelled) and ``budget``."""
        held: dict = {}

        def call():
            held["req"] = req = self._request(tuple(x.shape))
            # the input is read in place; the output is OpenVINO's copy (the request's buffer is reused)
            return np.array(req.infer({0: x}, share_inputs=True)[0])

        def stop() -> bool:
            if "req" not in held:  # still compiling: OpenVINO cannot be asked to stop that
                return False
            held["req"].cancel()
            return True

        try:
            return _guarded(self.path, call, stop, budget, what + " {} (a style network takes a fraction of a second); "
                            "the model file is broken or hostile")
        except PerceptError:
            self._compiled.clear()  # a request that overran or failed is not reused
            raise

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = self._run(x)
        check_probe_output(self.path, x, y)
        return np.asarray(y, dtype=np.float32)


def _port(port) -> tuple[str, list | None]:
    """(element type, dimensions: an int where fixed, else None) of an OpenVINO model input or output."""
    shape = port.get_partial_shape()
    dims = None if shape.rank.is_dynamic else [d.get_length() if d.is_static else None for d in shape]
    return port.get_element_type().get_type_name(), dims


def describe_platform() -> str:
    """OpenVINO's version and whether this CPU offers bf16 (for benchmarks and `percept info`)."""
    try:
        ov = import_openvino()
    except ImportError:
        return "OpenVINO not installed"
    return f"OpenVINO {ov.__version__} on {platform.machine()}, bf16 {'yes' if bf16_supported() else 'no'}"
