"""Looking inside networks, and the slow pixel-space baselines on the shared loss network.

Public modules (each loads on first use, ``percept.visualize.gatys`` or ``from percept.visualize
import gatys``):

* optimisation baselines: ``gatys`` (Gatys et al. 2015 style transfer), ``inversion``
  (Mahendran & Vedaldi 2015), ``texture`` (Gatys et al. 2015a), ``dream`` (DeepDream),
  ``maximize`` (activation maximisation, Yosinski et al. 2015), ``classviz`` (Simonyan et al. class
  models) ;
* attribution: ``attribution`` (saliency, guided backprop, deconvnet, Grad-CAM, occlusion, fooling);
* features and embeddings: ``filters``, ``embed`` (neighbours, t-SNE, top patches, inversion grids);
* report pages: ``gallery``; shared helpers: ``common``; the settings of each tool, declared once (torch-free):
  ``options``.

Nothing here imports ``percept.training`` or ``percept.inference``.
"""

__all__ = ["attribution", "classviz", "common", "dream", "embed", "filters", "gallery", "gatys", "inversion",
           "maximize", "options", "texture"]


def __getattr__(name: str):
    if name in __all__:
        import importlib

        return importlib.import_module(f"percept.visualize.{name}")
    raise AttributeError(f"module 'percept.visualize' has no attribute {name!r}")
