"""The ONNX layer every runner shares: onnxruntime sessions (providers, options, the CPU/GPU choice), the
percept metadata of an exported model (kind, card, smallest frame), the memory check of a frame, the fp16 weight
storage, and the calibration photos. The engine, the exporter, the linear model and the OpenVINO backend all import
it; it imports none of them, so the inference package has no import circle.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from percept.checkpoint import load_checkpoint, weights_digest
from percept.errors import PerceptError
from percept.images import list_images, load_image, resize_long_side, to_float
from percept.models.transformer import ARCHITECTURES
from percept.registry import ModelKind, cache_dir

__all__ = ["FP16_WEIGHTS_MIN_ELEMENTS", "OnnxBackend", "available_memory", "available_providers", "calibration_images",
           "check_frame_size", "choose_providers", "onnx_metadata", "percept_metadata", "read_onnx_metadata",
           "round_weights_fp16", "run_guarded", "runtime_reason", "session_options", "stale_onnx",
           "store_weights_fp16"]

PROVIDER_PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
KNOWN_KINDS = (ModelKind.STYLE.value,)


def available_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def cuda_gpu_present() -> bool:
    """Whether a CUDA GPU is really there. onnxruntime-gpu lists its CUDA and TensorRT providers on any
    machine, GPU or not, so the provider list alone cannot tell; the CUDA driver can (asked through
    torch, which percept imports anyway)."""
    import torch

    try:
        return bool(torch.cuda.is_available() and torch.cuda.device_count() > 0)
    except Exception:  # noqa: BLE001 - a broken driver install means no usable GPU
        return False


def choose_providers(device: str, available: Sequence[str], gpu: bool | None = None) -> list[str]:
    """The onnxruntime providers to ask for, best first, for ``device`` auto|cpu|cuda|tensorrt.

    ``gpu``: whether a CUDA GPU is present (default: :func:`cuda_gpu_present`). Without one, ``auto``
    is the CPU even when the installed onnxruntime (onnxruntime-gpu) lists GPU providers."""
    available = list(available)
    if device == "cpu":
        return ["CPUExecutionProvider"]
    wanted = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}.get(device.split(":")[0])
    if device != "auto" and wanted is None:
        raise PerceptError(f"unknown device '{device}'; use auto, cpu, cuda or tensorrt")
    if gpu is None:
        gpu = any(p in available for p in PROVIDER_PREFERENCE[:2]) and cuda_gpu_present()
    if device == "auto":
        if not gpu:
            return ["CPUExecutionProvider"]
        return [p for p in PROVIDER_PREFERENCE if p in available] or ["CPUExecutionProvider"]
    if wanted not in available:
        raise PerceptError(f"device {device}: onnxruntime has no {wanted} here (installed: "
                           f"{', '.join(available) or 'none'}); install onnxruntime-gpu or use device cpu")
    if not gpu:
        raise PerceptError(f"device {device}: no CUDA GPU here (onnxruntime offers {wanted}, but there is no GPU "
                           "for it); use device cpu or auto")
    chain = [wanted] + (["CUDAExecutionProvider"] if wanted.startswith("Tensorrt") and
                        "CUDAExecutionProvider" in available else [])
    return chain + ["CPUExecutionProvider"]


def trt_cache_dir(model_path: Path) -> Path:
    """Where TensorRT keeps the engines it builds for a model: ``MODEL.trt/`` beside the ``.onnx`` when that
    folder can be written, else percept's cache (the shipped models sit in a read-only site-packages)."""
    beside = model_path.with_suffix(".trt")
    try:
        beside.mkdir(exist_ok=True)
        if os.access(beside, os.W_OK):
            return beside
    except OSError:
        pass
    import hashlib

    tag = hashlib.sha256(str(model_path.resolve()).encode()).hexdigest()[:12]
    fallback = cache_dir() / "tensorrt" / f"{model_path.stem}-{tag}"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def provider_options(providers: Sequence[str], model_path: Path) -> list:
    """The providers with their options: TensorRT builds fp16 engines (the style networks pass the fp16
    export check, 2e-2) and caches them (a build takes tens of seconds; :func:`trt_cache_dir`), with
    timing caches for the next shapes; CUDA uses the exhaustive cuDNN convolution search. The CPU provider
    takes none."""
    out: list = []
    for p in providers:
        if p == "TensorrtExecutionProvider":
            cache = str(trt_cache_dir(model_path))
            out.append((p, {"trt_fp16_enable": True, "trt_engine_cache_enable": True, "trt_engine_cache_path": cache,
                            "trt_timing_cache_enable": True, "trt_timing_cache_path": cache,
                            "trt_max_workspace_size": 2 << 30}))
        elif p == "CUDAExecutionProvider":
            out.append((p, {"cudnn_conv_algo_search": "EXHAUSTIVE", "do_copy_in_default_stream": True}))
        else:
            out.append(p)
    return out


