"""Perceptual losses shared by training, the optimisation baselines and the visualisation tools.

* content (feature reconstruction) loss: squared feature difference relative to the target's
  squared norm (Gatys et al. 2015; Johnson et al. 2016, Sec. 3.2; normalised as in Mahendran &
  Vedaldi 2015);
* style loss: squared difference of size-normalised Gram matrices, G = F F^T / (C H W)
  (Gatys et al. 2015, "A Neural Algorithm of Artistic Style"; Johnson et al. 2016, Sec. 3.2), each
  layer's relative to the target Gram's squared norm, averaged over the layers. Caffe VGG19's
  activations differ by three orders of magnitude between layers (relu4_1's Gram error is ~1000x
  relu1_1's), so without this one layer would decide the whole style loss;
* total variation: mean of (dx^2 + dy^2)^(beta/2) (Mahendran & Vedaldi 2015 use beta >= 1).

Layers and weights are arguments; the defaults are the ones the shipped models were trained with
and the evaluation reports. Style targets' Gram matrices are computed once and cached.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from percept.models.vgg import LAYERS, LossNetwork, check_layers

DEFAULT_CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)
"""Gatys et al.'s content layer; also the layer the evaluation measures content on."""
DEFAULT_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
"""Gatys et al.'s style layers, equally weighted."""


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Size-normalised Gram matrix: (N, C, H, W) -> (N, C, C), divided by C*H*W. Computed in fp32."""
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def gram_loss(gram: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample normalised Gram loss, (N,): ``mse(G, T) / mean(T^2)`` over each (C, C) pair; ``target`` is
    (N, C, C), or (1, C, C) for one painting shared by the batch. :class:`StyleLoss` (and so ``StyleMetric``)
    averages it over the batch; ``train-decoder --gram-weight`` gives each sample its own style."""
    return (gram - target).pow(2).mean((1, 2)) / target.pow(2).mean((1, 2)).clamp_min(1e-12)


