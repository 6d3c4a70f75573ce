"""The inference engine: one object that runs a trained network on images, fast.

Everything that stylises goes through :class:`Engine`: the Python API (:func:`percept.stylize`),
``percept stylize``, ``percept video``, ``percept webcam`` and the demo, so the same arguments give
the same pixels everywhere. It loads a model by name (shipped or the user's, see
:mod:`percept.registry`), ``.onnx`` file or ``.pt`` file and runs it through one of two backends that
give the same picture:

* ``onnx`` (the default when an ``.onnx`` file is there): an onnxruntime session, created once and
  reused, with the execution provider picked by ``device`` (``auto`` prefers TensorRT, then CUDA,
  then the CPU, among the providers the installed onnxruntime offers, and :attr:`Engine.provider`
  says which one it got), the thread count set, and IO binding on a GPU so frames are copied once;
* ``torch``: the PyTorch checkpoint, the fallback when there is no ``.onnx`` (or no onnxruntime);
* ``openvino``: the same ``.onnx`` run by OpenVINO on the CPU, in fp32 or (where the CPU has it and
  a quality check passes) bf16, the fastest CPU backend here (:mod:`percept.inference.openvino_backend`).

Input frames are float32 NCHW RGB in [0, 1] (:meth:`Engine.run`), uint8 HxWx3 RGB arrays
(:meth:`Engine.frames`, batched) or PIL images (``engine(image, ...)``). Sizes that are not a
multiple of 4 are padded inside the network and cropped back, so any size from the model's minimum
(:attr:`Engine.min_size`: 8 px for the full-size networks, 9 px for the real-time ones) up works.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from percept.errors import PerceptError, warn
from percept.images import ImageLike, check_strength, finish_frame, load_image, resize_long_side
from percept.registry import ModelKind, find_model

__all__ = ["BACKENDS", "Engine", "available_providers", "check_frame_size", "choose_providers", "session_options"]

BACKENDS = ("auto", "onnx", "torch", "openvino")
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

    from percept.registry import cache_dir

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


class _OnnxBackend:
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
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise PerceptError(f"{path}: not a readable ONNX model ({first[:200]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        self.card, self.name, self.min_size, self.kind = percept_metadata(path, meta)
        if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[1] != 3:
            raise PerceptError(f"{path}: not a percept model (expects one NCHW RGB input and one output)")
        self.meta = meta
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        self.provider = self.session.get_providers()[0]
        self.precision = meta.get("percept.precision", "fp32")
        self._gpu = self.provider != "CPUExecutionProvider"

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not self._gpu:
            return self.session.run([self.output_name], {self.input_name: x})[0]
        # IO binding: the input is copied to the GPU once, the output allocated there and copied back once
        binding = self.session.io_binding()
        binding.bind_cpu_input(self.input_name, x)
        binding.bind_output(self.output_name, "cuda")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]


def percept_metadata(path: Path, meta: dict) -> tuple[dict, str, int, str]:
    """(card, name, smallest frame side, kind) of a percept style model's ONNX metadata, or one clear
    error for a decoder or a file that percept did not export."""
    kind = meta.get("percept.kind")
    if kind == "feature-decoder":
        raise PerceptError(f"{path}: a feature decoder (VGG19 {meta.get('percept.layer', '?')} features in), "
                           "not a style model; see `percept invert`")
    if kind not in KNOWN_KINDS:
        raise PerceptError(f"{path}: not a percept model (no percept.kind in its metadata; "
                           "export one with `percept export`)")
    card = json.loads(meta.get("percept.card", "{}") or "{}")
    return card, meta.get("percept.name", path.stem), _meta_min_size(meta, card), str(kind)


def _stale_onnx(onnx_card: dict, fallback_card: dict, onnx_path: Path, pt_path: Path | None) -> str | None:
    """Why the ``.onnx`` beside a ``.pt`` was not exported from it, or None when it was (or the ``.pt``
    cannot be read: its own load reports that). The ``.pt`` is read once. An export records the SHA-256
    of the ``.pt``'s weights (``weights_sha256``), compared when present; older exports are compared by
    the training time in their metadata against the checkpoint's card (the authority on which training
    it holds; ``fallback_card``, the JSON card, when it has none)."""
    if pt_path is None:
        return None
    from percept.checkpoint import load_checkpoint, weights_digest

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


def _meta_min_size(meta: dict, card: dict) -> int:
    """The smallest frame side of an exported model: its metadata, or (files exported before that
    entry existed) its architecture."""
    if "percept.min_size" in meta:
        return int(meta["percept.min_size"])
    from percept.models.transformer import ARCHITECTURES

    arch = (card.get("architecture") or {}).get("arch", "johnson")
    return int(getattr(ARCHITECTURES.get(arch), "min_size", 8))


def _onnx_meta(path: Path) -> dict:
    """The metadata of an ONNX file (read without loading its weights into a session)."""
    import onnx

    try:
        return {m.key: m.value for m in onnx.load(str(path), load_external_data=False).metadata_props}
    except Exception:  # noqa: BLE001 - the session's own load reports a broken file
        return {}


class _TorchBackend:
    def __init__(self, path: Path, device: str, threads: int | None, baked=None) -> None:
        import torch

        from percept.device import resolve_device
        from percept.models.transformer import load_style_network

        if device == "tensorrt":
            raise PerceptError("--device tensorrt needs the onnx backend")
        if threads:
            torch.set_num_threads(threads)
        self.device = resolve_device(device)
        self.card: dict = {}
        if baked is not None:
            self.net = baked
        else:
            self.net, self.card = load_style_network(path)
        self.net.to(self.device)
        self.kind = "style-transformer"
        self.name = self.card.get("name", path.stem)
        self.provider = f"torch ({self.device.type})"
        self.precision = "fp32"
        self.min_size = int(getattr(self.net, "min_size", 8))

    def run(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)).float().cpu().numpy()


class Engine:
    """A trained network, loaded once, ready to run on frames.

    Args:
        model: shipped model name, ``.onnx`` file or ``.pt`` file.
        backend: ``onnx``, ``torch``, ``openvino`` (the ``.onnx`` file run by OpenVINO on the CPU,
            :mod:`percept.inference.openvino_backend`) or ``auto`` (onnx when an ``.onnx`` file is
            there and onnxruntime is installed, else torch).
        device: ``auto``, ``cpu``, ``cuda`` or (onnx only) ``tensorrt``.
        threads: CPU threads (default: all cores).
        precision: the openvino backend's arithmetic: ``fp32``, ``bf16`` (CPUs with AVX512-BF16 or
            AMX) or ``auto`` (bf16 where its quality check against fp32 passes); other backends run
            the file as exported and take only ``auto`` or (the same thing) ``fp32``.
        style: for a linear style model (``linear_relu3_1``, :mod:`percept.models.linear`): the painting
            (path, PIL image or array) it runs with, baked in once (:func:`percept.inference.linear.bake_style`),
            so a frame costs only the photo's pass.

    Attributes:
        backend: the backend in use (``onnx`` or ``torch``).
        provider: the execution provider (or torch device) it got.
        precision: the arithmetic it runs (``fp32``, ``bf16``; ``fp16``/``int8`` for such exports).
        name, card: the model's name and model card (summary).
    """

    def __init__(self, model: str | os.PathLike, backend: str = "auto", device: str = "auto",
                 threads: int | None = None, precision: str = "auto", style: ImageLike | None = None) -> None:
        if backend not in BACKENDS:
            raise PerceptError(f"unknown backend '{backend}'; use {', '.join(BACKENDS)}")
        if precision not in ("auto", "fp32", "bf16"):
            raise PerceptError(f"unknown precision '{precision}'; use auto, fp32 or bf16")
        if precision != "auto" and backend != "openvino":
            raise PerceptError(f"--precision {precision} is for the openvino backend (--backend openvino); "
                               "for onnxruntime, export the precision you want (percept export --fp16 or --int8)")
        try:
            files = find_model(model)
        except PerceptError as exc:
            from percept.inference.anystyle import LINEAR_MODEL

            if style is not None and str(model) == LINEAR_MODEL and str(exc).startswith("unknown model"):
                raise PerceptError(f"--style PAINTING needs the linear style model '{LINEAR_MODEL}' and it is not "
                                   "installed; train one with `percept train-linear`") from None
            raise
        onnx_path, pt_path = files.onnx, files.pt
        self.files = files
        self.style: str | None = None
        """The painting a linear style model runs with (its file name), else None."""
        if files.kind == ModelKind.LINEAR.value or style is not None:
            files, onnx_path, pt_path = self._linear(files, style, backend)
        """The model's files and card (:class:`percept.registry.ModelFiles`)."""
        requested = backend
        if backend == "auto":
            backend = "onnx" if onnx_path is not None and available_providers() else "torch"
        if backend == "openvino":
            if onnx_path is None:
                raise PerceptError(f"no .onnx file for model '{model}': the openvino backend runs the exported "
                                   "model (export one with `percept export`)")
            from percept.inference.openvino_backend import OpenVinoBackend

            self._impl: _OnnxBackend | _TorchBackend | OpenVinoBackend = OpenVinoBackend(onnx_path, device, threads,
                                                                                        precision)
            self.path = onnx_path
            stale = _stale_onnx(self._impl.card, files.card, onnx_path, pt_path)
            if stale:
                warn(stale)
        elif backend == "onnx":
            if onnx_path is None:
                raise PerceptError(f"no .onnx file for model '{model}' (export one with `percept export`, "
                                   "or use --backend torch)")
            self._impl = _OnnxBackend(onnx_path, device, threads)
            self.path = onnx_path
            stale = _stale_onnx(self._impl.card, files.card, onnx_path, pt_path)
            if stale and requested == "auto" and pt_path is not None:
                warn(f"{stale}; running {pt_path} with PyTorch instead (re-export: percept export {pt_path})")
                backend = "torch"
                self._impl = _TorchBackend(pt_path, device, threads)
                self.path = pt_path
            elif stale:
                warn(stale)
        elif self._baked is not None:
            self._impl = _TorchBackend(self._baked[0], device, threads, baked=self._baked[1])
            self.path = self._baked[0]
        else:
            if pt_path is None:
                raise PerceptError(f"no .pt checkpoint for model '{model}' (use --backend onnx)")
            self._impl = _TorchBackend(pt_path, device, threads)
            self.path = pt_path
        self.backend = backend
        self.provider: str = self._impl.provider
        self.precision: str = self._impl.precision
        self.name: str = self._impl.name
        if self.style is not None:
            self.name = f"{self._linear_name}+{self.style}"
        self.card: dict = self._impl.card
        self.min_size: int = self._impl.min_size
        """Smallest frame height and width the model takes."""

    _baked: tuple | None = None

    def _linear(self, files, style, backend: str):
        """A linear style model and its painting: the model's ONNX file with the painting baked in
        (:func:`percept.inference.linear.bake_style`; the torch backend: :class:`~percept.inference.linear.BakedLinear`).
        Returns (files, onnx path, pt path) for the backends."""
        from percept.registry import ModelFiles

        if files.kind != ModelKind.LINEAR.value:
            raise PerceptError(f"style= (a painting) is for the linear style model (e.g. linear_relu3_1); "
                               f"'{files.name}' is a trained style network with its own painting")
        if style is None:
            raise PerceptError(f"'{files.name}' is a linear style model: give it a painting (--style PAINTING)")
        from percept.images import painting_label, painting_tensor
        from percept.inference import linear

        label = painting_label(style, file_name=True)
        self.style, self._linear_name = label, files.name
        use_torch = backend == "torch" or (backend == "auto" and (files.onnx is None or not available_providers()))
        if use_torch:
            from percept.models.linear import load_linear

            pt = files.require_pt("the torch backend runs the PyTorch weights")
            net, _ = load_linear(pt)
            self._baked = (pt, linear.BakedLinear(net, painting_tensor(style, label)))
            return files, None, pt
        if files.onnx is None:
            raise PerceptError(f"no .onnx file for '{files.name}' (export one with `percept export {files.name}`, or "
                               "use --backend torch)")
        stale = _stale_onnx(json.loads(_onnx_meta(files.onnx).get("percept.card", "{}") or "{}"), files.card,
                            files.onnx, files.pt)
        if stale:
            warn(stale)
        baked = linear.bake_style(files.onnx, style, label)
        return ModelFiles(f"{files.name}+{label}", None, baked, files.card, files.source), baked, None

    def run(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, 3, H, W) RGB in [0, 1] -> the stylised batch, same shape, on the CPU."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise PerceptError(f"expected a (N, 3, H, W) batch, got shape {tuple(x.shape)}")
        check_frame_size(x.shape[2], x.shape[3], self.min_size, self.name, batch=x.shape[0])
        out = self._impl.run(x)
        if not np.isfinite(out).all():  # finite weights can still overflow: never write a black picture
            raise PerceptError(f"{self.path}: the model's output is not finite (NaN or infinity) for this input; "
                               "its weights are broken")
        return out

    def tensor(self, x):
        """torch (N, 3, H, W) in [0, 1] -> the stylised batch as a torch tensor on the CPU."""
        import torch

        return torch.from_numpy(np.asarray(self.run(x.detach().float().cpu().numpy()), dtype=np.float32))

    def frames(self, frames: Sequence[np.ndarray], strength: float = 1.0,
               preserve_color: bool = False) -> list[np.ndarray]:
        """Stylise same-sized uint8 HxWx3 RGB frames in one batch; returns uint8 frames, with
        ``strength`` and ``preserve_color`` applied (:func:`percept.images.finish_frame`)."""
        check_strength(strength)
        if not len(frames):
            return []
        batch = np.stack(frames).astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
        out = self.run(batch)
        styled = list((np.clip(out, 0.0, 1.0).transpose(0, 2, 3, 1) * 255.0 + 0.5).astype(np.uint8))
        if strength >= 1.0 and not preserve_color:
            return styled
        return [finish_frame(y, src, strength, preserve_color) for y, src in zip(styled, frames)]

    def __call__(self, image: ImageLike, size: int | None = None, strength: float = 1.0,
                 preserve_color: bool = False) -> Image.Image:
        """Stylise one image (path, PIL image or array) at ``size`` long side; returns a PIL image."""
        check_strength(strength)
        photo = resize_long_side(load_image(image), size)
        return Image.fromarray(self.frames([np.asarray(photo)], strength, preserve_color)[0], "RGB")

    def describe(self) -> str:
        return f"{self.name} via {self.backend} ({self.provider})"