BYTES_PER_PIXEL = 1000
"""Peak memory a frame pixel costs the full-size network (measured at 2048x2048: 0.68 kB with
onnxruntime, 1.0 kB with PyTorch; the rt network needs less)."""
ALWAYS_FITS = 1 << 30
"""A frame whose estimate is at most this (1 GB: 1 megapixel, a batch of four 512x512 frames) is not
checked against the free memory."""
FALLBACK_MAX_PIXELS = 40_000_000
"""Where the free memory cannot be read: the largest frame (height x width) the engine runs."""


def available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_frame_size(height: int, width: int, smallest: int, name: str, batch: int = 1) -> None:
    """One clear error for a frame smaller than a model takes (``smallest`` px on each side), or one
    that would need more memory than the machine has free (a MemoryError or the OOM killer otherwise)."""
    if min(height, width) < smallest:
        raise PerceptError(f"frames must be at least {smallest}x{smallest} px for {name}, got {width}x{height}")
    pixels = height * width * max(1, batch)
    need = pixels * BYTES_PER_PIXEL
    if need <= ALWAYS_FITS:  # every frame of a video or the webcam: no need to read /proc/meminfo
        return
    free = available_memory()
    if (free is not None and need > free) or (free is None and pixels > FALLBACK_MAX_PIXELS):
        have = f"{free / 1e9:.1f} GB are free" if free is not None else f"the limit is {FALLBACK_MAX_PIXELS / 1e6:.0f} megapixels"
        raise PerceptError(f"{batch} x {width}x{height} px ({pixels / 1e6:.0f} megapixels) needs about {need / 1e9:.1f} GB "
                           f"of memory to stylise and {have}; give a smaller size (--size)")