def content_loss(features: torch.Tensor, target: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Feature reconstruction loss: mean squared difference, by default divided by the target's
    mean square, i.e. ``||phi(y) - phi(x)||^2 / ||phi(x)||^2`` (Mahendran & Vedaldi 2015's
    normalisation; it makes the loss independent of the layer's and the weights' scale), for each
    image of the batch, then averaged: a mean over samples, so that data-parallel training (each
    process a slice of the batch, gradients averaged) computes the one-process loss exactly."""
    f, t = features.float(), target.float()
    if not normalize:
        return F.mse_loss(f, t)
    if t.shape[0] != f.shape[0]:
        t = t.expand_as(f)
    n = f.shape[0]
    per = (f - t).pow(2).reshape(n, -1).mean(1) / t.pow(2).reshape(n, -1).mean(1).clamp_min(1e-12)
    return per.mean()


def tv_loss(image: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Total variation: mean over pixels of (dx^2 + dy^2)^(beta/2) (beta=2: squared TV)."""
    dx = image[..., :-1, 1:] - image[..., :-1, :-1]
    dy = image[..., 1:, :-1] - image[..., :-1, :-1]
    sq = dx.float() ** 2 + dy.float() ** 2
    if beta == 2.0:
        return sq.mean()
    return (sq + 1e-8).pow(beta / 2).mean()


def _layer_weights(layers: Sequence[str], weights: Sequence[float] | None) -> dict[str, float]:
    if weights is None:
        weights = [1.0] * len(layers)
    if len(weights) != len(layers):
        raise ValueError(f"{len(layers)} layers but {len(weights)} weights")
    return dict(zip(layers, map(float, weights)))


class StyleLoss(nn.Module):
    """Gram-matrix style loss against cached target Gram matrices.

    ``set_target`` takes one or several style images (and blend weights); their Gram matrices are
    computed once. With several styles the target is the weighted mean Gram matrix, which gives the
    same gradients as the weighted sum of the per-style losses.
    """

    def __init__(self, layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
                 layer_weights: Sequence[float] | None = None, normalize: bool = True) -> None:
        super().__init__()
        self.normalize = normalize
        self.layers = tuple(check_layers(layers))
        self.layer_weights = _layer_weights(self.layers, layer_weights)
        self.targets: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def set_target(self, net: LossNetwork, styles: Sequence[torch.Tensor] | torch.Tensor,
                   blend: Sequence[float] | None = None) -> None:
        """Cache the target Gram matrices of one style image (1,3,H,W) or a list of them."""
        if isinstance(styles, torch.Tensor):
            styles = [styles]
        blend = list(blend) if blend is not None else [1.0] * len(styles)
        total = sum(blend)
        targets: dict[str, torch.Tensor] = {}
        for img, w in zip(styles, blend):
            feats = net(img, self.layers)
            for layer in self.layers:
                g = gram_matrix(feats[layer]).mean(0, keepdim=True) * (w / total)
                targets[layer] = targets[layer] + g if layer in targets else g
        self.targets = targets

    def per_layer(self, feats: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Unweighted loss of each layer, averaged over the batch."""
        if not self.targets:
            raise RuntimeError("StyleLoss has no target: call set_target first")
        out = {}
        for layer in self.layers:
            g = gram_matrix(feats[layer])
            target = self.targets[layer].to(g.device)
            out[layer] = gram_loss(g, target).mean() if self.normalize else F.mse_loss(g, target.expand_as(g))
        return out

    def forward(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Weighted mean over layers of the per-layer losses."""
        per = self.per_layer(feats)
        total_w = sum(self.layer_weights.values())
        return sum(self.layer_weights[k] * v for k, v in per.items()) / total_w


class PerceptualLoss(nn.Module):
    """Content + style + total-variation loss on a VGG loss network (Johnson et al. 2016, Eq. 3-5).

    Args:
        content_weight, style_weight, tv_weight: weights of the three terms.
        content_layers, style_layers: VGG layer names (defaults: Gatys et al.'s).
        style_layer_weights: per-style-layer weights (default: equal).
        net: a loss network to share; built (only as deep as needed) when omitted.

    ``forward(output, content)`` returns a dict with ``content``, ``style``, ``tv`` (unweighted) and
    ``total`` (weighted). The content image's features are computed without gradients and only as
    deep as the deepest content layer.
    """

    def __init__(self, content_weight: float = 1.0, style_weight: float = 10.0, tv_weight: float = 10.0,
                 content_layers: Sequence[str] = DEFAULT_CONTENT_LAYERS,
                 style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
                 style_layer_weights: Sequence[float] | None = None,
                 net: LossNetwork | None = None) -> None:
        super().__init__()
        self.content_layers = tuple(check_layers(content_layers))
        self.style = StyleLoss(style_layers, style_layer_weights)
        self.content_weight, self.style_weight, self.tv_weight = content_weight, style_weight, tv_weight
        wanted = set(self.content_layers) | set(self.style.layers)
        deepest = max(wanted, key=LAYERS.index)
        self.net = net if net is not None else LossNetwork(deepest)
        self.out_layers = sorted(wanted, key=LAYERS.index)

    def set_style(self, styles, blend=None) -> None:
        self.style.set_target(self.net, styles, blend)

    @torch.no_grad()
    def content_targets(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(content, self.content_layers)

    def forward(self, output: torch.Tensor, content: torch.Tensor | None = None,
                content_feats: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        if content_feats is None:
            if content is None:
                raise ValueError("give the content image or its features")
            content_feats = self.content_targets(content)
        feats = self.net(output, self.out_layers)
        c = sum(content_loss(feats[k], content_feats[k]) for k in self.content_layers) / len(self.content_layers)
        s = self.style(feats)
        tv = tv_loss(output) if self.tv_weight else output.new_zeros(())
        total = self.content_weight * c + self.style_weight * s + self.tv_weight * tv
        return {"content": c, "style": s, "tv": tv, "total": total}
