"""One static HTML page with every visualisation technique of the project for one photo.

``build_gallery(photo, out)`` writes ``out/index.html``: a self-contained page (every picture is a
``data:image/png;base64`` URI, the style sheet and a tiny script are inline) that opens from disk
with no server and no network. Each technique is a *section*: a function that draws a few
pictures of the photo with the public functions of its module; a section that fails shows its
error on the page instead of ending the run. Every section names the paper it implements.

Sections, in page order: filters, activations, activation maximisation, DeepDream, saliency,
guided backprop, deconvnet, Grad-CAM, occlusion, class model visualisation and fooling images (with
a classifier only; otherwise the page says how to enable them), feature-space neighbours / t-SNE /
top patches, texture synthesis and the inversion grid. Without a classifier, the attribution
sections explain one channel of the loss network: the photo's most active ``relu4_1`` channel,
which is also the channel the maximisation section draws, so the page shows both what the channel
looks for and where it finds it in the photo.

``fast=True`` uses tiny sizes and a few steps (seconds on a CPU): a smoke test of every section,
not pictures worth studying.

A small script on the page records, when the page has loaded, how many of its images decoded:
``<body data-images-loaded="N" data-images-total="M">`` (the tests read it from a headless
browser's DOM).
"""

from __future__ import annotations

import base64
import html
import io
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from PIL import Image

from percept.device import resolve_device
from percept.errors import PerceptError
from percept.images import (
    IMAGE_EXTENSIONS,
    ImageLike,
    atomic_write_bytes,
    list_images,
    load_image,
    resize_long_side,
    to_image,
    to_tensor,
)
from percept.models.vgg import LossNetwork
from percept.visualize.attribution import (
    deconvnet,
    grad_cam,
    gradient_image,
    guided_backprop,
    heat_image,
    occlusion,
    open_classifier,
    saliency,
)
from percept.visualize.classviz import class_model, fooling_image
from percept.visualize.common import montage, overlay_heatmap
from percept.visualize.dream import deep_dream
from percept.visualize.embed import invert_grid
from percept.visualize.filters import activation_grids, filter_pictures
from percept.visualize.maximize import maximize_activation
from percept.visualize.options import GalleryOptions
from percept.visualize.texture import synthesize_texture


@dataclass
class Figure:
    """One picture on the page with its caption."""

    caption: str
    image: Image.Image


class SectionNote(Exception):
    """Raised by a section that has nothing to draw for a good reason (e.g. it needs a classifier);
    the message is shown on the page as a note, not as an error."""


@dataclass
class Section:
    """A rendered section: what the page shows for one technique."""

    key: str
    title: str
    citation: str
    description: str
    figures: list[Figure] = field(default_factory=list)
    note: str = ""
    error: str = ""
    details: str = ""       # traceback of an unexpected error (a bug, not a user mistake)
    seconds: float = 0.0


@dataclass
class GalleryReport:
    """What :func:`build_gallery` wrote."""

    path: Path
    sections: list[Section]
    images: int
    seconds: float


# ----------------------------------------------------------------------------------- context

@dataclass
class Settings:
    """Sizes and step counts of every section; :func:`settings` gives the normal and fast ones."""

    size: int                 # the photo's long side
    maximize_size: int
    maximize_octaves: int
    maximize_steps: int
    dream_steps: int
    dream_octaves: int
    occlusion_patch: int | None
    activation_tile: int
    activation_channels: int
    embed_images: int
    embed_size: int
    embed_layer: str
    embed_canvas: int
    texture_size: int
    texture_steps: int
    texture_optimizer: str
    classviz_size: int
    classviz_steps: int
    fool_steps: int
    invert_layers: tuple[str, ...]
    invert_iterations: int
    invert_fine_iterations: int


