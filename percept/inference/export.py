"""ONNX export of trained networks, verified before anything is written.

``percept export MODEL -o OUT.onnx`` turns a percept checkpoint into an ONNX file that any ONNX
runtime can run:

* style networks: one input ``image`` and one output ``stylized``, both float32 NCHW RGB in [0, 1],
  with dynamic batch, height and width (the graph pads to a multiple of 4 itself and crops back, so
  any size from 8 px up goes in and the same size comes out);
* feature decoders: one input ``features`` (float32 NCHW, the VGG19 layer's channels, as
  ``percept.models.vgg.LossNetwork`` computes them from RGB in [0, 1]) and one output ``image``
  (RGB in [0, 1], ``stride`` times the feature map's height and width), dynamic batch/height/width;
* metadata inside the file (``percept.kind``, ``percept.name``, ``percept.input``, ``percept.card``
  - a JSON summary of the model card ...), which :class:`percept.inference.engine.Engine` checks;
* ``--fp16`` stores the weights and arithmetic in float16 with float32 inputs and outputs kept, so it
  is a drop-in replacement (half the file; faster on GPUs, usually not on CPUs);
* ``--fp16-weights`` stores only the weights in float16 (half the file) and computes in float32: each
  stored weight goes through a ``Cast`` to float32, which onnxruntime folds into a constant when the
  session starts, so speed is that of the fp32 file. The network's weights are rounded to float16
  first and the file is checked against that rounded network at the fp32 tolerance; what the rounding
  itself costs is measured and reported (``ExportReport.rounding_diff``). The shipped models are
  stored this way (``scripts/pack_checkpoints.py``);
* ``--int8`` (style networks) quantizes every convolution to int8 (per-channel symmetric weights,
  uint8 activations, QDQ format) with activation ranges calibrated on photos (``--calibration DIR``,
  default: six of scikit-image's sample photos), float32 in and out: ~2x faster than fp32 for the
  full-size network on CPUs with AVX-512 VNNI, at a small cost in fidelity (it is checked by PSNR
  against PyTorch on photos held out from the calibration, not by the fp32 tolerance).

Networks are exported in their deploy form (``percept.models.deploy``): exact rewrites of the
upsampling and output layers that onnxruntime runs faster; the check below compares the file with the
network as trained.

Before the file is written, the ONNX checker runs on it and onnxruntime is compared with PyTorch on
several sizes (odd ones included); a model that disagrees by more than the tolerance is refused and
nothing is left on disk.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from percept.checkpoint import checkpoint_digest, load_checkpoint
from percept.errors import PerceptError
from percept.images import atomic_write_bytes, check_writable
from percept.inference.deploy_options import ExportOptions
from percept.inference.linear import LINEAR_CHECK_PAIRS, export_linear
from percept.inference.openvino_backend import bf16_supported, check_bf16, openvino_core, openvino_installed
from percept.inference.runtime import (  # noqa: F401 - re-exported: the exporter's helpers as before
    CALIBRATION_SAMPLES,
    CALIBRATION_SIZE,
    FP16_WEIGHTS_MIN_ELEMENTS,
    calibration_images,
    round_weights_fp16,
    session_options,
    store_weights_fp16,
)
from percept.models.decoder import load_decoder
from percept.models.deploy import deploy_form
from percept.models.linear import load_linear
from percept.models.transformer import load_style_network
from percept.registry import find_model
from percept.version import __version__

DEFAULT_OPSET = ExportOptions.opset
CHECK_SIZES: tuple[tuple[int, int, int], ...] = ((1, 64, 64), (2, 97, 131), (1, 255, 190), (1, 33, 47))
"""(batch, height, width) of the random inputs ONNX and PyTorch are compared on."""
TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2}
"""Largest accepted max-abs difference between onnxruntime and PyTorch (images in [0, 1])."""
INPUT_NAME, OUTPUT_NAME = "image", "stylized"
INPUT_SPEC = "float32 NCHW RGB in [0, 1], any batch, height and width >= {min_size}"
EXPORTABLE_KINDS = ("style-transformer", "feature-decoder", "linear-style")
INT8_MIN_PSNR = 20.0
"""Smallest accepted PSNR (dB) of an int8 export against PyTorch on the held-out calibration photos."""
DECODER_CHECK_SIZES: tuple[tuple[int, int, int], ...] = ((1, 8, 8), (2, 13, 7), (1, 5, 9))
"""(batch, height, width) of the random feature maps a decoder is checked on."""


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how closely it matches PyTorch."""

    path: Path
    opset: int
    precision: str
    max_abs_diff: float
    sizes: list[tuple[int, int, int]] = field(default_factory=list)
    bytes: int = 0
    channels: int = 3
    """Channels of the input (3 for a style network, the layer's for a decoder)."""
    psnr: float | None = None
    """int8 only: the worst PSNR (dB) against PyTorch over ``photos`` held-out calibration photos."""
    photos: int = 0
    weights: str = "fp32"
    """How the weights are stored in the file: ``fp32`` or ``fp16`` (``fp16_weights``)."""
    rounding_diff: float = 0.0
    """``fp16_weights`` only: max abs difference of the rounded network against the network as it was."""
    bf16: Any = None
    """Style networks, where OpenVINO is installed and the CPU has bf16: OpenVINO's bf16 against its fp32
    (a :class:`percept.inference.openvino_backend.Bf16Check`), recorded in the file."""


