"""What a layer's features keep of a picture: neighbours, t-SNE maps, top patches and inversions.

Four views of the VGG19 loss network's representation, for a folder of photos:

* **Nearest neighbours, pixels vs CNN codes.** Krizhevsky, Sutskever & Hinton (2012, "ImageNet
  Classification with Deep Convolutional Neural Networks", Sec. 6.1 and Fig. 4) show that images
  close in the last hidden layer are semantically alike though far apart in pixels. Each query row
  of :func:`neighbour_grid` holds the query, its ``k`` nearest images by pixels (L2 on small
  thumbnails) and its ``k`` nearest by CNN code (L2 on the L2-normalised, globally pooled layer).
* **t-SNE of CNN codes.** Van der Maaten & Hinton (2008, "Visualizing Data using t-SNE", JMLR 9)
  via scikit-learn, drawn as thumbnails at their 2-D positions (Karpathy's "t-SNE visualization of
  CNN codes"). The perplexity is clamped to ``(n - 1) / 3`` (scikit-learn looks at
  ``3 * perplexity + 1`` neighbours, which must exist).
* **Maximally activating patches.** Zeiler & Fergus (2014, "Visualizing and Understanding
  Convolutional Networks", Fig. 2) and Girshick et al. (2014, "Rich feature hierarchies", Sec. 3.1):
  the image regions, over the whole folder, that drive one channel hardest, each cropped to the
  channel's receptive field (:func:`receptive_field`, computed from VGG19's conv/pool stack).
* **Inversions across depth.** :func:`invert_grid` reconstructs one photo from several layers,
  with the shipped decoders (Dosovitskiy & Brox 2016, "Inverting Visual Representations with
  Convolutional Networks") where there is one and the Mahendran & Vedaldi (2015) optimisation
  otherwise, so one can see what each depth forgets.

>>> res = embed_images("photos/", layer="relu5_1")
>>> save_embed(res, "out/")          # neighbours.png, tsne.png, patches_relu5_1_CH.png
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageOps

from percept.device import resolve_device
from percept.errors import PerceptError
from percept.evaluation import feature_space_error, image_space_error
from percept.images import list_images, load_image, resize_long_side, save_image, to_float, to_image, to_tensor
from percept.models.decoder import DECODER_LAYERS, check_decoder_layer, crop_to_stride, load_decoder, shipped_decoder
from percept.models.vgg import LAYERS, LossNetwork, check_layers, layer_stride
from percept.visualize.common import montage, parse_target
from percept.visualize.inversion import invert_optimize
from percept.visualize.options import EmbedOptions, InvertGridOptions

ImageSource = Union[str, os.PathLike, Image.Image]

# ----------------------------------------------------------------------------------- receptive fields


@dataclass(frozen=True)
class ReceptiveField:
    """Geometry of one layer's units in input pixels.

    ``size``: side of the square of input pixels a unit sees; ``stride``: input pixels between
    neighbouring units; ``start``: centre of unit (0, 0) in continuous input coordinates (pixel ``i``
    spans ``[i, i + 1)``, so its centre is ``i + 0.5``).
    """

    size: int
    stride: int
    start: float

    def centre(self, row: int, col: int) -> tuple[float, float]:
        """Centre (y, x) of unit (row, col) in continuous input coordinates."""
        return self.start + row * self.stride, self.start + col * self.stride

    def box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) pixel box (bottom/right exclusive) that unit (row, col) sees;
        it can stick out of the image."""
        cy, cx = self.centre(row, col)
        top, left = round(cy - self.size / 2), round(cx - self.size / 2)
        return top, left, top + self.size, left + self.size