def settings(fast: bool, size: int | None = None) -> Settings:
    """The normal settings (pictures worth looking at; minutes on a CPU) or the ``fast`` ones."""
    if fast:
        return Settings(size=size or 64, maximize_size=32, maximize_octaves=1, maximize_steps=4, dream_steps=3,
                        dream_octaves=1, occlusion_patch=16, activation_tile=64, activation_channels=8,
                        embed_images=6, embed_size=64, embed_layer="relu4_1", embed_canvas=360, texture_size=48,
                        texture_steps=5, texture_optimizer="adam", classviz_size=32, classviz_steps=5, fool_steps=5,
                        invert_layers=("relu2_1", "relu2_2", "relu3_1", "relu4_1", "relu5_1"),
                        invert_iterations=5, invert_fine_iterations=0)
    return Settings(size=size or 224, maximize_size=128, maximize_octaves=3, maximize_steps=40, dream_steps=10,
                    dream_octaves=4, occlusion_patch=None, activation_tile=80, activation_channels=16,
                    embed_images=40, embed_size=160, embed_layer="relu5_1", embed_canvas=1000, texture_size=128,
                    texture_steps=200, texture_optimizer="lbfgs", classviz_size=128, classviz_steps=100, fool_steps=50,
                    invert_layers=("relu2_1", "relu2_2", "relu3_1", "relu4_1", "relu5_1"),
                    invert_iterations=150, invert_fine_iterations=30)


class Context:
    """What the sections share: the photo, the loss network, the classifier, the settings."""

    def __init__(self, photo: Image.Image, name: str, source: Path | None, s: Settings, device: str, seed: int,
                 progress: bool, classifier=None, folder: str | os.PathLike | None = None) -> None:
        self.photo = photo
        self.name = name
        self.source = source
        self.s = s
        self.device = str(resolve_device(device))
        self.seed = seed
        self.progress = progress
        self.classifier = classifier        # a LoadedClassifier or None
        self.folder = folder
        self._net = None
        self._channels: list[int] | None = None

    @property
    def x(self) -> torch.Tensor:
        return to_tensor(self.photo)

    @property
    def net(self):
        """The loss network up to relu5_1, built once."""
        if self._net is None:
            self._net = LossNetwork("relu5_1").to(self.device)
        return self._net

    def top_channels(self, k: int = 4) -> list[int]:
        """The photo's most active relu4_1 channels (mean activation), strongest first."""
        if self._channels is None:
            with torch.no_grad():
                f = self.net(self.x.to(self.device), ["relu4_1"])["relu4_1"][0]
            self._channels = f.flatten(1).mean(1).argsort(descending=True)[:16].tolist()
        return self._channels[:k]

    @property
    def channel_target(self) -> str:
        return f"relu4_1:{self.top_channels(1)[0]}"

    def attribution_args(self) -> tuple[object, Image.Image, object, list[str] | None]:
        """(model, image, target, labels) for the attribution tools: the classifier's top class, or
        the loss-network channel :attr:`channel_target`."""
        c = self.classifier
        if c is None:
            return self.net, self.photo, self.channel_target, None
        img = self.photo
        if c.input_size:
            from PIL import ImageOps

            img = ImageOps.fit(self.photo, (c.input_size, c.input_size), Image.Resampling.LANCZOS)
        return c.model, img, None, c.labels


# ----------------------------------------------------------------------------------- the sections

def _tensor_picture(t: torch.Tensor) -> Image.Image:
    t = t.detach().float().cpu()
    if t.dim() == 2:
        t = t[None].expand(3, -1, -1)
    return to_image(t.clamp(0, 1))


def _filters(ctx: Context) -> list[Figure]:
    first = filter_pictures("conv1_1", tile=24 if ctx.s.size < 128 else 40, net=ctx.net)
    deeper = filter_pictures("conv2_1", max_filters=8, slices=8, tile=32, net=ctx.net)
    what = {"conv1_1_per_filter": "conv1_1, the 64 RGB filters, each stretched on its own",
            "conv1_1_joint": "conv1_1 on one joint scale (strong filters stand out)"}
    figs = [Figure(what.get(name, name), img) for name, img in first.images.items()]
    figs += [Figure("conv2_1: each row one filter's 8 strongest input-channel slices (red +, blue -)",
                    deeper.images["conv2_1_slices"]),
             Figure("conv2_1 connection strengths ||W[out, in]|| (rows: filters, columns: inputs)",
                    deeper.images["conv2_1_strength"])]
    return figs


def _activations(ctx: Context) -> list[Figure]:
    grids = activation_grids(ctx.x, ["relu1_1", "relu3_1", "relu5_1"], max_channels=ctx.s.activation_channels,
                             order="top", tile=ctx.s.activation_tile, net=ctx.net)
    return [Figure(f"{g.layer}: the {len(g.channels)} most active channels (label: channel, mean activation)",
                   g.image) for g in grids]