def session_options(threads: int | None = None):
    """The onnxruntime session options percept runs every model with: all graph optimisations
    (the blocked NCHWc convolutions included), ``threads`` intra-op threads (default: every core),
    warnings off."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    return opts


PROBE_SECONDS = 10.0
"""Time budget of the probe run a model file gets at load (a 1x3x16x20 frame: milliseconds for a style network)."""
PROBE_SIDE = 16
"""Height of the probe frame (its width is 4 px more, so a model that swaps height and width is caught)."""
MAX_MIN_SIZE = 1024
"""Largest ``percept.min_size`` a model file may claim (percept's networks take 8 or 9 px)."""
STOP_WAIT = 10.0
"""Seconds a run stopped by Ctrl-C or its budget is given to end before it is left behind."""


class _Overtime(Exception):
    pass


def run_guarded(call: Callable, stop: Callable[[], bool | None] | None = None, budget: float | None = None):
    """``call()``, stoppable: in the main thread it runs in a worker thread so that Ctrl-C reaches Python
    while the runtime computes (a native run ignores SIGINT); on Ctrl-C, or after ``budget`` seconds,
    ``stop()`` asks the runtime to end the run (returning False when it cannot) (onnxruntime's ``RunOptions.terminate``, OpenVINO's
    ``cancel``), and KeyboardInterrupt is re-raised or a TimeoutError raised. A model file is untrusted
    input: a ``Loop`` of 10^15 iterations must not hang percept. Outside the main thread, with no budget,
    ``call()`` runs directly. The worker's own exception is re-raised as it is."""
    if budget is None and threading.current_thread() is not threading.main_thread():
        return call()
    box: dict = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["out"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["exc"] = exc
        finally:
            done.set()

    # The wait is on an Event, not Thread.join: a Ctrl-C inside join() makes Python 3.11 mark the thread as
    # stopped while its native run goes on (gh-90882), and the interpreter then exits under a running session
    # (std::terminate, SIGABRT).
    worker = threading.Thread(target=work, name="percept-run", daemon=True)
    deadline = None if budget is None else time.monotonic() + budget
    worker.start()
    try:
        while not done.wait(0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))):
            if deadline is not None and time.monotonic() >= deadline:
                raise _Overtime
    except (KeyboardInterrupt, _Overtime) as exc:
        asked = False
        if stop is not None:
            try:
                asked = stop() is not False
            except Exception:  # noqa: BLE001 - a run that ended meanwhile
                pass
        while asked:  # let the stopped run end (a second Ctrl-C does not leave it running under the exit); a run
            # that cannot be stopped (``stop()`` returns False: OpenVINO compiling a model) is left behind at once
            try:
                done.wait(STOP_WAIT)
                break
            except KeyboardInterrupt:
                continue
        if isinstance(exc, _Overtime):
            raise TimeoutError(f"ran longer than {budget:g} s") from None
        raise
    if "exc" in box:
        raise box["exc"]
    return box["out"]


