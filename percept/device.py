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
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
