"""The linear style model (:mod:`percept.models.linear`) in ONNX: one graph, photo and painting in, picture
out; and that graph with one painting baked in, which the engine runs live.

* :func:`export_linear` writes the one graph: inputs ``image`` (N, 3, H, W) and ``style`` (1, 3, h, w), RGB
  in [0, 1], dynamic sizes; outputs ``stylized`` (N, 3, H, W) and the painting's code (``style_matrix``,
  ``style_mean``: what the transform keeps of the painting). It is checked against PyTorch on photo and
  painting pairs of several sizes (tolerance 1e-3) before anything is written.
* :func:`bake_style` turns that file and one painting into a single-input style model, the form every
  percept runtime path takes (``Engine``, ``video``, ``webcam``, OpenVINO): the graph is run once for the
  painting's code, the code becomes two constants and the painting's encoder branch is pruned, so a frame
  costs only the photo's encoder, the transform and the decoder. The baked file lives in percept's cache
  (:func:`percept.registry.cache_dir`), one per model file and painting.
* :class:`~percept.models.linear.BakedLinear`: the same in PyTorch (the ``torch`` backend).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from percept.errors import PerceptError
from percept.images import atomic_write_bytes, painting_label, painting_tensor
from percept.inference.runtime import round_weights_fp16, session_options, store_weights_fp16
from percept.models.deploy import deploy_form
from percept.models.linear import BakedLinear, LinearStyleNet  # noqa: F401 - BakedLinear: the torch backend's
from percept.models.transformer import pad_to_multiple
from percept.registry import cache_dir

__all__ = ["LINEAR_CHECK_PAIRS", "BakedLinear", "bake_style", "export_linear"]

LINEAR_CHECK_PAIRS = (((1, 64, 64), (48, 56)), ((2, 97, 131), (64, 80)), ((1, 33, 47), (40, 40)))
"""((batch, height, width) of the photos, (height, width) of the painting) the export is checked on."""
CODE_OUTPUTS = ("style_matrix", "style_mean")


class _Graph(torch.nn.Module):
    """What is exported: (image, style) -> (stylized, style matrix, style mean)."""

    def __init__(self, net: LinearStyleNet) -> None:
        super().__init__()
        self.net = net
        self.decoder = deploy_form(net.decoder)  # the same function, faster upsampling on a CPU

    def forward(self, image: torch.Tensor, style: torch.Tensor):
        net = self.net
        h, w = image.shape[-2:]
        code = net.transform.style_code(net.features(style))
        x = pad_to_multiple(image, net.stride)
        y = self.decoder(net.transform.transfer(net.features(x), code))[..., :h, :w]
        return y, code[0], code[1]


def _export_bytes(net: LinearStyleNet, opset: int) -> bytes:
    graph = _Graph(net).eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    height = torch.export.Dim("height", min=net.min_size, max=16384)
    width = torch.export.Dim("width", min=net.min_size, max=16384)
    sh = torch.export.Dim("style_height", min=16, max=16384)
    sw = torch.export.Dim("style_width", min=16, max=16384)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        target = Path(tmp) / "model.onnx"
        torch.onnx.export(graph, (torch.rand(2, 3, 64, 72), torch.rand(1, 3, 48, 56)), str(target), dynamo=True,
                          opset_version=opset, input_names=["image", "style"],
                          output_names=["stylized", *CODE_OUTPUTS],
                          dynamic_shapes={"image": {0: batch, 2: height, 3: width}, "style": {2: sh, 3: sw}},
                          external_data=False, verbose=False)
        return target.read_bytes()


def compare_linear(data: bytes, net: LinearStyleNet, pairs=LINEAR_CHECK_PAIRS, seed: int = 0) -> float:
    """Max abs difference of onnxruntime against PyTorch over random photo/painting pairs."""
    import onnxruntime as ort


    sess = ort.InferenceSession(data, session_options(), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for (n, h, w), (sh, sw) in pairs:
        x, s = torch.rand(n, 3, h, w, generator=gen), torch.rand(1, 3, sh, sw, generator=gen)
        with torch.inference_mode():
            ref = net(x, s).numpy()
        got = sess.run(["stylized"], {"image": x.numpy(), "style": s.numpy()})[0]
        if got.shape != ref.shape:
            raise PerceptError(f"ONNX output shape {got.shape} differs from PyTorch's {ref.shape} at {tuple(x.shape)}")
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def export_linear(net: LinearStyleNet, card: dict, opset: int, tolerance: float, fp16_weights: bool):
    """(ONNX model proto, metadata, max abs difference against PyTorch, what rounding the weights to float16
    moved) of a linear style model; the
    caller writes it. ``fp16_weights``: weights stored as float16 (the network rounded first and checked
    against that)."""
    import onnx


    rounding = 0.0
    if fp16_weights:  # what rounding the weights costs, on the first check pair
        (n, h, w), (sh, sw) = LINEAR_CHECK_PAIRS[0]
        gen = torch.Generator().manual_seed(1)
        x, s = torch.rand(n, 3, h, w, generator=gen), torch.rand(1, 3, sh, sw, generator=gen)
        with torch.inference_mode():
            before = net(x, s)
            round_weights_fp16(net)
            rounding = float((net(x, s) - before).abs().max())
    proto = onnx.load_from_string(_export_bytes(net, opset))
    if fp16_weights:
        proto = store_weights_fp16(proto)
    diff = compare_linear(proto.SerializeToString(), net)
    if not diff <= tolerance:
        raise PerceptError(f"onnxruntime and PyTorch disagree by {diff:.3g} (max abs, images in [0, 1]; tolerance "
                           f"{tolerance:g}); refusing to write the linear model")
    meta = {
        "percept.input": "image: float32 NCHW RGB in [0, 1], any batch, height and width >= 16; style: float32 "
                         "(1, 3, h, w) RGB in [0, 1], the painting, h and w >= 16 (long side 512 as percept reads it)",
        "percept.output": "stylized: float32 NCHW RGB in [0, 1], the image's batch, height and width; style_matrix "
                          "(1, r, r) and style_mean (1, C, 1, 1): the painting's code",
        "percept.layer": net.layer,
        "percept.min_size": str(net.min_size),
    }
    return proto, meta, diff, rounding


def _code_values(path: Path, style: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort


    sess = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    dummy = np.zeros((1, 3, 16, 16), np.float32)
    values = sess.run(list(CODE_OUTPUTS), {"image": dummy, "style": style})
    return dict(zip(CODE_OUTPUTS, values))


def bake_style(onnx_path: str | os.PathLike, painting, name: str = "style") -> Path:
    """A single-input style model: ``onnx_path`` (an :func:`export_linear` file) with ``painting`` baked in.
    Cached in ``cache_dir()/linear``, keyed by the file's and the painting's bytes."""
    import onnx
    from onnx import numpy_helper

    src = Path(onnx_path)
    style = painting_tensor(painting, name).numpy()
    label = painting_label(painting, name, file_name=True)
    h = hashlib.sha256(src.read_bytes())
    h.update(style.tobytes())
    h.update(f"{style.shape}|{label}".encode())  # the label is written into the file: part of the key
    target = cache_dir() / "linear" / f"{src.stem}-{h.hexdigest()[:16]}.onnx"
    if target.is_file():
        os.utime(target)  # recently used: kept by the eviction below
        return target
    values = _code_values(src, style)
    proto = onnx.load(str(src))
    graph = proto.graph
    for n in CODE_OUTPUTS:
        graph.initializer.append(numpy_helper.from_array(values[n].astype(np.float32), n))
    keep_outputs = [o for o in graph.output if o.name == "stylized"]
    del graph.output[:]
    graph.output.extend(keep_outputs)
    # prune: only the nodes the picture needs (the painting's branch now ends in the two constants)
    produced = {out: node for node in graph.node for out in node.output}
    needed, stack = set(), ["stylized"]
    while stack:
        t = stack.pop()
        node = produced.get(t)
        if node is None or id(node) in needed or t in CODE_OUTPUTS:
            continue
        needed.add(id(node))
        stack.extend(node.input)
    nodes = [nd for nd in graph.node if id(nd) in needed]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for nd in graph.node for i in nd.input}
    inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    inputs = [i for i in graph.input if i.name == "image"]
    del graph.input[:]
    graph.input.extend(inputs)
    del graph.value_info[:]
    meta = {m.key: m.value for m in proto.metadata_props}
    card = json.loads(meta.get("percept.card", "{}") or "{}")
    meta.update({"percept.kind": "style-transformer", "percept.name": f"{meta.get('percept.name', src.stem)}+{label}",
                 "percept.style": label, "percept.linear_source": str(src),
                 "percept.card": json.dumps({**card, "style": label, "baked_from": str(src)}),
                 "percept.input": "float32 NCHW RGB in [0, 1], any batch, height and width >= 16",
                 "percept.output": "float32 NCHW RGB in [0, 1], the input's batch, height and width"})
    del proto.metadata_props[:]
    for k, v in meta.items():
        e = proto.metadata_props.add()
        e.key, e.value = k, v
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:  # noqa: BLE001
        raise PerceptError(f"{src}: cannot bake a painting into it ({str(exc).splitlines()[0][:200]}); re-export it "
                           "with `percept export`") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, proto.SerializeToString())
    _evict(target.parent)
    return target


BAKED_KEEP = 16
"""Baked models kept in the cache (the most recently used); older ones are deleted."""


def _evict(folder: Path) -> None:
    files = sorted(folder.glob("*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[BAKED_KEEP:]:
        old.unlink(missing_ok=True)
