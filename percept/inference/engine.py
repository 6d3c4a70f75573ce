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

from percept.device import resolve_device
from percept.errors import PerceptError, warn
from percept.images import (
    ImageLike,
    check_strength,
    finish_frame,
    load_image,
    painting_label,
    painting_tensor,
    resize_long_side,
    to_float,
    to_uint8,
)
from percept.inference import linear
from percept.inference.openvino_backend import OpenVinoBackend
from percept.inference.runtime import (  # noqa: F401 - re-exported: the engine's public helpers
    OnnxBackend,
    available_memory,
    available_providers,
    check_frame_size,
    choose_providers,
    cuda_gpu_present,
    onnx_metadata,
    percept_metadata,
    session_options,
    stale_onnx,
)
from percept.inference.shipped import onnx_on_first_use
from percept.models.linear import load_linear
from percept.models.specs import LINEAR_MODEL
from percept.models.transformer import load_style_network
from percept.registry import ModelFiles, ModelKind, find_model

__all__ = ["BACKENDS", "Engine", "available_providers", "check_frame_size", "choose_providers", "session_options"]

BACKENDS = ("auto", "onnx", "torch", "openvino")
class _TorchBackend:
    def __init__(self, path: Path, device: str, threads: int | None, baked=None) -> None:
        import torch

        if device == "tensorrt":
            raise PerceptError("`device` tensorrt needs the onnx backend")
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
            raise PerceptError(f"`precision` {precision} is for the openvino backend (`backend` openvino); "
                               "for onnxruntime, export the precision you want (percept export --fp16 or --int8)")
        try:
            files = find_model(model)
        except PerceptError as exc:
            if style is not None and str(model) == LINEAR_MODEL and str(exc).startswith("unknown model"):
                raise PerceptError(f"`style` PAINTING needs the linear style model '{LINEAR_MODEL}' and it is not "
                                   "installed; train one with `percept train-linear`") from None
            raise
        files = onnx_on_first_use(files, backend)  # a shipped .pt without its .onnx: exported once into the cache
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
            self._impl: OnnxBackend | _TorchBackend | OpenVinoBackend = OpenVinoBackend(onnx_path, device, threads,
                                                                                        precision)
            self.path = onnx_path
            stale = stale_onnx(self._impl.card, files.card, onnx_path, pt_path)
            if stale:
                warn(stale)
        elif backend == "onnx":
            if onnx_path is None:
                raise PerceptError(f"no .onnx file for model '{model}' (export one with `percept export`, "
                                   "or use --backend torch)")
            self._impl = OnnxBackend(onnx_path, device, threads)
            self.path = onnx_path
            stale = stale_onnx(self._impl.card, files.card, onnx_path, pt_path)
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
                raise PerceptError(f"no .pt checkpoint for model '{model}' (use `backend` onnx)")
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
        if files.kind != ModelKind.LINEAR.value:
            raise PerceptError(f"style= (a painting) is for the linear style model (e.g. linear_relu3_1); "
                               f"'{files.name}' is a trained style network with its own painting")
        if style is None:
            raise PerceptError(f"'{files.name}' is a linear style model: give it a painting (`style` PAINTING)")
        label = painting_label(style, file_name=True)
        self.style, self._linear_name = label, files.name
        use_torch = backend == "torch" or (backend == "auto" and (files.onnx is None or not available_providers()))
        if use_torch:
            pt = files.require_pt("the torch backend runs the PyTorch weights")
            net, _ = load_linear(pt)
            self._baked = (pt, linear.BakedLinear(net, painting_tensor(style, label)))
            return files, None, pt
        if files.onnx is None:
            raise PerceptError(f"no .onnx file for '{files.name}' (export one with `percept export {files.name}`, or "
                               "use --backend torch)")
        stale = stale_onnx(json.loads(onnx_metadata(files.onnx).get("percept.card", "{}") or "{}"), files.card,
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
        batch = to_float(np.stack(frames)).transpose(0, 3, 1, 2)
        out = self.run(batch)
        styled = list(to_uint8(out.transpose(0, 2, 3, 1)))
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