def runtime_reason(exc: BaseException) -> str:
    """The informative line of a runtime's error: onnxruntime's status message without its source path,
    OpenVINO's last line that is not an "Exception from src/...:NN:" frame (its first lines are only those)."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    lines = [ln for ln in lines if not (ln.startswith("Exception from ") and ln.endswith(":"))] or lines
    if not lines:
        return exc.__class__.__name__
    text = lines[-1] if any(ln.startswith("Exception from ") for ln in str(exc).splitlines()) else lines[0]
    if "Status Message:" in text:
        text = text.split("Status Message:", 1)[1].strip()
    import re

    text = re.sub(r"^(/\S+|\w:\\\S+):\d+ [^)]*\) ", "", text)  # onnxruntime's "/src/x.cc:360 void* f(...) "
    if text == "std::bad_alloc":
        text = "std::bad_alloc: it asked for more memory than there is"
    return text[:300]


def check_io_types(path: Path, inputs: Sequence[tuple[str, Sequence | None]],
                   outputs: Sequence[tuple[str, Sequence | None]]) -> None:
    """One clear error for a file whose declared input or output is not what a style model has: one float32
    N x 3 x H x W input, one float32 output of that shape (``(type, shape)`` pairs; a dimension is an int or a
    name/None when not fixed)."""
    want = "one float32 N x 3 x H x W input and one float32 N x 3 x H x W output"
    if len(inputs) != 1 or len(outputs) != 1:
        raise PerceptError(f"{path}: not a percept style model ({len(inputs)} inputs and {len(outputs)} outputs; "
                           f"expects {want})")
    for role, (dtype, shape) in (("input", inputs[0]), ("output", outputs[0])):
        dtype = {"tensor(float)": "float32", "f32": "float32", "tensor(double)": "float64", "f64": "float64",
                 "tensor(float16)": "float16", "f16": "float16"}.get(dtype, dtype.removeprefix("tensor(").rstrip(")"))
        dtype = {"i32": "int32", "i64": "int64", "u8": "uint8", "i8": "int8", "boolean": "bool"}.get(dtype, dtype)
        if dtype != "float32":
            raise PerceptError(f"{path}: not a percept style model (its {role} is {dtype}; expects {want})")
        if shape is not None and len(shape) != 4:
            raise PerceptError(f"{path}: not a percept style model (its {role} has {len(shape)} dimensions; "
                               f"expects {want})")
        if shape is not None and isinstance(shape[1], int) and shape[1] != 3:
            raise PerceptError(f"{path}: not a percept style model (its {role} has {shape[1]} "
                               f"channel{'' if shape[1] == 1 else 's'}; expects {want})")


def check_probe_output(path: Path, x: np.ndarray, y) -> None:
    """The probe frame's result must be a float array of the frame's own shape: a style model returns the
    picture at the size it was given (one half the size, or with 1 channel, would write a wrong picture)."""
    y = np.asarray(y)
    if y.dtype.kind != "f":
        raise PerceptError(f"{path}: not a percept style model (its output is {y.dtype}, not float32)")
    if y.shape != x.shape:
        raise PerceptError(f"{path}: not a percept style model (for a {'x'.join(map(str, x.shape))} input it returns "
                           f"{'x'.join(map(str, y.shape)) or 'a scalar'}; a style model returns the input's shape)")


def probe_input(min_size: int) -> np.ndarray:
    """The probe frame: 1 x 3 x max(min_size, 16) x (that + 4), mid-grey."""
    side = max(min_size, PROBE_SIDE)
    return np.full((1, 3, side, side + 4), 0.5, np.float32)


class OnnxBackend:
    def __init__(self, path: Path, device: str, threads: int | None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise PerceptError("the onnx backend needs onnxruntime: pip install onnxruntime") from None
        providers = choose_providers(device, ort.get_available_providers())
        if providers[0] != "CPUExecutionProvider":
            _preload_cuda_libraries(ort)
        try:
            self.session = ort.InferenceSession(str(path), session_options(threads),
                                                providers=provider_options(providers, path))
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several types for bad files
            raise PerceptError(f"{path}: not a readable ONNX model ({runtime_reason(exc)[:200]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        self.card, self.name, self.min_size, self.kind = percept_metadata(path, meta)
        check_io_types(path, [(i.type, i.shape) for i in inputs], [(o.type, o.shape) for o in outputs])
        self.meta = meta
        self.path = path
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        self.provider = self.session.get_providers()[0]
        self.precision = meta.get("percept.precision", "fp32")
        self._gpu = self.provider != "CPUExecutionProvider"
        self._probe(ort, threads)

    def _probe(self, ort, threads: int | None) -> None:
        """A tiny run at load, under :data:`PROBE_SECONDS`: the file's graph must return a float picture of its
        input's shape. On a GPU the probe runs in a CPU session (no TensorRT engine built for the probe shape)."""
        session = self.session
        if self._gpu:
            session = ort.InferenceSession(str(self.path), session_options(threads), providers=["CPUExecutionProvider"])
        x = probe_input(self.min_size)
        y = self._run(session, x, budget=PROBE_SECONDS, what="its probe run at load (one small frame)")
        check_probe_output(self.path, x, y)

    def _run(self, session, x: np.ndarray, budget: float | None = None, what: str = "a run"):
        options = ort_run_options()
        try:
            return run_guarded(lambda: session.run([self.output_name], {self.input_name: x}, options)[0],
                               lambda: setattr(options, "terminate", True), budget)
        except TimeoutError as exc:
            raise PerceptError(f"{self.path}: refused: {what} {exc} (a style network takes milliseconds); "
                               "the model file is broken or hostile") from None
        except (KeyboardInterrupt, PerceptError):
            raise
        except Exception as exc:  # noqa: BLE001 - onnxruntime's Fail, RuntimeException, InvalidArgument...
            raise PerceptError(f"{self.path}: onnxruntime cannot run it ({runtime_reason(exc)})") from None

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not self._gpu:
            y = self._run(self.session, x)
        else:
            # IO binding: the input is copied to the GPU once, the output allocated there and copied back once
            binding = self.session.io_binding()
            binding.bind_cpu_input(self.input_name, x)
            binding.bind_output(self.output_name, "cuda")
            options = ort_run_options()
            try:
                run_guarded(lambda: self.session.run_with_iobinding(binding, options),
                            lambda: setattr(options, "terminate", True))
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - onnxruntime's Fail, RuntimeException...
                raise PerceptError(f"{self.path}: onnxruntime cannot run it ({runtime_reason(exc)})") from None
            y = binding.copy_outputs_to_cpu()[0]
        check_probe_output(self.path, x, y)
        return y


