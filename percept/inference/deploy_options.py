"""The options of the commands around the stylizer, declared once: taking a network elsewhere (``percept export``,
``serve-web``, ``check-web``), the comparison page (``compare``), the demo (``demo``) and the warping error of a
stylised clip (``eval-video``). One dataclass per operation holds each default, help text and argparse setting
(:func:`percept.argtypes.option`); the command line builds its options from them
(:func:`percept.argtypes.add_options`) and the library functions read their keyword defaults from them
(``export_onnx(opset=ExportOptions.opset)``). Nothing here imports numpy or torch, so ``percept --help`` stays
fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from percept.argtypes import option, output_folder, port_int, positive_float, positive_int, side_int
from percept.inference.options import METHODS

__all__ = ["ExportOptions", "ServeWebOptions", "CheckWebOptions", "CompareOptions", "DemoOptions", "EvalVideoOptions",
           "GATYS_STEPS", "WEB_BACKENDS"]

GATYS_STEPS = (10, 30, 100)
"""The L-BFGS step counts of Gatys et al.'s optimisation on the comparison page."""
WEB_BACKENDS = ("wasm", "webgpu", "auto")
"""The runtimes of onnxruntime-web the page can use."""


@dataclass
class ExportOptions:
    """``percept export``: :func:`percept.inference.export.export_onnx` (one model to ``output``), or
    :func:`percept.inference.web.export_web` (style networks to a web site in ``web``)."""

    model: list[str] | None = option(None, "a model name (see `percept models`) or a .pt path (several with --web)",
                                     flags=("model",), nargs="+")
    output: str | None = option(None, "the .onnx file (default: beside the .pt)", flags=("-o", "--output"))
    web: str | None = option(None, "write a static web site that stylises the webcam or a dropped image in the browser "
                                   "(onnxruntime-web, vendored; works offline)", metavar="DIR")
    ort_web: str | None = option(None, "--web: onnxruntime-web's npm package folder (default: ./node_modules, the "
                                       "cache, or fetched once with npm)", metavar="DIR")
    opset: int = option(18, "ONNX opset", type=positive_int)
    fp16: bool = option(False, "float16 weights and arithmetic, float32 input/output")
    fp16_weights: bool = option(False, "store the weights in float16 (half the file), compute in float32 (as the "
                                       "shipped models)")
    int8: bool = option(False, "int8 convolutions calibrated on photos (style networks; ~2x faster on CPUs with "
                               "AVX-512 VNNI; checked by PSNR against PyTorch)")
    calibration: str | None = option(None, "--int8: folder of photos to calibrate on (default: scikit-image's sample "
                                           "photos)", metavar="DIR")


@dataclass
class ServeWebOptions:
    """``percept serve-web``: :func:`percept.inference.web.serve`."""

    folder: str | None = option(None, "the folder percept export --web wrote", flags=("folder",))
    port: int = option(8000, "port (0 picks a free one)", type=port_int)
    host: str = option("127.0.0.1", "address to listen on")


@dataclass
class CheckWebOptions:
    """``percept check-web``: :func:`percept.inference.web.check_web`."""

    folder: str | None = option(None, "the folder percept export --web wrote", flags=("folder",))
    no_camera: bool = option(False, "only the self-test")
    frames: int = option(30, "camera frames to stylise", type=positive_int)
    model: str | None = option(None, "the model the camera runs (default: the first)")
    backend: str = option("wasm", "the page's runtime", choices=list(WEB_BACKENDS))
    timeout: float = option(300.0, "seconds to wait for each page", type=positive_float)
    screenshots: str | None = option(None, "save a PNG of each page here", metavar="DIR", type=output_folder)


@dataclass
class CompareOptions:
    """``percept compare``: :func:`percept.compare.build_compare`. ``gatys_steps`` and ``methods`` are
    comma-separated (``''``: none), read by the command."""

    photo: str | None = option(None, "the photo", flags=("photo",))
    style: str | None = option(None, "the painting", required=True)
    output: str | None = option(None, "folder for index.html", flags=("-o", "--output"), required=True)
    model: list[str] | None = option(None, "per-style network(s) to show (default: the models trained on this "
                                           "painting)", action="append")
    size: int = option(256, "long side in px", type=side_int)
    gatys_steps: str = option(",".join(map(str, GATYS_STEPS)), "L-BFGS step counts ('' for none)")
    methods: str = option(",".join(METHODS), "arbitrary methods ('' for none)")
    device: str = option("auto", "auto, cpu or cuda")


@dataclass
class DemoOptions:
    """``percept demo``: :func:`percept.demo.run_demo`."""

    output: str = option("out/demo", "output folder", flags=("-o", "--output"))
    size: int = option(512, "long side in px", type=side_int)
    device: str = option("auto", "auto, cpu or cuda")


@dataclass
class EvalVideoOptions:
    """``percept eval-video``: the warping error (:func:`percept.evaluation.warping_error`) of a stylised clip along
    its source's optical flow."""

    source: str | None = option(None, "the original clip", flags=("source",))
    stylised: str | None = option(None, "its stylisation (same frames, any size)", flags=("stylised",))
    frames: int | None = option(None, "compare only the first N frames", type=positive_int)
