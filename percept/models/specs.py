"""Facts about the networks that need no torch: each architecture's default widths and residual blocks.

Kept apart so the command line can build its options (and ``percept --help`` answer) without
importing torch.
"""

from __future__ import annotations

__all__ = ["ARCH_DEFAULTS", "LINEAR_MODEL", "arch_default"]

ARCH_DEFAULTS: dict[str, dict] = {"johnson": {"channels": [32, 64, 128], "n_residual": 5},
                                  "rt": {"channels": [16, 32, 64], "n_residual": 4}}
"""Each architecture's default widths and residual blocks (training, distillation and the CLI read them here)."""

LINEAR_MODEL = "linear_relu3_1"
"""The shipped linear style transfer model (Li et al. 2019, :mod:`percept.models.linear`): what ``--style`` runs with
``--method linear``, in the video and on the webcam."""


def arch_default(arch: str, key: str):
    """``ARCH_DEFAULTS[arch][key]`` (a copy), or a one-line error for an unknown architecture."""
    if arch not in ARCH_DEFAULTS:
        raise ValueError(f"unknown architecture '{arch}'; known: {', '.join(ARCH_DEFAULTS)}")
    value = ARCH_DEFAULTS[arch][key]
    return list(value) if isinstance(value, list) else value
