"""Device selection shared by training, inference and the baselines."""

from __future__ import annotations

import platform

import torch

from percept.errors import PerceptError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when a GPU is usable, else the CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise PerceptError("--device cuda was asked for, but no CUDA GPU is available (use --device cpu or auto)")
        return torch.device(name)
    raise PerceptError(f"unknown device '{name}'; use auto, cpu or cuda")


def device_name(device: torch.device) -> str:
    """How model cards name the device a network was trained on."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({cpu_description()}, {torch.get_num_threads()} threads)"


CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
"""The instruction-set extensions that change which kernels onnxruntime and PyTorch run."""


def cpu_description() -> str:
    """This machine's CPU, as benchmarks name it: model, logical cores and the relevant instruction-set
    extensions, read at run time (e.g. ``Intel(R) Xeon(R) Processor, 2 cores, avx2 avx512f amx_bf16``)."""
    import os

    model = platform.processor() or platform.machine()
    name, flags = _cpuinfo()
    if name and model in ("", platform.machine(), platform.processor()):
        model = name
    have = " ".join(f for f in CPU_FEATURES if f in flags) or "no AVX2"
    return f"{model}, {os.cpu_count()} cores, {have}"


def cpu_has_bf16() -> bool:
    """Whether PyTorch's CPU kernels (oneDNN) compute in bf16 natively here: AVX512-BF16 or AMX. Elsewhere
    bf16 autocast is emulated and slower than fp32."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
                    and _cpu_flags() & {"avx512_bf16", "amx_bf16"})
    except (AttributeError, RuntimeError):
        return False


def _cpu_flags() -> set[str]:
    return _cpuinfo()[1]


def _cpuinfo() -> tuple[str | None, set[str]]:
    """(model name, instruction-set flags) of the first CPU in ``/proc/cpuinfo`` ((None, empty) elsewhere)."""
    name: str | None = None
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and name is None:
                    name = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
                if name is not None and flags:
                    break
    except OSError:
        pass
    return name, flags
