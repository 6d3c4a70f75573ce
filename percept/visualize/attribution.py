"""Which pixels matter: prediction, saliency, guided backprop, deconvnet, Grad-CAM and occlusion.

Every tool explains one *score* of one image:

* a class of a classifier: any ``nn.Module`` that maps RGB [0, 1] NCHW images to class logits - a
  torchvision classifier with local weights (wrapped in :class:`~percept.visualize.common.Normalized`),
  a percept classifier file (:func:`load_classifier_file`) or a plain module in Python;
* a channel of the loss network (``"relu4_1:12"``): the score is the channel's mean activation
  (:class:`LayerScores` turns a layer into a "classifier" over its channels).

The techniques, each one call returning plain tensors (the pictures are drawn by the CLI):

* :func:`saliency` - image-specific class saliency (Simonyan, Vedaldi & Zisserman 2014, "Deep Inside
  Convolutional Networks"): the gradient of the score, max ``|.|`` over colour channels; and
  :func:`segment_salient`, their weakly supervised segmentation: GrabCut (Rother et al. 2004) seeded
  by the saliency map.
* :func:`guided_backprop` (Springenberg et al. 2015, "Striving for Simplicity") and :func:`deconvnet`
  (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks").
* :func:`grad_cam` - Grad-CAM and guided Grad-CAM (Selvaraju et al. 2017).
* :func:`occlusion` - the score as a grey patch slides over the image (Zeiler & Fergus 2014).
* :func:`predict` - the top-k classes (or most active channels of a layer).

captum does the gradient work (``Saliency``, ``GuidedBackprop``, ``Deconvolution``, ``LayerGradCam``,
``Occlusion``); it registers its hooks per call and removes them in ``finally``, and so do we
(:func:`~percept.visualize.common.count_hooks` is 0 after every call, errors included). Guided
backprop and deconvnet override the gradient of ``nn.ReLU`` *modules*; a ReLU written as
``F.relu`` inside ``forward`` (torchvision's DenseNet ends with one) is passed through unchanged.

A percept classifier file is ``torch.save({"kind": "classifier", "arch": ..., "config": {...},
"state_dict": ..., "labels": [...], "input_size": N, "normalize": "imagenet" | None})``; ``arch`` is
``"small_cnn"`` (:class:`SmallCNN`) or a torchvision classifier name. It is read with
``weights_only=True``.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from percept.checkpoint import read_torch_file
from percept.errors import PerceptError
from percept.images import atomic_write_bytes, to_tensor, to_uint8
from percept.models.efficientnet import (
    INPUT_SIZE,
    ImageNetClassifier,
    imagenet_classes,
    imagenet_labels,
    load_efficientnet_lite0,
    resolve_class,
)
from percept.models.vgg import LossNetwork
from percept.visualize.common import (
    TORCHVISION_CLASSIFIERS,
    ChannelTarget,
    Normalized,
    channel_target,
    check_class_index,
    hooks,
    load_classifier,
    normalize01,
    parse_target,
)
from percept.visualize.options import OcclusionOptions, PredictOptions, SaliencyOptions

# ------------------------------------------------------------------------------------------ models

class SmallCNN(nn.Module):
    """A small classifier: (conv 3x3 - ReLU - max-pool 2) per width, global average pooling, linear.

    Each ReLU is its own non-inplace ``nn.ReLU`` module (guided backprop and deconvnet need that).
    Global average pooling makes it take any input size. Input: RGB in [0, 1].
    """

    def __init__(self, num_classes: int = 4, widths: Sequence[int] = (16, 32)) -> None:
        super().__init__()
        self.num_classes, self.widths = int(num_classes), [int(w) for w in widths]
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = 3
        for i, w in enumerate(self.widths, start=1):
            layers[f"conv{i}"] = nn.Conv2d(c_in, w, 3, padding=1)
            layers[f"relu{i}"] = nn.ReLU(inplace=False)
            layers[f"pool{i}"] = nn.MaxPool2d(2)
            c_in = w
        self.features = nn.Sequential(layers)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, self.num_classes)

    def config(self) -> dict:
        return {"num_classes": self.num_classes, "widths": list(self.widths)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.gap(self.features(x - 0.5)).flatten(1))


PERCEPT_ARCHS = {"small_cnn": SmallCNN}


@dataclass
class LoadedClassifier:
    """A classifier ready for the tools: RGB [0, 1] in, logits out; ``labels`` may be ``None``.
    ``classes`` (when known) gives every class all its names, for ``--class "tabby cat"``."""

    model: nn.Module
    name: str
    labels: list[str] | None = None
    input_size: int | None = None
    classes: tuple[tuple[str, ...], ...] | None = None

    def class_index(self, text: str | int, labels: Sequence[str] | None = None) -> int:
        """A class given by index or by name (any of its names, any case; a near miss gets suggestions)."""
        names = labels if labels is not None else (self.classes or self.labels)
        if names is not None and not isinstance(names, tuple) and len(names) == 1000 and \
                list(names) == imagenet_labels():
            names = imagenet_classes()      # the ImageNet list: every class with all its names
        if names is None:
            try:
                return int(text)
            except ValueError:
                raise PerceptError(f"class '{text}': give a class index (this classifier has no labels; "
                                   "see --labels)") from None
        return resolve_class(str(text), names)


DEFAULT_CLASSIFIER = "efficientnet_lite0"
"""The classifier of every class-based tool when none is given: EfficientNet-Lite0 with its ImageNet
weights (:mod:`percept.models.efficientnet`)."""


def imagenet_classifier(weights: str | Path | None = None) -> LoadedClassifier:
    """EfficientNet-Lite0 on ImageNet-1k, ready for the tools (RGB [0, 1] in, 1000 logits out, labels)."""
    classes = imagenet_classes()
    return LoadedClassifier(load_efficientnet_lite0(weights), DEFAULT_CLASSIFIER, [c[0] for c in classes],
                            INPUT_SIZE, classes)


def save_classifier(model: nn.Module, path: str | Path, labels: Sequence[str] | None = None,
                    input_size: int | None = None, arch: str | None = None, config: dict | None = None,
                    normalize: str | None = None) -> Path:
    """Write a percept classifier file (atomically). ``arch``/``config`` default to a
    :class:`SmallCNN`'s; for a torchvision model give ``arch`` (e.g. ``"resnet18"``) and
    ``normalize="imagenet"`` and pass the bare torchvision model (not the Normalized wrapper)."""
    import io

    if arch is None:
        if not isinstance(model, SmallCNN):
            raise PerceptError("save_classifier: give arch= for a model that is not a SmallCNN")
        arch, config = "small_cnn", model.config()
    blob = {"kind": "classifier", "arch": arch, "config": dict(config or {}),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "labels": list(labels) if labels is not None else None, "input_size": input_size,
            "normalize": normalize}
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def load_classifier_file(path: str | Path) -> LoadedClassifier:
    """Read a percept classifier file (see the module docstring) with ``weights_only=True``."""
    import torchvision

    path = Path(path)
    blob = read_torch_file(path, "no such classifier file", "not a readable torch file")
    if not isinstance(blob, dict) or blob.get("kind") != "classifier":
        raise PerceptError(f"{path}: not a percept classifier file (expected kind 'classifier'); for torchvision "
                           f"weights give the architecture, e.g. --classifier resnet18 --weights {path}")
    arch, config = blob.get("arch"), dict(blob.get("config") or {})
    if arch in PERCEPT_ARCHS:
        model = PERCEPT_ARCHS[arch](**config)
    elif arch in TORCHVISION_CLASSIFIERS:
        model = getattr(torchvision.models, arch)(weights=None, **config)
    else:
        raise PerceptError(f"{path}: unknown classifier architecture '{arch}'; known: "
                           f"{', '.join([*PERCEPT_ARCHS, *TORCHVISION_CLASSIFIERS])}")
    try:
        model.load_state_dict(blob["state_dict"])
    except (RuntimeError, KeyError, TypeError):
        raise PerceptError(f"{path}: the weights do not fit the '{arch}' architecture it names") from None
    model = model.eval().requires_grad_(False)
    if blob.get("normalize") == "imagenet":
        model = Normalized(model)
    labels = blob.get("labels")
    size = blob.get("input_size")
    return LoadedClassifier(model, path.stem, [str(s) for s in labels] if labels else None,
                            int(size) if size else None)


def open_classifier(spec: str | None = None, weights: str | Path | None = None) -> LoadedClassifier:
    """``--classifier`` on the command line: ``efficientnet_lite0`` (the default: ImageNet weights from
    the installed package, or ``weights``), a torchvision name with a local ``weights`` file (or the
    torch hub cache's file for it), or a percept classifier file."""
    if spec is None or spec == DEFAULT_CLASSIFIER:
        return imagenet_classifier(weights)
    if spec in TORCHVISION_CLASSIFIERS:
        return LoadedClassifier(Normalized(load_classifier(spec, weights)).eval(), spec)
    if weights is not None:
        raise PerceptError(f"--weights is for {DEFAULT_CLASSIFIER} and the torchvision classifiers "
                           f"({', '.join(TORCHVISION_CLASSIFIERS)}); '{spec}' is not one")
    if Path(spec).suffix == ".pt" or Path(spec).exists():
        return load_classifier_file(spec)
    import difflib

    known = [DEFAULT_CLASSIFIER, *TORCHVISION_CLASSIFIERS]
    close = [k for k in known if k.startswith(spec.lower()[:3])] or difflib.get_close_matches(spec, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise PerceptError(f"unknown classifier '{spec}'; {hint}give {DEFAULT_CLASSIFIER} (the default), a percept "
                       f"classifier file (.pt), or one of {', '.join(TORCHVISION_CLASSIFIERS)} with --weights")


def read_labels(path: str | Path, num_classes: int | None = None) -> list[str]:
    """One label per line (blank lines at the end ignored); ``"imagenet"`` gives the 1000 ImageNet
    class names (torchvision's spelling, shipped in ``percept/models/imagenet_classes.txt``)."""
    if str(path) == "imagenet":
        labels = imagenet_labels()
    else:
        p = Path(path)
        if not p.is_file():
            raise PerceptError(f"{p}: no such labels file")
        try:
            labels = p.read_text(encoding="utf-8").rstrip("\n").split("\n")
        except UnicodeDecodeError:
            raise PerceptError(f"{p}: not a UTF-8 text file of labels") from None
        labels = [s.strip() for s in labels]
    if num_classes is not None and len(labels) != num_classes:
        raise PerceptError(f"{path}: {len(labels)} labels for a classifier with {num_classes} classes")
    return labels


class LayerScores(nn.Module):
    """A layer of the loss network as a "classifier" over its channels: ``(N, C)`` mean activations.

    ``LayerScores("relu4_1")(x)[:, 12]`` is the score of the target ``relu4_1:12``.
    """

    def __init__(self, layer: str, net: LossNetwork | None = None) -> None:
        super().__init__()
        parse_target(layer)
        if net is None:
            net = _loss_network(layer)
        elif layer not in net.names:
            raise PerceptError(f"layer {layer} is past this loss network's last layer {net.names[-1]}")
        self.layer, self.net = layer, net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, [self.layer])[self.layer].mean((2, 3))


@functools.lru_cache(maxsize=4)
def _loss_network(layer: str) -> LossNetwork:
    return LossNetwork(layer)


# ------------------------------------------------------------------------------------------ targets

Target = int | str | ChannelTarget | None


@dataclass
class Scorer:
    """What a tool explains: ``model(x)[:, index]``; ``kind`` is ``"class"`` or ``"channel"``."""

    model: nn.Module
    index: int | None
    kind: str
    labels: list[str] | None = None

    def name(self, i: int | None = None) -> str:
        i = self.index if i is None else i
        if self.kind == "channel":
            return f"{self.model.layer}:{i}"
        if self.labels is not None and 0 <= i < len(self.labels):
            return self.labels[i]
        return f"class {i}"


def as_scorer(model: nn.Module | None, target: Target, labels: Sequence[str] | None = None) -> Scorer:
    """Resolve the two kinds of target into one :class:`Scorer`.

    * ``model`` a classifier, ``target`` a class index (``None``: decided later, e.g. the top class);
    * ``model`` ``None``, a :class:`LossNetwork` or a :class:`LayerScores`, ``target`` ``"relu4_1:12"``
      (or, with a ``LayerScores``, a channel index).
    """
    if isinstance(target, (str, ChannelTarget)):
        t = parse_target(target) if isinstance(target, str) else target
        if isinstance(model, LayerScores) and model.layer == t.layer:
            scores = model
        elif model is None or isinstance(model, LayerScores):
            scores = LayerScores(t.layer)
        elif isinstance(model, LossNetwork):
            scores = LayerScores(t.layer, model)
        else:
            raise PerceptError(f"target '{target}' is a loss-network channel; a classifier's target is a class index")
        return Scorer(scores, t.channel, "channel")
    if model is None:
        raise PerceptError("give a classifier (and a class index) or a loss-network target like relu4_1:12")
    if isinstance(model, LossNetwork):
        raise PerceptError("a loss-network target is LAYER:CHANNEL, e.g. relu4_1:12")
    if target is not None and not isinstance(target, (int, np.integer)):
        raise PerceptError(f"a class index is a whole number, got {target!r}")
    return Scorer(model, None if target is None else int(target),
                  "channel" if isinstance(model, LayerScores) else "class", list(labels) if labels else None)


def _as_batch(image: torch.Tensor | Image.Image) -> torch.Tensor:
    x = to_tensor(image) if isinstance(image, Image.Image) else image
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise PerceptError(f"expected one RGB image (1, 3, H, W), got shape {tuple(x.shape)}")
    return x.detach().float()


def _device_of(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run in eval mode (dropout off, batch-norm statistics frozen) and restore the caller's mode."""
    was = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, t in was:
            m.training = t


def _prepare(model: nn.Module | None, image, target: Target, labels=None,
             device: str | torch.device | None = None) -> tuple[Scorer, torch.Tensor, torch.Tensor]:
    """Scorer (moved to ``device`` when given), input batch on the model's device, and the model's
    output on it (no grad); fills in the top class when ``target`` is ``None`` and checks the index range."""
    sc = as_scorer(model, target, labels)
    if device is not None:
        sc.model.to(device)
    x = _as_batch(image).to(_device_of(sc.model))
    with torch.no_grad(), eval_mode(sc.model):
        out = sc.model(x)
    if out.dim() != 2 or out.shape[0] != 1:
        raise PerceptError(f"the model must return (N, classes) scores; it returned shape {tuple(out.shape)}")
    if sc.index is None:
        sc.index = int(out[0].argmax())
    elif sc.kind == "class":
        check_class_index(sc.index, out.shape[1])
    elif not 0 <= sc.index < out.shape[1]:
        raise PerceptError(f"'{sc.model.layer}:{sc.index}': {sc.model.layer} has channels 0..{out.shape[1] - 1}, "
                           f"got {sc.index}")
    if sc.labels is not None and len(sc.labels) != out.shape[1]:
        raise PerceptError(f"{len(sc.labels)} labels for a classifier with {out.shape[1]} classes")
    return sc, x, out


@contextlib.contextmanager
def _quiet_captum() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Bb]ackward hooks.*")
        warnings.filterwarnings("ignore", message=".*requires_grad.*")
        warnings.filterwarnings("ignore", category=UserWarning, module="captum")
        yield


# ------------------------------------------------------------------------------------------ predict

@dataclass
class Prediction:
    index: int
    label: str
    score: float
    probability: float | None


def predict(model: nn.Module | None, image: torch.Tensor | Image.Image, k: int = PredictOptions.k,
            labels: Sequence[str] | None = None, target: Target = None) -> list[Prediction]:
    """The ``k`` highest scores: a classifier's top classes with softmax probabilities, or (with
    ``target="relu4_1"``) the most active channels of a loss-network layer (mean activation, no
    probability)."""
    if isinstance(target, str):
        target = ChannelTarget(parse_target(target).layer, 0)
    sc, _, out = _prepare(model, image, target, labels)
    scores = out[0].float().cpu()
    probs = scores.softmax(0) if sc.kind == "class" else None
    top = scores.topk(min(k, scores.numel()))
    return [Prediction(int(i), sc.name(int(i)), float(s), None if probs is None else float(probs[i]))
            for s, i in zip(top.values, top.indices)]


# ------------------------------------------------------------------------------------------ gradients

@dataclass
class Attribution:
    """A tool's answer: ``map`` (H, W) heatmap or (3, H, W) gradient image at input size, the
    explained score and its name."""

    map: torch.Tensor
    score: float
    target: str
    index: int
    probability: float | None = None
    extra: dict = field(default_factory=dict)


def _result(sc: Scorer, out: torch.Tensor, amap: torch.Tensor, **extra) -> Attribution:
    p = float(out[0].softmax(0)[sc.index]) if sc.kind == "class" else None
    return Attribution(amap.detach().cpu(), float(out[0, sc.index]), sc.name(), sc.index, p, extra)


def saliency(model: nn.Module | None, image: torch.Tensor | Image.Image, target: Target = None,
             labels: Sequence[str] | None = None) -> Attribution:
    """Image-specific class saliency (Simonyan et al. 2014): ``max_c |d score / d image|``, (H, W).
    ``target=None`` explains the top class."""
    from captum.attr import Saliency

    sc, x, out = _prepare(model, image, target, labels)
    with _quiet_captum(), eval_mode(sc.model):
        g = Saliency(sc.model).attribute(x, target=sc.index, abs=True)
    return _result(sc, out, g[0].amax(0))


def guided_backprop(model: nn.Module | None, image: torch.Tensor | Image.Image, target: Target = None,
                    labels: Sequence[str] | None = None) -> Attribution:
    """Guided backpropagation (Springenberg et al. 2015): the gradient with every ReLU passing back
    only positive gradient where its input was positive; (3, H, W), signed."""
    from captum.attr import GuidedBackprop

    sc, x, out = _prepare(model, image, target, labels)
    _check_relus(sc.model, "guided backprop")
    with _quiet_captum(), eval_mode(sc.model):
        g = GuidedBackprop(sc.model).attribute(x, target=sc.index)
    return _result(sc, out, g[0])


def deconvnet(model: nn.Module | None, image: torch.Tensor | Image.Image, target: Target = None,
              labels: Sequence[str] | None = None) -> Attribution:
    """The deconvnet reconstruction (Zeiler & Fergus 2014): ReLUs pass back the positive part of the
    gradient regardless of their input; (3, H, W), signed."""
    from captum.attr import Deconvolution

    sc, x, out = _prepare(model, image, target, labels)
    _check_relus(sc.model, "deconvnet")
    with _quiet_captum(), eval_mode(sc.model):
        g = Deconvolution(sc.model).attribute(x, target=sc.index)
    return _result(sc, out, g[0])


def _check_relus(model: nn.Module, what: str) -> None:
    if not any(isinstance(m, nn.ReLU) for m in model.modules()):
        raise PerceptError(f"{what} changes the backward pass of nn.ReLU modules, and this model has none")


# ------------------------------------------------------------------------------------------ Grad-CAM

def spatial_layers(model: nn.Module, image: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """Names (as ``named_modules`` spells them) and output shapes of the modules whose output is a
    feature map (N, C, H, W), in the order they finish, from one forward pass of ``image``."""
    seen: list[tuple[str, tuple[int, ...]]] = []

    def recorder(name):
        def hook(_m, _i, out):
            if isinstance(out, torch.Tensor) and out.dim() == 4:
                seen.append((name, tuple(out.shape)))
        return hook

    mods = [(n, m) for n, m in model.named_modules() if n]
    x = _as_batch(image).to(_device_of(model))
    with hooks([functools.partial(m.register_forward_hook, recorder(n)) for n, m in mods]), \
            torch.no_grad(), eval_mode(model):
        model(x)
    return seen


def _inner_prefix(model: nn.Module) -> str:
    """The prefix a wrapper adds to the wrapped network's module names (``model.``, ``net.``)."""
    return "model." if isinstance(model, Normalized) else "net." if isinstance(model, ImageNetClassifier) else ""


def _display_name(model: nn.Module, name: str) -> str:
    prefix = _inner_prefix(model)
    return name[len(prefix):] if prefix and name.startswith(prefix) else name


def default_cam_layer(sc: Scorer, image: torch.Tensor) -> str:
    """Grad-CAM's default layer. A loss-network channel: the last ReLU of the block before the
    target's (``relu4_1:12`` -> ``relu3_4``), the target layer itself in block 1. A classifier: the
    last module with a feature map bigger than 1x1 before the (adaptive) global pooling, e.g.
    ``layer4`` of a ResNet, ``features`` of a VGG."""
    if isinstance(sc.model, LayerScores):
        layer = sc.model.layer
        block = int(layer[4]) if layer.startswith("pool") else int(layer.split("_")[0][-1])
        if block == 1:
            return layer
        return [n for n in sc.model.net.names if n.startswith(f"relu{block - 1}_")][-1]
    mods = dict(sc.model.named_modules())
    cands = [n for n, s in spatial_layers(sc.model, image)
             if s[2] * s[3] > 1 and not isinstance(mods[n], (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))]
    if not cands:
        raise PerceptError("this classifier has no layer with a feature map; Grad-CAM needs one (give --layer)")
    return _display_name(sc.model, cands[-1])


def _cam_module(sc: Scorer, name: str, image: torch.Tensor) -> nn.Module:
    if isinstance(sc.model, LayerScores):
        parse_target(name)
        names = sc.model.net.names
        if name not in names or names.index(name) > names.index(sc.model.layer):
            raise PerceptError(f"Grad-CAM layer {name} comes after the target layer {sc.model.layer}; "
                               f"choose one of {names[0]}..{sc.model.layer}")
        return getattr(sc.model.net, name)
    mods = dict(sc.model.named_modules())
    prefix = _inner_prefix(sc.model)
    if prefix and f"{prefix}{name}" in mods:
        return mods[f"{prefix}{name}"]
    if name in mods and name:
        return mods[name]
    cands = [_display_name(sc.model, n) for n, s in spatial_layers(sc.model, image) if s[2] * s[3] > 1]
    shown = ", ".join(dict.fromkeys(cands[-12:]))
    raise PerceptError(f"unknown layer '{name}' for Grad-CAM; layers with a feature map include: {shown}")


def grad_cam(model: nn.Module | None, image: torch.Tensor | Image.Image, target: Target = None,
             layer: str | None = None, labels: Sequence[str] | None = None, guided: bool = True) -> Attribution:
    """Grad-CAM (Selvaraju et al. 2017) at ``layer``: ReLU of the feature maps weighted by their
    spatially averaged gradients. ``map`` is the class-activation map upsampled (bilinear) to the
    input, in [0, 1] relative to its own max; ``extra["cam"]`` the raw low-resolution map,
    ``extra["layer"]`` the layer used, ``extra["guided"]`` guided Grad-CAM (guided backprop x map,
    (3, H, W)) when ``guided``."""
    from captum.attr import LayerGradCam

    sc, x, out = _prepare(model, image, target, labels)
    name = layer or default_cam_layer(sc, x)
    module = _cam_module(sc, name, x)
    with _quiet_captum(), eval_mode(sc.model):
        cam = LayerGradCam(sc.model, module).attribute(x, target=sc.index, relu_attributions=True)
    cam = cam.detach()
    if cam.dim() != 4:
        raise PerceptError(f"Grad-CAM layer '{name}' does not output a feature map (shape {tuple(cam.shape)})")
    cam = cam.sum(1, keepdim=True)
    up = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[0, 0].clamp_min(0)
    peak = float(up.max())
    up = up / peak if peak > 0 else up
    extra = {"cam": cam[0, 0].cpu(), "layer": name}
    if guided:
        gb = guided_backprop(sc.model, x, sc.index if sc.kind == "class" else f"{sc.model.layer}:{sc.index}")
        extra["guided"] = gb.map * up.cpu()
        extra["guided_backprop"] = gb.map
    return _result(sc, out, up, **extra)


# ------------------------------------------------------------------------------------------ occlusion

def occlusion(model: nn.Module | None, image: torch.Tensor | Image.Image, target: Target = None,
              patch: int | None = None, stride: int | None = None, baseline: float = OcclusionOptions.baseline,
              labels: Sequence[str] | None = None, batch: int = 16, progress: bool = False,
              probability: bool = True) -> Attribution:
    """Occlusion sensitivity (Zeiler & Fergus 2014): slide a grey ``patch`` x ``patch`` square over the
    image with ``stride`` and record how the score falls. For a class the score is its softmax
    probability (``probability=False``: the logit, which does not saturate near 1), for a channel its
    mean activation. ``map`` (H, W): the average fall over the
    positions covering each pixel (high = important); ``extra["occluded"]`` the score with the patch
    there (``score - map``). Defaults: patch = 1/7 of the short side, stride = patch / 2."""
    from captum.attr import Occlusion

    sc, x, out = _prepare(model, image, target, labels)
    h, w = x.shape[2:]
    patch = patch or max(2, round(min(h, w) / 7))
    stride = stride or max(1, patch // 2)
    if patch > min(h, w):
        raise PerceptError(f"occlusion patch {patch} px is bigger than the image ({w}x{h})")
    if stride < 1 or patch < 1:
        raise PerceptError("occlusion patch and stride must be at least 1 px")
    if sc.kind == "class" and probability:
        def forward(t):
            return sc.model(t).softmax(1)
    else:
        forward = sc.model
    with _quiet_captum(), eval_mode(sc.model), torch.no_grad():
        drop = Occlusion(forward).attribute(x, target=sc.index, sliding_window_shapes=(3, patch, patch),
                                            strides=(3, stride, stride), baselines=baseline,
                                            perturbations_per_eval=batch, show_progress=progress)
    drop = drop[0].mean(0)
    with torch.no_grad(), eval_mode(sc.model):
        base = float(forward(x)[0, sc.index])
    return _result(sc, out, drop, occluded=(base - drop).cpu(), patch=patch, stride=stride, base=base)


# ------------------------------------------------------------------------------------------ segmentation

def segment_salient(image: torch.Tensor | Image.Image, saliency_map: torch.Tensor,
                    fg_quantile: float = SaliencyOptions.fg_quantile, bg_quantile: float = SaliencyOptions.bg_quantile,
                    iterations: int = 5, smooth: float | None = None) -> np.ndarray:
    """Weakly supervised segmentation from a saliency map (Simonyan et al. 2014, section 3.2): GrabCut
    (Rother et al. 2004, ``cv2.grabCut``) seeded by the (lightly smoothed) map. Pixels below its
    ``bg_quantile`` are background, the rest probable foreground - most surely those above its
    ``fg_quantile``; the colour models and the graph cut decide the rest. Should GrabCut give the
    whole image (or all but a sliver) to the background, the pixels above ``fg_quantile`` become sure
    foreground and it runs again. Returns a boolean (H, W) mask of the object."""
    import cv2

    if not 0 < bg_quantile < fg_quantile < 1:
        raise PerceptError(f"need 0 < bg_quantile < fg_quantile < 1, got {bg_quantile} and {fg_quantile}")
    x = _as_batch(image)[0]
    rgb = to_uint8(x.permute(1, 2, 0).cpu().numpy())
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    s = saliency_map.detach().float().cpu().numpy()
    if s.shape != bgr.shape[:2]:
        raise PerceptError(f"saliency map {s.shape} and image {bgr.shape[:2]} differ in size")
    sigma = smooth if smooth is not None else max(s.shape) / 100
    if sigma > 0:
        s = cv2.GaussianBlur(s, (0, 0), sigma)
    hi, lo = np.quantile(s, fg_quantile), np.quantile(s, bg_quantile)
    if hi <= lo:
        raise PerceptError("the saliency map is flat: nothing stands out to segment")
    for sure in (cv2.GC_PR_FGD, cv2.GC_FGD):
        mask = np.full(s.shape, cv2.GC_PR_FGD, np.uint8)
        mask[s >= hi] = sure
        mask[s <= lo] = cv2.GC_BGD
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        try:
            cv2.grabCut(bgr, mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
        except cv2.error as exc:
            raise PerceptError(f"GrabCut failed on this saliency map ({str(exc).strip().splitlines()[-1]})") from None
        fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
        if fg.mean() >= (1 - fg_quantile) / 2:      # not (next to) nothing: keep it
            break
    return fg


# ------------------------------------------------------------------------------------------ pictures

def gradient_image(g: torch.Tensor, percentile: float = 99.5) -> torch.Tensor:
    """A signed (3, H, W) gradient as a picture: grey is 0, scaled so the ``percentile`` of ``|g|``
    reaches the ends of [0, 1]."""
    g = g.detach().float().cpu()
    scale = float(torch.quantile(g.abs().flatten(), percentile / 100)) if g.numel() else 0.0
    if scale <= 0:
        scale = float(g.abs().max()) or 1.0
    return (0.5 + 0.5 * g / scale).clamp(0, 1)


def heat_image(h: torch.Tensor, colormap: str | None = None, percentile: float = 100.0) -> Image.Image:
    """A raw (H, W) map as a picture: greyscale (white = high) or a cv2 colour map, scaled from its
    minimum to its ``percentile`` (below 100 keeps a few extreme pixels from making the rest black)."""
    h = h.detach().float().cpu()
    if percentile < 100 and h.numel():
        h = h.clamp(max=float(torch.quantile(h.flatten(), percentile / 100)))
    a = to_uint8(normalize01(h).numpy())
    if colormap is None:
        return Image.fromarray(a, "L").convert("RGB")
    import cv2

    c = cv2.applyColorMap(a, getattr(cv2, f"COLORMAP_{colormap.upper()}"))
    return Image.fromarray(cv2.cvtColor(c, cv2.COLOR_BGR2RGB))


__all__ = ["ClassifierLayers", "SmallCNN", "LoadedClassifier", "DEFAULT_CLASSIFIER", "imagenet_classifier",
           "save_classifier", "load_classifier_file", "open_classifier", "read_labels", "LayerScores", "Scorer",
           "as_scorer", "eval_mode", "Prediction", "predict", "Attribution", "saliency", "guided_backprop", "deconvnet",
           "spatial_layers", "default_cam_layer", "grad_cam", "occlusion", "segment_salient", "gradient_image",
           "heat_image"]


# ------------------------------------------------------------------------------------------ classifier layers

class ClassifierLayers(nn.Module):
    """A classifier's feature maps behind the loss network's interface, so DeepDream and activation
    maximisation take a classifier's layers and class logits as objectives.

    ``layers(x, ["_blocks.10", "logits"])`` -> ``{name: (N, C, h, w)}``: a module's output by its name
    (as Grad-CAM names them: ``_blocks.10``, ``_relu1``), and ``"logits"``: the class scores as
    (N, classes, 1, 1), so target ``logits:9`` (or ``logits:ostrich``) is class 9's logit. The modules
    are hooked for one forward pass at a time; the pass stops early once every asked-for layer has
    been seen (the logits need the whole network).
    """

    LOGITS = "logits"

    def __init__(self, classifier: LoadedClassifier) -> None:
        super().__init__()
        self.classifier = classifier
        self.model = classifier.model
        probe = torch.zeros(1, 3, classifier.input_size or 224, classifier.input_size or 224,
                            device=_device_of(self.model))
        seen = [_display_name(self.model, n) for n, s in spatial_layers(self.model, probe)]
        self.names = list(dict.fromkeys(seen)) + [self.LOGITS]
        self._modules_by_name = {_display_name(self.model, n): m for n, m in self.model.named_modules() if n}
        self._widths: dict[str, int] = {}

    def parse(self, text: str | ChannelTarget, need_channel: bool = False) -> ChannelTarget:
        """``MODULE``, ``MODULE:CHANNEL`` or ``logits:CLASS`` (index or name) -> :class:`ChannelTarget`."""
        if isinstance(text, ChannelTarget):
            text = str(text)
        layer, _, ch = str(text).partition(":")
        if layer not in self.names:
            import difflib

            close = difflib.get_close_matches(layer, self.names, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise PerceptError(f"unknown layer '{layer}' of {self.classifier.name}; {hint}its layers include "
                               f"{', '.join(self.names[-8:])}")
        if not ch:
            if need_channel or layer == self.LOGITS:
                raise PerceptError(f"'{text}': give a channel as {layer}:N" +
                                   (" (a class index or name, e.g. logits:ostrich)" if layer == self.LOGITS else ""))
            return ChannelTarget(layer)
        if layer == self.LOGITS:
            return ChannelTarget(layer, self.classifier.class_index(ch))
        return channel_target(str(text), layer, ch, self.channels(layer))

    def channels(self, layer: str) -> int:
        """How many channels ``layer`` has (classes, for ``logits``); one probe pass per layer, remembered."""
        if layer not in self._widths:
            probe = torch.zeros(1, 3, 64, 64, device=_device_of(self.model))
            with torch.no_grad():
                self._widths[layer] = int(self(probe, [layer])[layer].shape[1])
        return self._widths[layer]

    def label(self, t: ChannelTarget) -> str:
        if t.layer == self.LOGITS and self.classifier.labels and t.channel is not None:
            return f"{self.classifier.labels[t.channel]} (logit {t.channel})"
        return str(t)

    def forward(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        got: dict[str, torch.Tensor] = {}
        want = [n for n in layers if n != self.LOGITS]
        for n in want:
            if n not in self._modules_by_name:
                raise PerceptError(f"unknown layer '{n}' of {self.classifier.name}")

        def grab(name):
            def hook(_m, _i, out):
                got[name] = out
            return hook

        regs = [functools.partial(self._modules_by_name[n].register_forward_hook, grab(n)) for n in want]
        with hooks(regs):
            logits = self.model(x)
        if self.LOGITS in layers:
            got[self.LOGITS] = logits[:, :, None, None]
        return got
