"""The style-transfer quality metric that the evaluation scripts report.

For a stylised image ``y`` of photo ``x`` and painting ``s`` (all with the long side at ``size``):

* style loss: the library's default :class:`~percept.models.losses.StyleLoss` between ``y`` and
  ``s`` (relative Gram error, relu1_1 .. relu5_1, averaged over layers);
* content loss: the default content loss between ``y`` and ``x`` at relu4_2;
* raw style loss: the same Gram matrices without the per-layer normalisation (plain mean squared
  Gram difference, summed over the five layers, as in Johnson et al.'s code). With the Caffe
  weights it is dominated by relu4_1; it is reported as a second opinion.

Lower is better for both. The same numbers are computed for every method (our networks, the peer,
the Gatys baseline), so they compare like with like.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from percept.imageio import resize_long_side, to_tensor
import torch.nn.functional as F

from percept.models.losses import PerceptualLoss, gram_matrix


@dataclass
class StyleScore:
    style: float
    content: float
    style_raw: float = float("nan")


class StyleMetric:
    """Scores stylised images against one painting (its Gram matrices are computed once)."""

    def __init__(self, painting: Image.Image, size: int = 512, loss: PerceptualLoss | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.size = size
        self.device = torch.device(device)
        self.loss = (loss or PerceptualLoss()).to(self.device)
        self.loss.set_style(to_tensor(resize_long_side(painting, size)).to(self.device))

    @torch.no_grad()
    def __call__(self, stylized: Image.Image, photo: Image.Image) -> StyleScore:
        x = to_tensor(resize_long_side(photo, self.size)).to(self.device)
        y = stylized if stylized.size == (x.shape[3], x.shape[2]) else stylized.resize((x.shape[3], x.shape[2]), Image.LANCZOS)
        yt = to_tensor(y).to(self.device)
        out = self.loss(yt, x)
        feats = self.loss.net(yt, self.loss.style.layers)
        raw = sum(F.mse_loss(gram_matrix(feats[k]), t) for k, t in self.loss.style.targets.items())
        return StyleScore(style=float(out["style"]), content=float(out["content"]), style_raw=float(raw))
