"""Running trained networks fast: the one :class:`~percept.inference.engine.Engine` (onnxruntime or
PyTorch) behind the stylize API, the CLI, video and the webcam; feature inversion with decoders; ONNX
export. Nothing here imports ``percept.training`` or ``percept.visualize``.

Submodules load lazily (``from percept.inference.engine import Engine``); the names below are the
public ones.
"""

__all__ = ["Engine", "Stylizer", "open_stylizer", "stylize", "Inverter", "invert_decoder", "export_onnx"]


def __getattr__(name: str):
    if name == "Engine":
        from percept.inference.engine import Engine

        return Engine
    if name in ("Stylizer", "open_stylizer", "stylize"):
        import importlib

        return getattr(importlib.import_module("percept.inference.stylizer"), name)
    if name in ("Inverter", "invert_decoder"):
        import importlib

        return getattr(importlib.import_module("percept.inference.invert"), name)
    if name == "export_onnx":
        from percept.inference.export import export_onnx

        return export_onnx
    raise AttributeError(f"module 'percept.inference' has no attribute {name!r}")
