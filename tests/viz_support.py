"""A tiny classifier the visualisation tests train for real: four classes of coloured shapes on a
noisy grey background, so every class-based tool runs on a network that has learnt something and
the right answer (where the object is) is known.

Classes: 0 red square, 1 green disc, 2 blue horizontal stripes, 3 yellow cross.
"""

from __future__ import annotations

import functools
import time

import torch

from percept.visualize.attribution import SmallCNN

LABELS = ["red square", "green disc", "blue stripes", "yellow cross"]
COLOURS = torch.tensor([[0.9, 0.15, 0.1], [0.1, 0.8, 0.2], [0.15, 0.25, 0.95], [0.95, 0.85, 0.1]])
SIZE = 32


@functools.lru_cache(maxsize=None)
def shape_mask(cls: int, side: int) -> torch.Tensor:
    """(side, side) float mask of the class's shape."""
    yy, xx = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32),
                            indexing="ij")
    c = (side - 1) / 2
    if cls == 0:
        return torch.ones(side, side)
    if cls == 1:
        return (((yy - c) ** 2 + (xx - c) ** 2) <= (side / 2) ** 2).float()
    if cls == 2:
        return ((yy.long() // 2) % 2 == 0).float()
    bar = max(2, side // 3)
    lo = (side - bar) // 2
    return (((yy >= lo) & (yy < lo + bar)) | ((xx >= lo) & (xx < lo + bar))).float()


def make_images(labels: torch.Tensor, size: int = SIZE, generator: torch.Generator | None = None,
                side: tuple[int, int] = (9, 14), colour_noise: float = 0.03) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, size, size) in [0, 1] with the class's shape at a random place, and the boxes
    (N, 4) as (y0, x0, y1, x1), end exclusive."""
    g = generator
    n = len(labels)
    grey = 0.35 + 0.3 * torch.rand(n, 1, 1, 1, generator=g)
    x = (grey + 0.08 * torch.randn(n, 1, size, size, generator=g)
         + colour_noise * torch.randn(n, 3, size, size, generator=g))
    x = x.expand(n, 3, size, size).clone()
    boxes = torch.zeros(n, 4, dtype=torch.long)
    sides = torch.randint(side[0], side[1] + 1, (n,), generator=g).tolist()
    corners = torch.rand(n, 2, generator=g)
    colours = COLOURS[labels] + 0.06 * torch.randn(n, 3, generator=g)
    for i, cls in enumerate(labels.tolist()):
        s = sides[i]
        y0, x0 = (corners[i] * (size - s + 1)).long().clamp(max=size - s).tolist()
        m = shape_mask(cls, s)
        colour = colours[i].view(3, 1, 1)
        patch = x[i, :, y0:y0 + s, x0:x0 + s]
        x[i, :, y0:y0 + s, x0:x0 + s] = patch * (1 - m) + colour * m
        boxes[i] = torch.tensor([y0, x0, y0 + s, x0 + s])
    return x.clamp(0, 1), boxes


def train_classifier(steps: int = 150, batch: int = 64, seed: int = 0,
                     sparsity: float = 0.5) -> tuple[SmallCNN, float, float]:
    """Train :class:`SmallCNN` on fresh synthetic batches; returns (model, held-out accuracy, seconds).

    Besides cross-entropy, an L1 penalty (``sparsity``) on the last feature maps keeps them silent on
    the background: without it the net also reads "no other colour here" off the background noise,
    and the gradient (what saliency shows) is spread over the whole image.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a net this small trains fastest on one thread (and the CI box runs other jobs too)
    try:
        return _train(steps, batch, seed, sparsity)
    finally:
        torch.set_num_threads(threads)


def _train(steps: int, batch: int, seed: int, sparsity: float) -> tuple[SmallCNN, float, float]:
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = SmallCNN(num_classes=len(LABELS), widths=(16, 32))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        y = torch.randint(0, len(LABELS), (batch,), generator=g)
        x, _ = make_images(y, generator=g)
        feats = model.features(x - 0.5)
        logits = model.fc(model.gap(feats).flatten(1))
        loss = torch.nn.functional.cross_entropy(logits, y) + sparsity * feats.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval().requires_grad_(False)
    y = torch.arange(256) % len(LABELS)
    x, _ = make_images(y, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    return model, acc, time.perf_counter() - t0


def box_mask(box: torch.Tensor, size: int = SIZE, margin: int = 0) -> torch.Tensor:
    y0, x0, y1, x1 = box.tolist()
    m = torch.zeros(size, size, dtype=torch.bool)
    m[max(0, y0 - margin):y1 + margin, max(0, x0 - margin):x1 + margin] = True
    return m


def object_mask(cls: int, box: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """The exact pixels of the object that :func:`make_images` drew in ``box``."""
    y0, x0, y1, x1 = box.tolist()
    m = torch.zeros(size, size, dtype=torch.bool)
    m[y0:y1, x0:x1] = shape_mask(cls, y1 - y0) > 0
    return m