def _card_summary(card: dict) -> dict:
    hp = card.get("hyperparameters", {})
    keep = ("image_size", "batch_size", "iterations", "content_weight", "style_weight", "tv_weight", "layer", "loss")
    return {
        "name": card.get("name"), "style": card.get("style", {}).get("file"), "layer": card.get("layer"),
        "architecture": card.get("architecture", {}), "hyperparameters": {k: hp[k] for k in keep if k in hp},
        "iterations": card.get("iterations"), "device": card.get("device"),
        "wall_time_s": card.get("wall_time_s"), "trained_at": card.get("trained_at"),
        "weights_sha256": card.get("weights_sha256"),
    }


def _load_torch_model(model: str | os.PathLike) -> tuple[torch.nn.Module, dict, str]:
    path = find_model(model).require_pt("export starts from the PyTorch weights")
    kind = load_checkpoint(path)["kind"]
    if kind not in EXPORTABLE_KINDS:
        raise PerceptError(f"{path}: cannot export a '{kind}' checkpoint (exportable: {', '.join(EXPORTABLE_KINDS)})")
    if kind == "feature-decoder":
        net, card = load_decoder(path)
    elif kind == "linear-style":
        net, card = load_linear(path)
    else:
        net, card = load_style_network(path)
    return net.float().eval(), card, kind


def _io(net: torch.nn.Module) -> tuple[str, str, str, str]:
    """(input name, output name, input spec, output spec) of a network kind."""
    if hasattr(net, "in_channels"):  # a FeatureDecoder
        return ("features", "image",
                f"float32 NCHW {net.layer} features of VGG19 (Caffe weights; {net.in_channels} channels), "
                "any batch, height and width >= 2",
                f"float32 NCHW RGB in [0, 1], {net.stride}x the features' height and width")
    return (INPUT_NAME, OUTPUT_NAME, INPUT_SPEC.format(min_size=min_size(net)),
            "float32 NCHW RGB in [0, 1], the input's batch, height and width")


def min_size(net: torch.nn.Module) -> int:
    """Smallest height/width a network takes (decoders: 2 feature pixels; style networks: their own)."""
    return 2 if hasattr(net, "in_channels") else int(getattr(net, "min_size", 8))


def _example(net: torch.nn.Module, n: int, h: int, w: int, gen: torch.Generator | None = None) -> torch.Tensor:
    """A random input for ``net``: an RGB image, or (for a decoder) relu-like features at its scale."""
    if hasattr(net, "in_channels"):
        return torch.rand(n, net.in_channels, h, w, generator=gen) * 2.0 / net.in_scale.float()
    return torch.rand(n, 3, h, w, generator=gen)


def _interrupted(exc: BaseException) -> bool:
    """Whether a Ctrl-C lies in ``exc``'s chain: torch.onnx's exporter (and other libraries) catch the
    KeyboardInterrupt that lands inside them and raise their own error "from" it (issue 30 row 10: 100 lines,
    three tracebacks and exit 1 for a Ctrl-C during ``percept export``)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def keep_interrupts(fn):
    """Decorator: an error caused by a Ctrl-C is the Ctrl-C again (the CLI's one line, exit 130)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if _interrupted(exc):
                raise KeyboardInterrupt from None
            raise
    return wrapper


@keep_interrupts
def _to_onnx_bytes(net: torch.nn.Module, opset: int, deploy: bool = True) -> bytes:
    """Export with dynamic batch/height/width through the torch.export-based exporter.

    The network is exported in its deploy form (:func:`percept.models.deploy.deploy_form`: the
    same function with sub-pixel upsampling convolutions and a factorised output layer, which
    onnxruntime runs faster on a CPU; ``deploy=False`` exports the layers as trained, for
    ``scripts/bench_deploy.py``); the caller checks the result against ``net`` itself.
    """
    decoder = hasattr(net, "in_channels")
    if deploy:
        net = deploy_form(net)
    in_name, out_name, _, _ = _io(net)
    batch = torch.export.Dim("batch", min=1, max=1024)
    height = torch.export.Dim("height", min=min_size(net), max=16384)
    width = torch.export.Dim("width", min=min_size(net), max=16384)
    example = _example(net, 2, 12, 14) if decoder else torch.rand(2, 3, 64, 72)
    arg = "features" if decoder else "x"
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), \
            contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        target = Path(tmp) / "model.onnx"
        torch.onnx.export(net, (example,), str(target), dynamo=True, opset_version=opset,
                          input_names=[in_name], output_names=[out_name],
                          dynamic_shapes={arg: {0: batch, 2: height, 3: width}},
                          external_data=False, verbose=False)
        return target.read_bytes()


