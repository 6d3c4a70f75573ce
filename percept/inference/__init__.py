"""Running trained networks fast: the one :class:`~percept.inference.engine.Engine` (onnxruntime or
PyTorch) behind the stylize API, the CLI, video and the webcam; feature inversion with decoders; ONNX
export. Nothing here imports ``percept.training`` or ``percept.visualize``.

Submodules load lazily (``from percept.inference.engine import Engine``); the names below are the
public ones.
"""

__all__ = ["Engine", "Stylizer", "Inverter", "invert_decoder", "export_onnx"]  # and percept.stylize()


def __getattr__(name: str):
    if name == "Engine":
        from percept.inference.engine import Engine

        return Engine
    if name == "Stylizer":
        from percept.inference.stylize import Stylizer

        return Stylizer
    if name in ("Inverter", "invert_decoder"):
        import importlib

        return getattr(importlib.import_module("percept.inference.invert"), name)
    if name == "export_onnx":
        from percept.inference.export import export_onnx

        return export_onnx
    raise AttributeError(f"module 'percept.inference' has no attribute {name!r}")