def _maximize(ctx: Context) -> list[Figure]:
    targets = [f"relu4_1:{c}" for c in ctx.top_channels(4)]
    res = maximize_activation(targets, size=ctx.s.maximize_size, octaves=ctx.s.maximize_octaves,
                              steps=ctx.s.maximize_steps, net=ctx.net, device=ctx.device, seed=ctx.seed,
                              progress=ctx.progress)
    labels = [f"{t} {a:.0f}" for t, a in zip(res.targets, res.activations)]
    sheet = montage(res.images, labels, cols=len(res.images), tile=max(96, ctx.s.maximize_size))
    noise = ", ".join(f"{a:.0f}" for a in res.noise_activations)
    return [Figure(f"the photo's four most active relu4_1 channels, each maximised from noise (activation; "
                   f"on the starting noise: {noise}); {res.seconds:.1f} s", sheet)]


def _dream(ctx: Context) -> list[Figure]:
    figs = [Figure("photo", ctx.photo)]
    for layer in ("relu3_3", "relu4_2"):
        res = deep_dream(ctx.x, layer, steps=ctx.s.dream_steps, octaves=ctx.s.dream_octaves,
                         jitter=max(2, ctx.s.size // 8), net=ctx.net, device=ctx.device, seed=ctx.seed,
                         progress=ctx.progress)
        figs.append(Figure(f"{layer} amplified ({res.settings['octaves']} octaves x {ctx.s.dream_steps} steps; "
                           f"mean squared activation {res.objective_before:.3g} -> {res.objective_after:.3g})",
                           res.image))
    return figs


def _saliency(ctx: Context) -> list[Figure]:
    model, img, target, labels = ctx.attribution_args()
    a = saliency(model, img, target, labels=labels)
    return [Figure(f"|d score / d pixel| for {a.target}", heat_image(a.map)),
            Figure("over the photo", overlay_heatmap(img, a.map))]


def _guided(ctx: Context) -> list[Figure]:
    model, img, target, labels = ctx.attribution_args()
    a = guided_backprop(model, img, target, labels=labels)
    return [Figure("photo", img), Figure(f"guided backprop for {a.target} (grey = 0)", _tensor_picture(
        gradient_image(a.map)))]


def _deconvnet(ctx: Context) -> list[Figure]:
    model, img, target, labels = ctx.attribution_args()
    a = deconvnet(model, img, target, labels=labels)
    return [Figure("photo", img), Figure(f"deconvnet for {a.target} (grey = 0)", _tensor_picture(
        gradient_image(a.map)))]


def _gradcam(ctx: Context) -> list[Figure]:
    from percept.visualize.common import overlay_heatmap

    model, img, target, labels = ctx.attribution_args()
    a = grad_cam(model, img, target, labels=labels, guided=True)
    figs = [Figure(f"Grad-CAM for {a.target} at {a.extra.get('layer')}", overlay_heatmap(img, a.map))]
    if "guided" in a.extra:
        figs.append(Figure("guided Grad-CAM", _tensor_picture(gradient_image(a.extra["guided"]))))
    return figs


def _occlusion(ctx: Context) -> list[Figure]:
    from percept.visualize.common import overlay_heatmap

    model, img, target, labels = ctx.attribution_args()
    p = ctx.s.occlusion_patch
    a = occlusion(model, img, target, patch=p, stride=p // 2 if p else None, labels=labels)
    return [Figure(f"fall of {a.target}'s score under a grey {a.extra['patch']} px patch (stride "
                   f"{a.extra['stride']})", overlay_heatmap(img, a.map))]


CLASSIFIER_HINT = ("These sections need a classifier, and this page was made with <code>--classifier none</code>. "
                   "Leave that out for the ImageNet classifier (EfficientNet-Lite0), or give <code>--classifier "
                   "vgg16 --weights ~/.cache/torch/hub/checkpoints/vgg16-397923af.pth</code> (any torchvision "
                   "classifier with a local weight file) or <code>--classifier my_classifier.pt</code>.")


def _class_name(ctx: Context, i: int) -> str:
    labels = ctx.classifier.labels
    return labels[i] if labels and 0 <= i < len(labels) else f"class {i}"


def _logits(ctx: Context) -> torch.Tensor:
    model, img, _, _ = ctx.attribution_args()
    dev = next(iter(model.parameters()), torch.zeros(())).device
    with torch.no_grad():
        return model(to_tensor(img).to(dev))[0].float().cpu()


def _classviz(ctx: Context) -> list[Figure]:
    if ctx.classifier is None:
        raise SectionNote(CLASSIFIER_HINT)
    top = _logits(ctx).argsort(descending=True)[:3].tolist()
    size = ctx.classifier.input_size or ctx.s.classviz_size
    figs = []
    for i in top:
        res = class_model(ctx.classifier.model, i, size=size, steps=ctx.s.classviz_steps, device=ctx.device,
                          seed=ctx.seed, progress=ctx.progress)
        p = f", p {res.probability:.2f}" if res.probability is not None else ""
        figs.append(Figure(f"{_class_name(ctx, i)} (one of the photo's top classes): score {res.start_score:.3g} -> "
                           f"{res.score:.3g}{p}, {ctx.s.classviz_steps} steps", _tensor_picture(res.image[0])))
    return figs


def _fool(ctx: Context) -> list[Figure]:
    if ctx.classifier is None:
        raise SectionNote(CLASSIFIER_HINT)
    model, img, _, labels = ctx.attribution_args()
    target = int(_logits(ctx).argmin())  # the class the classifier finds least likely
    res = fooling_image(model, to_tensor(img), target, max_steps=ctx.s.fool_steps, device=ctx.device,
                        labels=labels)
    p0 = f" (p {res.start_probability:.2f})" if res.start_probability is not None else ""
    p1 = f" (p {res.probability:.2f})" if res.probability is not None else ""
    outcome = (f"now classified as {res.label}{p1} after {res.steps} steps" if res.success else
               f"not yet {res.label} after {res.steps} steps (now {_class_name(ctx, res.final_index)})")
    return [Figure(f"photo: {res.start_label}{p0}", img),
            Figure(f"changed towards its least likely class: {outcome}; largest change {res.linf * 255:.0f}/255",
                   _tensor_picture(res.image[0])),
            Figure("the change x10 (grey = none)", _tensor_picture(res.difference(10.0)[0]))]


def sample_photos(limit: int = 16) -> list[tuple[str, Image.Image]]:
    """scikit-image's bundled sample pictures (``skimage.data``; no download), as (name, RGB image)."""
    import warnings

    names = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "camera",
             "coins", "moon", "clock", "brick", "grass", "gravel", "page", "colorwheel"]
    out = []
    try:
        import skimage.data as data
    except ImportError:
        return out
    for n in names:
        if len(out) >= limit:
            break
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out.append((n, load_image(getattr(data, n)())))
        except Exception:  # noqa: BLE001 - a sample that needs a download is simply skipped
            continue
    return out


def _embed_sources(ctx: Context) -> tuple[list[str], list[Image.Image], str]:
    """The photo first, then other images: ``folder``, else the photo's own folder, topped up with
    scikit-image's samples when there are fewer than three others."""
    want = ctx.s.embed_images - 1
    names, imgs = [ctx.name], [ctx.photo]
    where = ""
    folder = Path(ctx.folder) if ctx.folder else (ctx.source.parent if ctx.source else None)
    if folder is not None:
        try:
            files = list_images(folder)
        except PerceptError:
            if ctx.folder:
                raise
            files = []
        own = ctx.source.resolve() if ctx.source else None
        files = [f for f in files if f.resolve() != own and f.suffix.lower() in IMAGE_EXTENSIONS]
        for f in files[:want]:
            try:
                imgs.append(load_image(f))
                names.append(f.stem)
            except PerceptError:
                continue
        if len(imgs) > 1:
            where = f"{len(imgs) - 1} from {folder}"
    if len(imgs) < 4:
        extra = sample_photos(want - (len(imgs) - 1))
        names += [n for n, _ in extra]
        imgs += [im for _, im in extra]
        where = (where + " + " if where else "") + f"{len(extra)} scikit-image samples"
    return names, imgs, where


def _embed(ctx: Context) -> list[Figure]:
    from percept.visualize.embed import embed_images

    names, imgs, where = _embed_sources(ctx)
    if len(imgs) < 2:
        raise PerceptError("no other images to compare the photo with (give --folder)")
    k = 3 if ctx.s.embed_images < 12 else 5
    n = len(imgs)
    queries = sorted({0, *(q for q in (n // 3, (2 * n) // 3) if 0 < q < n)})
    res = embed_images(imgs, layer=ctx.s.embed_layer, k=k, queries=queries,
                       size=ctx.s.embed_size, canvas=ctx.s.embed_canvas, top=8 if ctx.s.embed_images < 12 else 16,
                       names=names, net=ctx.net, device=ctx.device, seed=ctx.seed, progress=ctx.progress)
    return [Figure(f"nearest neighbours: the photo and two others ({len(imgs)} images: the photo + {where})",
                   res.neighbours),
            Figure(f"t-SNE of {res.layer} codes ({res.codes.shape[1]}-d, average-pooled)", res.tsne),
            Figure(f"the {len(res.patches)} strongest {res.layer}:{res.channel} responses (its most variable "
                   f"channel), cropped to its receptive field; grey is outside the image", res.patch_sheet)]


def _texture(ctx: Context) -> list[Figure]:
    res = synthesize_texture(ctx.photo, size=ctx.s.texture_size, iterations=ctx.s.texture_steps,
                             optimizer=ctx.s.texture_optimizer, net=ctx.net, device=ctx.device, seed=ctx.seed,
                             progress=ctx.progress)
    layers = ", ".join(res.settings.get("layers", []))
    how = "L-BFGS" if ctx.s.texture_optimizer == "lbfgs" else ctx.s.texture_optimizer.capitalize()
    return [Figure("source", ctx.photo),
            Figure(f"a new sample with the same Gram matrices ({layers}; {ctx.s.texture_steps} {how} steps, "
                   f"Gram loss {res.loss_initial:.3g} -> {res.loss_final:.3g})", res.image)]


def _invert(ctx: Context) -> list[Figure]:
    sheet, cells = invert_grid(ctx.photo, ctx.s.invert_layers, method="auto", size=ctx.s.size,
                               iterations=ctx.s.invert_iterations, fine_iterations=ctx.s.invert_fine_iterations,
                               device=ctx.device, seed=ctx.seed, progress=ctx.progress)
    opt = [c.layer for c in cells if c.method == "optimize"]
    how = (f"; optimisation: {ctx.s.invert_iterations} + {ctx.s.invert_fine_iterations} steps for "
           f"{', '.join(opt)}" if opt else "")
    times = ", ".join(f"{c.layer} {c.seconds:.1f} s" for c in cells)
    return [Figure(f"reconstructions (decoders where shipped{how}); {times}", sheet)]


@dataclass(frozen=True)
class SectionSpec:
    key: str
    title: str
    citation: str
    description: str
    draw: Callable[[Context], list[Figure]]


SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec("filters", "Filters",
                "Krizhevsky, Sutskever &amp; Hinton 2012, <i>ImageNet Classification with Deep Convolutional Neural "
                "Networks</i> (Fig. 3); Zeiler &amp; Fergus 2014, <i>Visualizing and Understanding Convolutional "
                "Networks</i>",
                "The learned weights of VGG19. The first layer sees RGB pixels, so its 3x3 filters are drawn as "
                "colour images (each stretched on its own, and on one joint scale); a deeper layer's filters are "
                "drawn as their strongest input-channel slices.", _filters),
    SectionSpec("activations", "Activations",
                "Zeiler &amp; Fergus 2014; Yosinski et al. 2015, <i>Understanding Neural Networks Through Deep "
                "Visualization</i>",
                "The photo's feature maps at three depths (most active channels first, each stretched on its own, "
                "viridis): edges and colours early, larger and sparser parts later.", _activations),
    SectionSpec("maximize", "Activation maximisation",
                "Erhan et al. 2009, <i>Visualizing Higher-Layer Features of a Deep Network</i>; Simonyan, Vedaldi "
                "&amp; Zisserman 2014, <i>Deep Inside Convolutional Networks</i>; Yosinski et al. 2015",
                "Gradient ascent in pixel space from noise, with jitter, blur and L2 decay as image priors: what "
                "the channels that respond most to this photo look for.", _maximize),
    SectionSpec("dream", "DeepDream",
                "Mordvintsev, Olah &amp; Tyka 2015, <i>Inceptionism: Going Deeper into Neural Networks</i> (Google "
                "Research blog)",
                "The photo changed to amplify whatever a layer already sees in it, over several octaves.", _dream),
    SectionSpec("saliency", "Saliency",
                "Simonyan, Vedaldi &amp; Zisserman 2014, <i>Deep Inside Convolutional Networks: Visualising Image "
                "Classification Models and Saliency Maps</i>",
                "The gradient of one score with respect to the pixels (largest magnitude over colours): which "
                "pixels change it most.", _saliency),
    SectionSpec("guided-backprop", "Guided backpropagation",
                "Springenberg, Dosovitskiy, Brox &amp; Riedmiller 2015, <i>Striving for Simplicity: The All "
                "Convolutional Net</i>",
                "The gradient with every ReLU passing back only positive gradient where its input was positive: "
                "sharp, edge-like evidence for the score.", _guided),
    SectionSpec("deconvnet", "Deconvnet",
                "Zeiler &amp; Fergus 2014, <i>Visualizing and Understanding Convolutional Networks</i>",
                "The deconvolutional network's reconstruction: ReLUs pass back the positive part of the gradient "
                "whatever their input was.", _deconvnet),
    SectionSpec("gradcam", "Grad-CAM",
                "Selvaraju et al. 2017, <i>Grad-CAM: Visual Explanations from Deep Networks via Gradient-based "
                "Localization</i>",
                "Feature maps of a late layer weighted by their average gradient: a coarse map of where the score "
                "comes from; times guided backprop for detail.", _gradcam),
    SectionSpec("occlusion", "Occlusion",
                "Zeiler &amp; Fergus 2014, <i>Visualizing and Understanding Convolutional Networks</i> (Sec. 4.2)",
                "A grey square slides over the photo; the map shows how much the score falls when each place is "
                "hidden.", _occlusion),
    SectionSpec("classviz", "Class model visualisation",
                "Simonyan, Vedaldi &amp; Zisserman 2014, <i>Deep Inside Convolutional Networks</i> (Sec. 2)",
                "Images grown from grey noise by gradient ascent on one class score (before the softmax) under "
                "L2 decay, blur and small-norm clipping: what the classifier takes each of the photo's top "
                "classes to look like.", _classviz),
    SectionSpec("fool", "Fooling images",
                "Szegedy et al. 2014, <i>Intriguing Properties of Neural Networks</i>; Goodfellow, Shlens &amp; "
                "Szegedy 2015, <i>Explaining and Harnessing Adversarial Examples</i>",
                "Small signed-gradient steps (at most 1/255 per pixel each) that push the photo towards the class "
                "the classifier finds least likely; success is checked on the 8-bit image.", _fool),
    SectionSpec("embed", "Feature space: neighbours, t-SNE and top patches",
                "Krizhevsky et al. 2012 (Sec. 6.1, Fig. 4); van der Maaten &amp; Hinton 2008, <i>Visualizing Data "
                "using t-SNE</i>; Zeiler &amp; Fergus 2014 (Fig. 2); Girshick et al. 2014, <i>Rich feature "
                "hierarchies</i>",
                "Images close in CNN-code space are alike in content, not in pixels; t-SNE lays the codes out in "
                "2-D; a channel's strongest responses over all images, cut to its receptive field.", _embed),
    SectionSpec("texture", "Texture synthesis",
                "Gatys, Ecker &amp; Bethge 2015, <i>Texture Synthesis Using Convolutional Neural Networks</i>",
                "An image optimised from noise to match the photo's Gram matrices at several layers: its textures, "
                "without its layout.", _texture),
    SectionSpec("invert", "Inverting the representation",
                "Dosovitskiy &amp; Brox 2016, <i>Inverting Visual Representations with Convolutional Networks</i>; "
                "Mahendran &amp; Vedaldi 2015, <i>Understanding Deep Image Representations by Inverting Them</i>",
                "The photo reconstructed from one layer's features at a time: a trained decoder where one is "
                "shipped, image optimisation otherwise. Labels give the image-space error (0 is perfect, a flat "
                "grey image about 1).", _invert),
)
"""Every section of the page, in order."""

SECTION_KEYS = tuple(s.key for s in SECTIONS)


def render_section(spec: SectionSpec, ctx: Context) -> Section:
    """Run one section; its failure becomes the section's error, never the page's."""
    sec = Section(spec.key, spec.title, spec.citation, spec.description)
    t0 = time.perf_counter()
    try:
        sec.figures = list(spec.draw(ctx))
    except SectionNote as note:
        sec.note = str(note)
    except PerceptError as exc:
        sec.error = str(exc)
    except ImportError as exc:
        sec.error = f"this technique's module is not available ({exc})"
    except Exception as exc:  # noqa: BLE001 - one broken section must not take the page down
        sec.error = f"{type(exc).__name__}: {exc}"
        sec.details = traceback.format_exc(limit=-4)
    sec.seconds = time.perf_counter() - t0
    return sec


# ----------------------------------------------------------------------------------- the page

def png_data_uri(img: Image.Image) -> str:
    """A PIL image as a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1180px;
       padding: 16px 24px 48px; color: #222; background: #fafafa; }
header { display: flex; gap: 24px; align-items: flex-start; border-bottom: 1px solid #ddd; padding-bottom: 12px; }
header img { border: 1px solid #ccc; }
h1 { margin: 0 0 6px; font-size: 26px; }
nav a { margin-right: 10px; white-space: nowrap; }
section { background: #fff; border: 1px solid #e2e2e2; border-radius: 6px; margin: 18px 0; padding: 12px 18px; }
h2 { margin: 4px 0 6px; font-size: 20px; }
p.cite { color: #555; font-size: 13px; margin: 2px 0 8px; }
p.desc { margin: 4px 0 10px; }
.figs { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
figure { margin: 0; max-width: 100%; }
figure img { max-width: 100%; height: auto; display: block; border: 1px solid #ddd; background: #fff; }
figure img.px { image-rendering: pixelated; }
figcaption { font-size: 12px; color: #444; margin-top: 3px; }
.note { background: #eef5ff; border-left: 4px solid #4a88d8; padding: 8px 12px; }
.error { background: #fff0f0; border-left: 4px solid #d84a4a; padding: 8px 12px; }
.error code { white-space: pre-wrap; }
.time { color: #888; font-size: 12px; margin: 6px 0 0; }
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-loaded', String(ok));
  document.body.setAttribute('data-images-total', String(imgs.length));
  document.title = document.title + ' [' + ok + '/' + imgs.length + ' images]';
});
"""


def _display_size(img: Image.Image, min_width: int = 192, max_height: int = 640) -> tuple[int, int]:
    """On-page size: small pictures enlarged by a whole factor, very tall ones shrunk."""
    w, h = img.size
    scale = float(max(1, min_width // max(1, w)))
    if h * scale > max_height:
        scale = max_height / h
    return max(1, round(w * scale)), max(1, round(h * scale))


def _img_tag(img: Image.Image, alt: str, min_width: int = 192, max_height: int = 640) -> str:
    """An ``<img>`` with the picture inline (a data URI), at :func:`_display_size`."""
    w, h = _display_size(img, min_width, max_height)
    cls = ' class="px"' if w > img.width else ""
    return (f'<img{cls} src="{png_data_uri(img)}" width="{w}" height="{h}" '
            f'alt="{html.escape(alt, quote=True)}">')


def render_html(photo: Image.Image, name: str, sections: Sequence[Section], subtitle: str) -> str:
    """The page: a header with the photo and a table of contents, then one block per section."""
    esc = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>percept gallery: {esc(name)}</title>", f"<style>{_CSS}</style>",
             f"<script>{_SCRIPT}</script>", "</head><body>", "<header>", _img_tag(photo, name, 160),
             f"<div><h1>What the networks see in {esc(name)}</h1><p>{esc(subtitle)}</p><nav>"]
    parts += [f'<a href="#{s.key}">{esc(s.title)}</a>' for s in sections]
    parts += ["</nav></div>", "</header>"]
    for s in sections:
        parts.append(f'<section id="{s.key}"><h2>{esc(s.title)}</h2>')
        parts.append(f'<p class="cite">{s.citation}</p>')  # trusted markup from SECTIONS
        parts.append(f'<p class="desc">{esc(s.description)}</p>')
        if s.note:
            parts.append(f'<p class="note">{s.note}</p>')  # trusted markup from the section
        if s.error:
            parts.append(f'<div class="error"><b>This section failed:</b> <code>{esc(s.error)}</code>')
            if s.details:
                parts.append(f"<details><summary>traceback</summary><pre>{esc(s.details)}</pre></details>")
            parts.append("</div>")
        if s.figures:
            parts.append('<div class="figs">')
            for f in s.figures:
                width = max(_display_size(f.image)[0], 240)
                parts.append(f'<figure style="max-width: min(100%, {width}px)">{_img_tag(f.image, f.caption)}'
                             f"<figcaption>{esc(f.caption)}</figcaption></figure>")
            parts.append("</div>")
        parts.append(f'<p class="time">{s.seconds:.1f} s</p></section>')
    parts.append("</body></html>")
    return "\n".join(parts)


def build_gallery(image: ImageLike, out: str | os.PathLike, fast: bool = False,
                  folder: str | os.PathLike | None = None, size: int | None = None,
                  classifier: str | None = GalleryOptions.classifier, classifier_weights: str | os.PathLike | None = None,
                  device: str = "auto", seed: int = 0, progress: bool = False,
                  sections: Sequence[str] | None = None) -> GalleryReport:
    """Write ``out/index.html``: every technique for one photo on one self-contained page.

    Args:
        image: the photo (path or PIL image).
        out: output folder (created); the page is ``out/index.html``.
        fast: tiny sizes and few steps (a smoke test; seconds instead of minutes).
        folder: other images for the feature-space section (default: the photo's folder, topped up
            with scikit-image samples).
        size: the photo's long side (default 224; 64 with ``fast``).
        classifier, classifier_weights: the classifier of the class-based sections: EfficientNet-Lite0 on
            ImageNet by default, a torchvision classifier name with its local weights, or a percept
            classifier file; ``None`` (``--classifier none``) leaves those sections out.
        sections: keys of the sections to render (default all, see ``SECTION_KEYS``).

    Raises:
        PerceptError: the photo cannot be read, the classifier cannot be loaded, an unknown section.
    """
    t0 = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PerceptError(f"{out}: is not a folder")
    keys = list(sections) if sections is not None else list(SECTION_KEYS)
    unknown = [k for k in keys if k not in SECTION_KEYS]
    if unknown:
        raise PerceptError(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTION_KEYS)}")
    source = None if isinstance(image, Image.Image) else Path(image) if isinstance(image, (str, os.PathLike)) else None
    name = source.stem if source else "photo"
    s = settings(fast, size)
    if s.size < 32:
        raise PerceptError(f"size must be at least 32 px, got {s.size}")
    photo = resize_long_side(load_image(image), s.size)
    loaded = None
    if classifier == "none":
        classifier = None
    if classifier:
        loaded = open_classifier(classifier, classifier_weights)
    elif classifier_weights:
        raise PerceptError("--weights needs --classifier")
    ctx = Context(photo, name, source, s, device, seed, progress, loaded, folder)
    from tqdm import tqdm

    rendered = []
    specs = [spec for spec in SECTIONS if spec.key in keys]
    for spec in tqdm(specs, desc="gallery", disable=not progress, dynamic_ncols=True):
        rendered.append(render_section(spec, ctx))
    mode = "fast mode (tiny sizes, few steps)" if fast else "full settings"
    if loaded:
        who = f"classifier {loaded.name}"
    else:
        try:
            who = f"no classifier: the attributions explain the loss-network channel {ctx.channel_target}"
        except Exception:  # noqa: BLE001 - the sections already show what went wrong
            who = "no classifier"
    subtitle = (f"{photo.width}x{photo.height} px, {mode}, {who}, device {ctx.device}; "
                f"built in {time.perf_counter() - t0:.0f} s by percept viz gallery.")
    page = render_html(photo, name, rendered, subtitle)
    path = out / "index.html"
    atomic_write_bytes(path, page.encode("utf-8"))
    n_images = 1 + sum(len(r.figures) for r in rendered)
    return GalleryReport(path, rendered, n_images, time.perf_counter() - t0)


__all__ = ["Figure", "Section", "SectionNote", "GalleryReport", "Settings", "settings", "Context", "SectionSpec",
           "SECTIONS", "SECTION_KEYS", "render_section", "render_html", "build_gallery", "png_data_uri",
           "sample_photos", "CLASSIFIER_HINT"]