def _to_fp16(model):
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_float_to_float16(model, keep_io_types=True)
    _topological_sort(model.graph)  # the converter appends its input casts after their users
    del model.graph.value_info[:]  # stale fp32 shape annotations; the checker re-infers them
    return model


def _topological_sort(graph) -> None:
    """Reorder ``graph.node`` in place so every node comes after the nodes that produce its inputs."""
    produced_by = {out: i for i, node in enumerate(graph.node) for out in node.output}
    order, state = [], {}

    def visit(i: int) -> None:
        stack = [(i, iter(graph.node[i].input))]
        state[i] = 1
        while stack:
            j, inputs = stack[-1]
            for name in inputs:
                k = produced_by.get(name)
                if k is not None and k not in state:
                    state[k] = 1
                    stack.append((k, iter(graph.node[k].input)))
                    break
            else:
                stack.pop()
                order.append(j)

    for i in range(len(graph.node)):
        if i not in state:
            visit(i)
    nodes = [graph.node[i] for i in order]
    del graph.node[:]
    graph.node.extend(nodes)


def _to_int8(model_bytes: bytes, images: list[np.ndarray], input_name: str) -> bytes:
    """Static QDQ int8 quantization of every Conv, activation ranges from ``images``."""
    import logging

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{input_name: im} for im in images])

        def get_next(self):
            return next(self._it, None)

    root = logging.getLogger()
    level = root.level
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root.setLevel(logging.ERROR)  # the quantizer logs advice on the root logger
        try:
            src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
            src.write_bytes(model_bytes)
            quantize_static(str(src), str(dst), _Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=["Conv"], extra_options={"WeightSymmetric": True})
            return dst.read_bytes()
        finally:
            root.setLevel(level)


def _pairs_with_torch(onnx_bytes: bytes, net: torch.nn.Module, inputs):
    """(onnxruntime output, PyTorch output) for each input tensor, onnxruntime on the CPU with the
    session options the engine uses; a shape mismatch is an error."""
    import onnxruntime as ort


    sess = ort.InferenceSession(onnx_bytes, session_options(), providers=["CPUExecutionProvider"])
    in_name, out_name, _, _ = _io(net)
    for x in inputs:
        with torch.inference_mode():
            ref = net(x).numpy()
        got = sess.run([out_name], {in_name: x.numpy()})[0].astype(np.float32)
        if got.shape != ref.shape:
            raise PerceptError(f"ONNX output shape {got.shape} differs from PyTorch's {ref.shape} at {tuple(x.shape)}")
        yield got, ref


def psnr_against_torch(onnx_bytes: bytes, net: torch.nn.Module, images: list[np.ndarray]) -> tuple[float, float]:
    """(worst PSNR in dB, max abs difference) of onnxruntime against PyTorch over photos."""
    worst, diff = float("inf"), 0.0
    for got, ref in _pairs_with_torch(onnx_bytes, net, (torch.from_numpy(x) for x in images)):
        worst = min(worst, 10 * np.log10(1.0 / max(float(np.mean((got - ref) ** 2)), 1e-12)))
        diff = max(diff, float(np.abs(got - ref).max()))
    return worst, diff


def compare_with_torch(onnx_bytes: bytes, net: torch.nn.Module,
                       sizes=None, seed: int = 0) -> float:
    """Max abs difference between onnxruntime (CPU, the session options the engine uses) and PyTorch
    over random inputs of ``sizes``."""
    if sizes is None:
        sizes = DECODER_CHECK_SIZES if hasattr(net, "in_channels") else CHECK_SIZES
    gen = torch.Generator().manual_seed(seed)
    inputs = (_example(net, n, h, w, gen) for n, h, w in sizes)
    return max(float(np.abs(got - ref).max()) for got, ref in _pairs_with_torch(onnx_bytes, net, inputs))