def receptive_field(layer: str) -> ReceptiveField:
    """Receptive field of a VGG19 layer, walked through the conv/pool stack.

    Every conv is 3x3, stride 1, padding 1; every pool 2x2, stride 2; ReLUs change nothing. For a
    layer of kernel ``k`` and stride ``s`` after a stack whose units are ``j`` pixels apart, the
    field grows by ``(k - 1) j`` and ``j`` becomes ``j s``; the first unit's centre moves by
    ``((k - 1) / 2 - padding) j``. So relu1_1: 3, relu1_2: 5, pool1: 6, relu2_1: 10, relu2_2: 14,
    pool2: 16, relu3_1: 24, ..., relu4_1: 68, relu5_1: 156, relu5_4: 252, pool5: 268.
    """
    check_layers([layer])
    size, jump, start = 1, 1, 0.5
    for name in LAYERS[: LAYERS.index(layer) + 1]:
        if name.startswith("conv"):
            size += 2 * jump               # k = 3, padding 1: the centre stays put
        elif name.startswith("pool"):
            size += jump                   # k = 2, stride 2, no padding
            start += 0.5 * jump
            jump *= 2
    return ReceptiveField(size, jump, start)


# ----------------------------------------------------------------------------------- loading codes

def _name(src: ImageSource, i: int) -> str:
    if isinstance(src, Image.Image):
        return getattr(src, "percept_name", None) or f"image{i}"
    return Path(src).stem


def load_square_images(sources: str | os.PathLike | Sequence[ImageSource], size: int = 224,
                       names: Sequence[str] | None = None) -> tuple[list[str], list[Image.Image]]:
    """A folder (its images, recursively; a missing or empty folder is a :class:`PerceptError`) or a
    list of paths / PIL images -> (names, centre-cropped ``size`` x ``size`` RGB images)."""
    if isinstance(sources, (str, os.PathLike)):
        files: Sequence[ImageSource] = list_images(sources)
    else:
        files = list(sources)
        if not files:
            raise PerceptError("no images given")
    if size < 32:
        raise PerceptError(f"size must be at least 32 px, got {size}")
    imgs = [ImageOps.fit(load_image(f), (size, size), Image.Resampling.LANCZOS) for f in files]
    if names is None:
        names = [_name(f, i) for i, f in enumerate(files)]
    elif len(names) != len(imgs):
        raise ValueError("one name per image")
    return list(names), imgs


def pixel_codes(images: Sequence[Image.Image], size: int = 32) -> np.ndarray:
    """Raw pixels as vectors: each image shrunk (box filter) to ``size`` x ``size``, RGB in [0, 1]."""
    return np.stack([to_float(im.resize((size, size), Image.BOX)).ravel()
                     for im in images])


@dataclass
class LayerStats:
    """What one pass of the loss network keeps of a layer, per image (N) and channel (C)."""

    codes: np.ndarray       # (N, C) globally pooled activations
    peak: np.ndarray        # (N, C, P) the P strongest local maxima of each channel's map
    rows: np.ndarray        # (N, C, P) their feature-map rows
    cols: np.ndarray        # (N, C, P) their feature-map columns
    shape: tuple[int, int]  # the feature map's (h, w)