def ort_run_options():
    """Fresh onnxruntime run options (one per run: a terminated run's flag stays set), its log quiet (the
    error is percept's one line)."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.log_severity_level = 4
    return options


def percept_metadata(path: Path, meta: dict) -> tuple[dict, str, int, str]:
    """(card, name, smallest frame side, kind) of a percept style model's ONNX metadata, or one clear
    error for a decoder or a file that percept did not export."""
    kind = meta.get("percept.kind")
    if kind == "feature-decoder":
        raise PerceptError(f"{path}: a feature decoder (VGG19 {meta.get('percept.layer', '?')} features in), "
                           "not a style model; see `percept invert`")
    if kind is None:
        raise PerceptError(f"{path}: not a percept model (no percept.kind in its metadata; "
                           "export one with `percept export`)")
    if kind not in KNOWN_KINDS:
        raise PerceptError(f"{path}: a '{str(kind)[:60]}' model (its percept.kind), not a style model this runs")
    try:
        card = json.loads(meta.get("percept.card", "{}") or "{}")
    except ValueError:
        raise PerceptError(f"{path}: its percept.card metadata is not JSON") from None
    if not isinstance(card, dict):
        raise PerceptError(f"{path}: its percept.card metadata is not a JSON object")
    return card, str(meta.get("percept.name", path.stem)), _meta_min_size(meta, card, path), str(kind)


def stale_onnx(onnx_card: dict, fallback_card: dict, onnx_path: Path, pt_path: Path | None) -> str | None:
    """Why the ``.onnx`` beside a ``.pt`` was not exported from it, or None when it was (or the ``.pt``
    cannot be read: its own load reports that). The ``.pt`` is read once. An export records the SHA-256
    of the ``.pt``'s weights (``weights_sha256``), compared when present; older exports are compared by
    the training time in their metadata against the checkpoint's card (the authority on which training
    it holds; ``fallback_card``, the JSON card, when it has none)."""
    if pt_path is None:
        return None
    try:
        ckpt = load_checkpoint(pt_path)
    except PerceptError:
        return None
    digest = onnx_card.get("weights_sha256")
    if digest:
        if weights_digest(ckpt["state_dict"]) != digest:
            return f"{onnx_path} was exported from other weights than {pt_path} (weights SHA-256 differs)"
        return None
    inner = ckpt.get("card")
    pt_card: dict = inner if isinstance(inner, dict) else fallback_card
    a, b = onnx_card.get("trained_at"), pt_card.get("trained_at")
    if a and b and a != b:
        return f"{onnx_path} was exported from another training of this model (trained {a}, the .pt {b})"
    return None


def _preload_cuda_libraries(ort) -> None:
    """Let onnxruntime-gpu find CUDA and cuDNN in the ``nvidia-*`` wheels that torch installs, so no
    system CUDA is needed: torch's import has loaded them already; ``preload_dlls`` (onnxruntime
    1.21+) loads whatever is still missing from site-packages."""
    import torch  # noqa: F401 - loads libcudart, cuBLAS and cuDNN from the nvidia wheels

    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except Exception:  # noqa: BLE001 - a missing library shows up as the provider's own error
            pass


def _meta_min_size(meta: dict, card: dict, path: Path | None = None) -> int:
    """The smallest frame side of an exported model: its metadata (a whole number from 1 to
    :data:`MAX_MIN_SIZE`, else one clear error), or (files exported before that entry existed) its architecture."""
    if "percept.min_size" in meta:
        text = str(meta["percept.min_size"]).strip()
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_MIN_SIZE):
            raise PerceptError(f"{path or 'the model'}: its percept.min_size metadata is '{text[:40]}', not a whole "
                               f"number from 1 to {MAX_MIN_SIZE}")
        return int(text)
    arch = ((card.get("architecture") or {}) if isinstance(card.get("architecture"), dict) else {}).get("arch", "johnson")
    return int(getattr(ARCHITECTURES.get(arch), "min_size", 8))


def onnx_metadata(path: Path) -> dict:
    """The metadata of an ONNX file (read without loading its weights into a session)."""
    import onnx

    try:
        return {m.key: m.value for m in onnx.load(str(path), load_external_data=False).metadata_props}
    except Exception:  # noqa: BLE001 - the session's own load reports a broken file
        return {}


CALIBRATION_SAMPLES = ("astronaut", "chelsea", "rocket", "coffee", "immunohistochemistry", "hubble_deep_field",
                       "cat", "retina")
"""scikit-image sample photos (shipped with it, no download) used when no ``--calibration`` folder is given."""
CALIBRATION_SIZE = 256
"""Long side the calibration photos are resized to."""
def calibration_images(folder: str | os.PathLike | None = None, size: int = CALIBRATION_SIZE,
                       limit: int = 16) -> list[np.ndarray]:
    """Photos for int8 calibration as float32 (1, 3, H, W) arrays in [0, 1], long side ``size``: up to
    ``limit`` images of ``folder``, or scikit-image's sample photos."""
    if folder is not None:
        images = [resize_long_side(load_image(f), size) for f in list_images(Path(folder))[:limit]]
    else:
        from skimage import data

        images = [resize_long_side(Image.fromarray(getattr(data, n)()).convert("RGB"), size)
                  for n in CALIBRATION_SAMPLES]
    return [to_float(im).transpose(2, 0, 1)[None] for im in images]