def _rounding_cost(net: torch.nn.Module, sizes) -> float:
    """Round ``net``'s weights to float16 in place; returns the max abs change of its output over the
    check inputs (what storing the weights in float16 costs, before any runtime is involved)."""
    gen = torch.Generator().manual_seed(0)
    inputs = [_example(net, n, h, w, gen) for n, h, w in sizes]
    with torch.inference_mode():
        before = [net(x) for x in inputs]
    round_weights_fp16(net)
    with torch.inference_mode():
        return max(float((net(x) - b).abs().max()) for x, b in zip(inputs, before))


def _check_export(out: str | os.PathLike, opset: int, fp16: bool, int8: bool, fp16_weights: bool,
                  calibration) -> Path:
    """One clear error for export options that cannot work, before any work; the output path."""
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise PerceptError(f"{out}: the output file must end in .onnx")
    if out.parent.exists() and not out.parent.is_dir():
        raise PerceptError(f"{out.parent}: is not a folder")
    check_writable(out.parent)
    if not 7 <= opset <= 23:
        raise PerceptError(f"--opset {opset} is not supported; use 17 to 23 (default {DEFAULT_OPSET})")
    if sum((fp16, int8, fp16_weights)) > 1:
        raise PerceptError("choose one of --fp16, --fp16-weights and --int8")
    if calibration is not None and not int8:
        raise PerceptError("--calibration is for --int8 exports")
    return out


def _metadata(net, card: dict, kind: str, model, in_spec: str, out_spec: str, precision: str, fp16_weights: bool,
              linear_meta: dict) -> dict[str, str]:
    """The ``percept.*`` metadata an exported file carries (what the engine, OpenVINO and the web page read)."""
    meta = {
        "percept.kind": kind,
        "percept.name": str(card.get("name") or Path(str(model)).stem),
        "percept.version": __version__,
        "percept.input": in_spec,
        "percept.output": out_spec,
        "percept.precision": precision,
        "percept.weights": "fp16" if fp16_weights else precision,
        "percept.style": str(card.get("style", {}).get("file", "")),
        "percept.architecture": json.dumps(card.get("architecture", {})),
        "percept.card": json.dumps(_card_summary(card)),
    }
    meta["percept.min_size"] = str(min_size(net))
    meta.update(linear_meta)
    if kind == "feature-decoder":
        meta["percept.layer"] = net.layer
        meta["percept.stride"] = str(net.stride)
    return meta


