#!/usr/bin/env python
"""The lecture figures, reproduced on real ImageNet classes with percept's default classifier
(EfficientNet-Lite0): two pictures in docs/.

* ``docs/imagenet_tools.jpg`` - one row each: the top-5 predictions of ``chelsea`` and ``coffee``;
  Simonyan et al.'s saliency of a cat pasted onto a plain background and the GrabCut segmentation seeded
  by it; Grad-CAM and guided Grad-CAM; occlusion; a fooling image of ``chelsea`` to "ostrich" (the PNG read
  back is classified as ostrich; its change magnified 10x).
* ``docs/classviz.jpg`` - class model visualisations of named classes (``--classes``), with the
  regularisers of ``percept viz classviz`` (jitter, blur, L2 decay, clipping, octaves).

Prints what each step measured (predictions, the fooling image's steps, L2 and Linf as written).

    .venv/bin/python scripts/seed_figures.py                 # ~2 min on 2 cores
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from percept.images import load_image, resize_long_side, save_image, to_image, to_tensor  # noqa: E402
from percept.visualize import attribution as A  # noqa: E402
from percept.visualize.classviz import class_model, fooling_image  # noqa: E402
from percept.visualize.common import montage, overlay_heatmap  # noqa: E402
from percept.visualize.pointing import paste_object  # noqa: E402

CLASSES = ["goose", "ostrich", "flamingo", "tarantula", "jellyfish", "pineapple", "lemon", "volcano"]


def prediction_card(photo: Image.Image, preds) -> Image.Image:
    from percept.visualize.cli_attribution import _prediction_card

    return _prediction_card(photo, preds)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--classes", default=",".join(CLASSES), help="class names for docs/classviz.jpg")
    ap.add_argument("--steps", type=int, default=240, help="class-model steps (default 240)")
    ap.add_argument("--out", type=Path, default=REPO / "docs")
    ap.add_argument("--only", choices=["tools", "classviz"], help="make one of the two figures")
    args = ap.parse_args()
    torch.manual_seed(0)
    lc = A.imagenet_classifier()
    tile = 224
    if args.only != "classviz":
        tools_figure(args, lc, tile)
    if args.only != "tools":
        classviz_figure(args, lc, tile)
    return 0


def tools_figure(args, lc, tile: int) -> None:
    m = lc.model
    rows: list[tuple[list, list]] = []

    photos = {n: resize_long_side(Image.fromarray(getattr(skimage.data, n)()), 224) for n in ("chelsea", "coffee")}
    cards = []
    for name, photo in photos.items():
        preds = A.predict(m, to_tensor(photo), k=5, labels=lc.labels)
        print(f"{name}: " + ", ".join(f"{p.label} {p.probability:.2f}" for p in preds))
        cards.append(prediction_card(photo, preds))
    rows.append((cards, ["chelsea: top 5", "coffee: top 5"]))

    rng = np.random.default_rng(0)
    plain = Image.fromarray((rng.normal(0, 6, (224, 224, 3)) + [196, 200, 190]).clip(0, 255).astype(np.uint8))
    comp, box = paste_object(Image.fromarray(skimage.data.chelsea()), plain, scale=0.6, position=(0.8, 0.7))
    x = to_tensor(comp)
    cat = A.predict(m, x, k=1, labels=lc.labels)[0]
    sal = A.saliency(m, x, cat.index, labels=lc.labels)
    mask = A.segment_salient(x, sal.map)
    cut = np.asarray(comp).copy()
    cut[~mask] = 255
    inside = mask[box.top:box.bottom, box.left:box.right].sum() / max(1, mask.sum())
    print(f"composite: {cat.label} p={cat.probability:.2f}; GrabCut keeps {mask.mean() * 100:.0f}% of the image, "
          f"{inside * 100:.0f}% of it inside the pasted box")
    rows.append(([comp, A.heat_image(sal.map, percentile=99), Image.fromarray(cut)],
                 [f"composite ({cat.label})", "saliency (Simonyan et al.)", "GrabCut from saliency"]))

    from PIL import ImageOps

    photo = ImageOps.fit(Image.fromarray(skimage.data.chelsea()), (224, 224), Image.Resampling.LANCZOS)
    xc = to_tensor(photo)
    cam = A.grad_cam(m, xc, None, labels=lc.labels)
    occ = A.occlusion(m, xc, cam.index, patch=32, stride=8, labels=lc.labels)
    print(f"Grad-CAM of {cam.target} at {cam.extra['layer']}; occlusion's largest fall {float(occ.map.max()):.3f}")
    rows.append(([overlay_heatmap(photo, cam.map), A.gradient_image(cam.extra["guided"]),
                  overlay_heatmap(photo, occ.map)],
                 [f"Grad-CAM: {cam.target}", "guided Grad-CAM", "occlusion (32 px patch)"]))

    fool = fooling_image(m, xc, 9, labels=lc.labels)
    with tempfile.TemporaryDirectory() as tmp:
        path = save_image(to_image(fool.image), Path(tmp) / "fooled.png")
        back = to_tensor(load_image(path))
    with torch.no_grad():
        read_back = lc.labels[int(m(back).argmax())]
    linf = float((back - xc).abs().max())
    print(f"fool: {fool.start_label} -> {fool.label} in {fool.steps} steps, L2 {fool.l2:.3f}, "
          f"Linf {linf * 255:.0f}/255 in the PNG, read back as {read_back}")
    rows.append(([photo, to_image(fool.image), to_image(fool.difference(10))],
                 [f"{fool.start_label} (p={fool.start_probability:.2f})",
                  f"PNG read back: {read_back} (p={fool.probability:.2f})",
                  f"change x10 (Linf {linf * 255:.0f}/255)"]))

    pics, names = [], []
    for row_pics, row_names in rows:
        row_pics = list(row_pics) + [Image.new("RGB", (8, 8), (255, 255, 255))] * (3 - len(row_pics))
        pics += row_pics
        names += list(row_names) + [""] * (3 - len(row_names))
    sheet = montage(pics, names, cols=3, tile=tile)
    args.out.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out / "imagenet_tools.jpg", quality=88)
    print(f"wrote {args.out / 'imagenet_tools.jpg'}")


def classviz_figure(args, lc, tile: int) -> None:
    m = lc.model
    pics, names = [], []
    for text in [c.strip() for c in args.classes.split(",") if c.strip()]:
        index = lc.class_index(text)
        r = class_model(m, index, size=224, steps=args.steps, labels=lc.labels, seed=0)
        print(f"classviz {r.target}: score {r.start_score:.2f} -> {r.score:.2f}, p={r.probability:.3f}, "
              f"{r.seconds:.0f} s")
        pics.append(r.image[0])
        names.append(f"{r.target} (p={r.probability:.2f})")
    cols = 4 if len(pics) > 4 else len(pics)
    montage(pics, names, cols=cols, tile=tile).save(args.out / "classviz.jpg", quality=88)
    print(f"wrote {args.out / 'classviz.jpg'}")


if __name__ == "__main__":
    sys.exit(main())