@torch.no_grad()
def layer_stats(images: Sequence[Image.Image], layer: str, net: LossNetwork | None = None,
                device: str = "cpu", batch: int = 8, pool: str = "avg", peaks: int = 3,
                progress: bool = False) -> LayerStats:
    """One forward pass over ``images`` up to ``layer``: pooled codes and each channel's ``peaks``
    strongest local maxima per image (non-maximum suppression over half a receptive field, so a
    patch is not repeated shifted by a unit or two)."""
    from tqdm import tqdm

    check_layers([layer])
    if pool not in ("avg", "max"):
        raise PerceptError(f"unknown pooling '{pool}'; use avg or max")
    dev = resolve_device(device)
    net = (net or LossNetwork(layer)).to(dev)
    if layer not in net.names:
        raise PerceptError(f"the given loss network stops at {net.names[-1]}, before {layer}")
    rf = receptive_field(layer)
    radius = max(1, math.ceil(rf.size / (2 * rf.stride)))  # peaks closer than half a field are one
    codes, peak, rows, cols = [], [], [], []
    shape = (0, 0)
    for i in tqdm(range(0, len(images), batch), desc=f"features {layer}", disable=not progress,
                  dynamic_ncols=True):
        x = torch.cat([to_tensor(im) for im in images[i:i + batch]]).to(dev)
        f = net(x, [layer])[layer].float()
        n, c, h, w = f.shape
        shape = (h, w)
        codes.append((f.mean((2, 3)) if pool == "avg" else f.amax((2, 3))).cpu())
        local = f == torch.nn.functional.max_pool2d(f, 2 * radius + 1, 1, radius)
        score = torch.where(local, f, torch.full_like(f, -1.0)).reshape(n, c, h * w)
        k = min(peaks, h * w)
        v, idx = score.topk(k, dim=2)
        # a flat map (all zero) has every unit as its own local maximum: fine, it scores 0
        peak.append(v.clamp_min(0).cpu())
        rows.append((idx // w).cpu())
        cols.append((idx % w).cpu())
    return LayerStats(torch.cat(codes).numpy(), torch.cat(peak).numpy(), torch.cat(rows).numpy(),
                      torch.cat(cols).numpy(), shape)


# ----------------------------------------------------------------------------------- neighbours

def nearest_neighbours(codes: np.ndarray, k: int, normalize: bool = True) -> np.ndarray:
    """Indices (N, min(k + 1, N)) of each row's nearest rows by L2 distance (after L2-normalising
    each row when ``normalize``: the cosine ranking); the row itself comes first."""
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(codes, np.float64)
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n = min(k + 1, len(x))
    with _one_openmp_thread():
        idx = NearestNeighbors(n_neighbors=n).fit(x).kneighbors(x, return_distance=False)
    # equal distances (duplicates) may put another row first: the query is its own first neighbour
    for i, row in enumerate(idx):
        if row[0] != i:
            rest = [j for j in row if j != i][: n - 1]
            idx[i] = [i, *rest]
    return idx


def neighbour_grid(images: Sequence[Image.Image], names: Sequence[str], pixel_nn: np.ndarray,
                   feature_nn: np.ndarray, queries: Sequence[int], k: int, tile: int = 96,
                   feature_label: str = "CNN code") -> Image.Image:
    """One row per query: the query | its k nearest by pixels | its k nearest by CNN code."""
    k = min(k, pixel_nn.shape[1] - 1)
    pad, gap, lh, head = 4, 16, 14, 18
    width = pad + tile + gap + k * (tile + pad) + gap + k * (tile + pad)
    height = head + len(queries) * (tile + lh + pad) + pad
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    x_pix = pad + tile + gap
    x_feat = x_pix + k * (tile + pad) + gap
    draw.text((pad, 3), "query", fill=(0, 0, 0))
    draw.text((x_pix, 3), f"{k} nearest by pixels (L2)", fill=(0, 0, 0))
    draw.text((x_feat, 3), f"{k} nearest by {feature_label}", fill=(0, 0, 0))
    thumbs = {}

    def thumb(i: int) -> Image.Image:
        if i not in thumbs:
            thumbs[i] = images[i].resize((tile, tile), Image.Resampling.LANCZOS)
        return thumbs[i]

    chars = max(4, tile // 6)
    for r, q in enumerate(queries):
        y = head + r * (tile + lh + pad)
        cells = [(pad, q)]
        cells += [(x_pix + j * (tile + pad), int(i)) for j, i in enumerate(pixel_nn[q][1:k + 1])]
        cells += [(x_feat + j * (tile + pad), int(i)) for j, i in enumerate(feature_nn[q][1:k + 1])]
        for c, (x, i) in enumerate(cells):
            sheet.paste(thumb(i), (x, y))
            if c == 0:
                draw.rectangle((x - 2, y - 2, x + tile + 1, y + tile + 1), outline=(220, 40, 40), width=2)
            draw.text((x, y + tile + 1), str(names[i])[:chars], fill=(0, 0, 0))
    for x in (x_pix - gap // 2, x_feat - gap // 2):
        draw.line((x, head, x, height - pad), fill=(160, 160, 160), width=1)
    return sheet


# ----------------------------------------------------------------------------------- t-SNE

def tsne_embedding(codes: np.ndarray, perplexity: float = 30.0, seed: int = 0) -> np.ndarray:
    """2-D t-SNE positions (N, 2) of ``codes`` (L2-normalised, reduced to at most 50 dimensions by
    PCA first, as van der Maaten & Hinton do). Perplexity is clamped to ``(N - 1) / 3``; one or two
    images are simply placed apart."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(codes, np.float64)
    n = len(x)
    if n == 0:
        raise PerceptError("no images to embed")
    if n <= 2:
        return np.array([[0.0, 0.0], [1.0, 1.0]][:n])
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    dims = min(50, n, x.shape[1])
    if x.shape[1] > dims:
        x = PCA(n_components=dims, random_state=seed).fit_transform(x)
    p = float(min(perplexity, max(1.0, (n - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=p, init="pca", learning_rate="auto", random_state=seed,
                max_iter=1000 if n > 10 else 500)
    with _one_openmp_thread():
        return tsne.fit_transform(x)


def _one_openmp_thread():
    """scikit-learn's OpenMP loops next to PyTorch's OpenMP runtime can spin against each other
    (a first t-SNE of three points took 20 s on 2 busy cores); one thread is fast at our sizes."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def tsne_canvas(images: Sequence[Image.Image], xy: np.ndarray, canvas: int = 1600, thumb: int | None = None,
                background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Draw each image as a thumbnail at its 2-D position on a ``canvas`` x ``canvas`` picture."""
    if len(images) != len(xy):
        raise ValueError("one position per image")
    thumb = thumb or max(24, min(160, int(canvas / max(4.0, math.sqrt(len(images)) * 1.6))))
    if thumb >= canvas:
        raise PerceptError(f"thumbnails ({thumb} px) must be smaller than the canvas ({canvas} px)")
    xy = np.asarray(xy, np.float64)
    lo, hi = xy.min(0), xy.max(0)
    span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
    pos = (xy - lo) / span * (canvas - thumb)
    sheet = Image.new("RGB", (canvas, canvas), background)
    draw = ImageDraw.Draw(sheet)
    for im, (x, y) in zip(images, pos):
        x, y = int(round(x)), int(round(y))
        sheet.paste(im.resize((thumb, thumb), Image.Resampling.LANCZOS), (x, y))
        draw.rectangle((x, y, x + thumb - 1, y + thumb - 1), outline=(255, 255, 255), width=1)
    return sheet


# ----------------------------------------------------------------------------------- top patches

@dataclass
class Patch:
    """One strongly activating region: image index and name, feature position, activation, the
    receptive-field box (may stick out of the image) and the crop (out-of-image parts grey)."""

    index: int
    name: str
    row: int
    col: int
    activation: float
    box: tuple[int, int, int, int]
    image: Image.Image


def crop_box(img: Image.Image, box: tuple[int, int, int, int], fill=(128, 128, 128)) -> Image.Image:
    """Crop ``(top, left, bottom, right)`` from ``img``; the part outside the image is ``fill``."""
    top, left, bottom, right = box
    out = Image.new("RGB", (right - left, bottom - top), fill)
    src = (max(0, left), max(0, top), min(img.width, right), min(img.height, bottom))
    if src[2] > src[0] and src[3] > src[1]:
        out.paste(img.crop(src), (src[0] - left, src[1] - top))
    return out


def most_variable_channel(stats: LayerStats) -> int:
    """The channel whose code (pooled activation) varies most over the images: a unit that tells
    the images apart, neither always on nor always off. (The strongest peak's spread is a worse
    rule: it favours units that fire on the zero-padded border.)"""
    return int(np.argmax(stats.codes.std(0)))


def top_patches(images: Sequence[Image.Image], names: Sequence[str], stats: LayerStats, layer: str,
                channel: int, top: int = 16) -> list[Patch]:
    """The ``top`` strongest activations of ``channel`` over all images (each image contributes its
    local maxima), sorted strongest first, cropped to the receptive field."""
    if not 0 <= channel < stats.peak.shape[1]:
        raise PerceptError(f"'{layer}:{channel}': {layer} has channels 0..{stats.peak.shape[1] - 1}, got {channel}")
    rf = receptive_field(layer)
    cand = [(float(stats.peak[i, channel, p]), i, int(stats.rows[i, channel, p]), int(stats.cols[i, channel, p]))
            for i in range(stats.peak.shape[0]) for p in range(stats.peak.shape[2])]
    cand.sort(key=lambda t: (-t[0], t[1], t[2], t[3]))
    out = []
    for act, i, r, c in cand[:top]:
        box = rf.box(r, c)
        out.append(Patch(i, names[i], r, c, act, box, crop_box(images[i], box)))
    return out


def patch_sheet(patches: Sequence[Patch], tile: int = 96, cols: int | None = None) -> Image.Image:
    """The patches on a grid, strongest first, each labelled with its image and activation."""
    if not patches:
        raise PerceptError("no patches to draw")
    labels = [f"{p.activation:.0f} {p.name}" for p in patches]
    return montage([p.image for p in patches], labels, cols=cols or min(8, len(patches)), tile=tile)


# ----------------------------------------------------------------------------------- all together

@dataclass
class EmbedResult:
    """What :func:`embed_images` computes; :func:`save_embed` writes its pictures."""

    layer: str
    channel: int
    names: list[str]
    images: list[Image.Image]
    codes: np.ndarray              # (N, C) CNN codes
    pixel_neighbours: np.ndarray   # (N, k+1) self first
    feature_neighbours: np.ndarray
    positions: np.ndarray          # (N, 2) t-SNE
    patches: list[Patch]
    neighbours: Image.Image
    tsne: Image.Image
    patch_sheet: Image.Image
    seconds: dict[str, float] = field(default_factory=dict)


def embed_images(sources: str | os.PathLike | Sequence[ImageSource], layer: str = EmbedOptions.layer,
                 channel: int | None = None, k: int = EmbedOptions.k,
                 queries: int | Sequence[int] = EmbedOptions.queries, size: int = EmbedOptions.size,
                 perplexity: float = EmbedOptions.perplexity, canvas: int = EmbedOptions.canvas,
                 thumb: int | None = None, top: int = EmbedOptions.top, pool: str = EmbedOptions.pool,
                 names: Sequence[str] | None = None, net: LossNetwork | None = None, device: str = "auto",
                 seed: int = 0, progress: bool = False) -> EmbedResult:
    """Neighbours (pixels vs CNN codes), a t-SNE map and a channel's top patches for a set of images.

    Args:
        sources: a folder (its images, recursively) or a list of paths / PIL images.
        layer: the loss-network layer whose globally pooled activations are the CNN codes and whose
            channel's patches are shown; ``"relu4_1:12"`` also picks the channel.
        channel: the channel for the patches; default: :func:`most_variable_channel`.
        k: neighbours per query and space.
        queries: how many query rows (spread evenly over the images), or their indices.
        size: images are centre-cropped to ``size`` x ``size`` before everything.
        perplexity: t-SNE perplexity (clamped to ``(N - 1) / 3``).
        canvas, thumb: t-SNE picture side and thumbnail side (default: from the number of images).
        top: how many patches.
        pool: ``"avg"`` or ``"max"`` global pooling of the feature map into the code.

    Raises:
        PerceptError: missing / empty folder, unknown layer or channel (the shared messages).
    """
    target = parse_target(layer)
    layer = target.layer
    if target.channel is not None:
        if channel is not None and channel != target.channel:
            raise PerceptError(f"two channels given: {target} and --channel {channel}")
        channel = target.channel
    if channel is not None:
        channel = parse_target(f"{layer}:{channel}").channel
    if k < 1:
        raise PerceptError(f"k must be at least 1, got {k}")
    t0 = time.perf_counter()
    names, imgs = load_square_images(sources, size, names)
    n = len(imgs)
    t1 = time.perf_counter()
    stats = layer_stats(imgs, layer, net=net, device=device, pool=pool, progress=progress)
    t2 = time.perf_counter()
    pix_nn = nearest_neighbours(pixel_codes(imgs), k, normalize=False)
    feat_nn = nearest_neighbours(stats.codes, k)
    if isinstance(queries, int):
        q = min(queries, n)
        queries = sorted({int(round(v)) for v in np.linspace(0, n - 1, q)}) if q > 0 else []
    queries = [int(i) for i in queries]
    for i in queries:
        if not 0 <= i < n:
            raise PerceptError(f"query index {i} is out of range 0..{n - 1}")
    grid = (neighbour_grid(imgs, names, pix_nn, feat_nn, queries, k, feature_label=f"{layer} code")
            if n > 1 and queries else montage(imgs[:1], names[:1]))
    t3 = time.perf_counter()
    xy = tsne_embedding(stats.codes, perplexity, seed)
    tsne = tsne_canvas(imgs, xy, canvas, thumb)
    t4 = time.perf_counter()
    if channel is None:
        channel = most_variable_channel(stats)
    patches = top_patches(imgs, names, stats, layer, channel, top)
    sheet = patch_sheet(patches)
    t5 = time.perf_counter()
    return EmbedResult(layer, channel, names, imgs, stats.codes, pix_nn, feat_nn, xy, patches, grid, tsne, sheet,
                       {"load": t1 - t0, "features": t2 - t1, "neighbours": t3 - t2, "tsne": t4 - t3,
                        "patches": t5 - t4})


def save_embed(result: EmbedResult, out: str | os.PathLike) -> list[Path]:
    """Write ``neighbours.png``, ``tsne.png`` and ``patches_LAYER_CHANNEL.png`` into ``out``."""
    out = Path(out)
    return [save_image(result.neighbours, out / "neighbours.png"),
            save_image(result.tsne, out / "tsne.png"),
            save_image(result.patch_sheet, out / f"patches_{result.layer}_{result.channel}.png")]


# ----------------------------------------------------------------------------------- inversion grid

@dataclass
class InvertCell:
    """One reconstruction of :func:`invert_grid`."""

    layer: str
    method: str           # "decoder" or "optimize"
    image: Image.Image
    image_error: float    # ||x_hat - x|| / ||x - mean(x)|| (0 is perfect, a flat grey image ~1)
    feature_error: float
    seconds: float


def has_shipped_decoder(layer: str) -> bool:
    """Whether a trained decoder for ``layer`` is shipped (``checkpoints/decoder_LAYER.pt``)."""
    try:
        shipped_decoder(layer)
    except PerceptError:
        return False
    return True


def parse_layers(text: str | Sequence[str]) -> list[str]:
    """``"relu2_1,relu3_1"`` (or a list) -> validated layer names (unknown ones: the shared message)."""
    layers = [t.strip() for t in text.split(",")] if isinstance(text, str) else list(text)
    layers = [t for t in layers if t]
    if not layers:
        raise PerceptError("give at least one layer, e.g. relu2_1,relu3_1")
    return [parse_target(t).layer for t in layers]


def invert_grid(image: ImageSource, layers: str | Sequence[str] = InvertGridOptions.layers,
                method: str = InvertGridOptions.method, size: int = InvertGridOptions.size,
                iterations: int | None = None, fine_iterations: int | None = None, device: str = "auto", seed: int = 0,
                progress: bool = False) -> tuple[Image.Image, list[InvertCell]]:
    """Reconstruct ``image`` from each of ``layers`` and lay the results side by side, after the photo.

    Args:
        method: ``"auto"`` (the shipped decoder where there is one, else optimisation),
            ``"decoder"`` (a layer without a shipped decoder is an error) or ``"optimize"``
            (Mahendran & Vedaldi for every layer; minutes per layer at full settings).
        size: the photo's long side; it is then cropped to a multiple of the deepest stride so all
            panels have one size.
        iterations, fine_iterations: the optimisation's two stages (default 300 and 50).

    Returns:
        (the labelled sheet, one :class:`InvertCell` per layer). Each label says layer, method and
        image-space error.
    """
    if method not in ("auto", "decoder", "optimize"):
        raise PerceptError(f"unknown method '{method}'; use auto, decoder or optimize")
    layers = parse_layers(layers)
    plan = []
    for layer in layers:
        m = method
        if method == "auto":
            m = "decoder" if layer in _decoder_layers() and has_shipped_decoder(layer) else "optimize"
        elif method == "decoder":
            check_decoder_layer(layer)
            shipped_decoder(layer)  # a clear message when there is none
        plan.append((layer, m))
    dev = str(resolve_device(device))
    photo = resize_long_side(load_image(image), size)
    x = crop_to_stride(to_tensor(photo), max(layer_stride(layer) for layer in layers))
    deepest = max(layers, key=LAYERS.index)
    net = LossNetwork(deepest).to(dev)
    cells = []
    for layer, m in plan:
        t0 = time.perf_counter()
        if m == "decoder":
            decoder = load_decoder(shipped_decoder(layer))[0].to(dev)
            with torch.inference_mode():
                y = decoder(net(x.to(dev), [layer])[layer]).float()
        else:
            extra = {} if fine_iterations is None else {"fine_iterations": fine_iterations}
            y = invert_optimize(x, layer, iterations=iterations, net=net, device=dev, seed=seed,
                                progress=progress, **extra).tensor
        seconds = time.perf_counter() - t0
        y = y[..., : x.shape[2], : x.shape[3]].cpu()
        cells.append(InvertCell(layer, m, _to_pil(y), image_space_error(y, x),
                                feature_space_error(net, y, x, layer), seconds))
    pics = [_to_pil(x)] + [c.image for c in cells]
    labels = [["photo", f"{x.shape[3]}x{x.shape[2]}"]]
    labels += [[f"{c.layer} {c.method}", f"image error {c.image_error:.3f}"] for c in cells]
    return labelled_row(pics, labels), cells


def labelled_row(pics: Sequence[Image.Image], labels: Sequence[Sequence[str]], pad: int = 6,
                 min_cell: int = 112) -> Image.Image:
    """Images side by side, each with a few lines of text under it (wrapped to the cell's width;
    a cell is at least ``min_cell`` px wide so short labels stay readable next to small images)."""
    import textwrap

    lh = 12
    cells = [max(p.width, min_cell) for p in pics]
    wrapped = []
    for cw, lines in zip(cells, labels):
        chars = max(6, cw // 6)
        wrapped.append([w for line in lines for w in (textwrap.wrap(line, chars) or [""])])
    text_h = lh * max(len(w) for w in wrapped) + 2
    width = pad + sum(cw + pad for cw in cells)
    height = pad + max(p.height for p in pics) + text_h + pad
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    x = pad
    for p, cw, lines in zip(pics, cells, wrapped):
        sheet.paste(p, (x + (cw - p.width) // 2, pad))
        for i, line in enumerate(lines):
            draw.text((x, pad + p.height + 2 + i * lh), line, fill=(0, 0, 0))
        x += cw + pad
    return sheet


def _decoder_layers() -> tuple[str, ...]:
    return DECODER_LAYERS


def _to_pil(t: torch.Tensor) -> Image.Image:
    return to_image(t.clamp(0, 1))


__all__ = ["ReceptiveField", "receptive_field", "load_square_images", "pixel_codes", "LayerStats", "layer_stats",
           "nearest_neighbours", "neighbour_grid", "tsne_embedding", "tsne_canvas", "Patch", "crop_box",
           "most_variable_channel", "top_patches", "patch_sheet", "EmbedResult", "embed_images", "save_embed",
           "InvertCell", "has_shipped_decoder", "parse_layers", "invert_grid", "labelled_row"]