@keep_interrupts
def export_onnx(model: str | os.PathLike, out: str | os.PathLike, opset: int = DEFAULT_OPSET,
                fp16: bool = False, sizes=None, tolerance: float | None = None, int8: bool = False,
                calibration: str | os.PathLike | None = None, min_psnr: float = INT8_MIN_PSNR,
                fp16_weights: bool = False, openvino_check: bool = True) -> ExportReport:
    """Export a percept checkpoint (shipped name or ``.pt`` path) to a verified ONNX file.

    Args:
        model: shipped model name or checkpoint path.
        out: the ``.onnx`` file to write (atomically, and only after it passed every check).
        opset: ONNX opset (18 by default; 17 and newer work).
        fp16: float16 weights and arithmetic, float32 inputs and outputs.
        sizes: (batch, height, width) of the random inputs the check runs (default: ``CHECK_SIZES``
            for style networks, ``DECODER_CHECK_SIZES`` feature maps for decoders).
        tolerance: largest accepted max-abs difference to PyTorch (default 1e-3, fp16 2e-2).
        int8: int8 convolutions calibrated on photos (style networks only); checked by PSNR against
            PyTorch on every 4th calibration photo, which the calibration does not see.
        calibration: folder of calibration photos for ``int8`` (default: scikit-image's samples).
        min_psnr: int8: the smallest accepted PSNR in dB (default 20).
        fp16_weights: store the weights as float16, compute in float32 (checked against the network
            with its weights rounded to float16; the rounding's own cost is in the report).
        openvino_check: style networks, where OpenVINO is installed and the CPU has bf16: measure
            OpenVINO's bf16 against its fp32 and record it in the file (``percept.openvino_bf16``).

    Raises:
        PerceptError: not an exportable checkpoint, a failed ONNX check, or a disagreement with
            PyTorch larger than the tolerance (the message gives the difference; nothing is written).
    """
    import onnx

    out = _check_export(out, opset, fp16, int8, fp16_weights, calibration)
    images = calibration_images(calibration) if int8 else []  # an empty or unreadable folder fails first
    net, card, kind = _load_torch_model(model)
    card = {**card, "weights_sha256": checkpoint_digest(find_model(model).require_pt("export"))}
    if int8 and kind != "style-transformer":
        raise PerceptError(f"--int8 is for style networks; {model} is a '{kind}' checkpoint")
    if kind == "linear-style" and fp16:
        raise PerceptError("--fp16 is not offered for the linear style model (its covariances need float32); use "
                           "--fp16-weights for a smaller file")
    if sizes is None:
        sizes = DECODER_CHECK_SIZES if kind == "feature-decoder" else CHECK_SIZES
    _, _, in_spec, out_spec = _io(net)
    precision = "fp16" if fp16 else "int8" if int8 else "fp32"
    tolerance = TOLERANCE.get(precision, 0.0) if tolerance is None else tolerance

    rounding_diff = 0.0
    linear_meta: dict[str, str] = {}
    linear_diff = 0.0
    if kind == "linear-style":
        proto, linear_meta, linear_diff, rounding_diff = export_linear(net, card, opset, tolerance, fp16_weights)
        sizes = [p[0] for p in LINEAR_CHECK_PAIRS]
        in_spec, out_spec = linear_meta.pop("percept.input"), linear_meta.pop("percept.output")
    elif fp16_weights:
        rounding_diff = _rounding_cost(net, sizes)
    if kind != "linear-style":
        proto = onnx.load_from_string(_to_onnx_bytes(net, opset))
    if fp16:
        proto = _to_fp16(proto)
    if fp16_weights and kind != "linear-style":  # export_linear stored them already
        proto = store_weights_fp16(proto)
    held: list[np.ndarray] = []
    if int8:
        held = images[3::4] if len(images) >= 4 else images  # few photos: check on the calibration itself
        calib = [im for i, im in enumerate(images) if i % 4 != 3] if len(images) >= 4 else images
        proto = onnx.load_from_string(_to_int8(proto.SerializeToString(), calib, _io(net)[0]))
    meta = _metadata(net, card, kind, model, in_spec, out_spec, precision, fp16_weights, linear_meta)
    if int8:
        meta["percept.calibration"] = (f"{len(calib)} photos of {calibration}" if calibration is not None
                                       else f"{len(calib)} scikit-image sample photos")
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.producer_name = "percept"
    proto.producer_version = __version__
    proto.doc_string = f"percept {kind} '{meta['percept.name']}'. Input: {in_spec}."
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # noqa: BLE001 - the checker has several exception types
        raise PerceptError(f"the exported graph fails the ONNX checker: {str(exc).splitlines()[0]}") from None
    data = proto.SerializeToString()
    if int8:
        psnr, diff = psnr_against_torch(data, net, held)
        if not psnr >= min_psnr:
            raise PerceptError(f"the int8 model is too far from PyTorch: PSNR {psnr:.1f} dB on {len(held)} held-out "
                               f"calibration photos (at least {min_psnr:g} dB needed); refusing to write {out}")
        report = ExportReport(out, opset, precision, diff, [], len(data), 3, psnr, len(held))
    else:
        diff = linear_diff if kind == "linear-style" else compare_with_torch(data, net, sizes)
        if not diff <= tolerance:
            raise PerceptError(f"onnxruntime and PyTorch disagree by {diff:.3g} (max abs, images in [0, 1]; "
                               f"tolerance {tolerance:g}); refusing to write {out}")
        report = ExportReport(out, opset, precision, diff, [tuple(s) for s in sizes], len(data),
                              getattr(net, "in_channels", 3), weights="fp16" if fp16_weights else precision,
                              rounding_diff=rounding_diff)
    if kind == "style-transformer" and not int8 and openvino_check:
        check = _openvino_bf16_check(data)
        if check is not None:  # recorded in the file: `--backend openvino --precision auto` reads it
            entry = proto.metadata_props.add()
            entry.key, entry.value = "percept.openvino_bf16", check.to_json()
            data = proto.SerializeToString()
            report.bf16, report.bytes = check, len(data)
    atomic_write_bytes(out, data)
    return report


def _openvino_bf16_check(data: bytes):
    """OpenVINO's bf16 against its fp32 on the check photos (:func:`percept.inference.openvino_backend.check_bf16`),
    where OpenVINO is installed and the CPU has bf16; else None."""
    if not openvino_installed():
        return None

    core = openvino_core()
    if not bf16_supported(core):
        return None
    return check_bf16(data, core=core)