FP16_WEIGHTS_MIN_ELEMENTS = 64
"""Float initializers at least this big are stored as float16 by :func:`store_weights_fp16`."""


def round_weights_fp16(net, min_elements: int = FP16_WEIGHTS_MIN_ELEMENTS):
    """Round the floating-point parameters and buffers of ``net`` (those of at least ``min_elements``)
    to the nearest float16 value, in place (they stay float32 tensors): the network that fp16-stored
    files reproduce."""
    import torch

    with torch.no_grad():
        for t in list(net.parameters()) + list(net.buffers()):
            if t.is_floating_point() and t.numel() >= min_elements:
                t.copy_(t.half().float())
    return net


def store_weights_fp16(model, min_elements: int = FP16_WEIGHTS_MIN_ELEMENTS):
    """Store the float32 initializers of an ONNX model (those of at least ``min_elements``) as float16,
    each followed by a ``Cast`` back to float32 under its old name: half the bytes, the same float32
    graph (onnxruntime folds the casts into constants when a session starts)."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
            continue
        value = numpy_helper.to_array(init)
        name = init.name
        half = numpy_helper.from_array(value.astype(np.float16), f"{name}__fp16")
        init.CopyFrom(half)
        casts.append(helper.make_node("Cast", [half.name], [name], to=TensorProto.FLOAT, name=f"{name}__to_fp32"))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def read_onnx_metadata(path: Path) -> dict:
    """The ``metadata_props`` of an ONNX file (the weights are not read)."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for bad files
        raise PerceptError(f"{path}: not a readable ONNX model ({str(exc).strip()[:200] or type(exc).__name__})") from None
    return {p.key: p.value for p in proto.metadata_props}
