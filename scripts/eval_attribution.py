#!/usr/bin/env python
"""Which attribution method finds the object? A measured comparison on composites with a known box.

Each composite is a background photo (``--backgrounds``, default the content photos in
../shared/data/content, else scikit-image's samples) cropped to 224x224 with an object photo pasted at a
random box (``percept.visualize.pointing.paste_object``: long side 35-55% of the image). The objects are
scikit-image's ``chelsea`` (a cat) and ``coffee`` (an espresso); the class explained is the one the
classifier (EfficientNet-Lite0, ImageNet) gives the object photo alone. For saliency, guided backprop,
deconvnet, Grad-CAM, guided Grad-CAM and occlusion it reports:

* the pointing-game hit rate: the map's maximum inside the box, strictly and with Zhang et al.'s (2016)
  15 px tolerance;
* the mean fraction of the map's positive mass inside the box (gradient images as ``max_c |.|``);
* seconds per image (median), the methods timed in turn on each composite.

Also: the mean box area (a uniform map's mass fraction) and how often the classifier's top class on
the composite is the object's class. Writes the table into docs/BENCHMARKS.md (eval_attribution markers).

    .venv/bin/python scripts/eval_attribution.py            # 40 composites, ~4 min on 2 cores
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from benchdocs import update_block  # noqa: E402

from percept.device import cpu_description  # noqa: E402
from percept.images import list_images, load_image, to_tensor  # noqa: E402
from percept.visualize import attribution as A  # noqa: E402
from percept.visualize.pointing import mass_inside, paste_object, pointing_hit  # noqa: E402

METHODS = ["saliency", "guided backprop", "deconvnet", "Grad-CAM", "guided Grad-CAM", "occlusion"]


def attribute(method: str, model, x: torch.Tensor, target: int) -> torch.Tensor:
    if method == "saliency":
        return A.saliency(model, x, target).map
    if method == "guided backprop":
        return A.guided_backprop(model, x, target).map
    if method == "deconvnet":
        return A.deconvnet(model, x, target).map
    if method == "Grad-CAM":
        return A.grad_cam(model, x, target, guided=False).map
    if method == "guided Grad-CAM":
        return A.grad_cam(model, x, target, guided=True).extra["guided"]
    if method == "occlusion":
        return A.occlusion(model, x, target, patch=32, stride=16).map
    raise ValueError(method)


def backgrounds(folder: Path | None) -> list:
    if folder is not None and folder.is_dir():
        return [load_image(p) for p in list_images(folder)]
    import skimage.data as data
    from PIL import Image

    names = ["astronaut", "rocket", "camera", "coins", "grass", "gravel", "brick", "moon", "page", "text"]
    out = []
    for n in names:
        a = getattr(data, n)()
        out.append(Image.fromarray(a).convert("RGB"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backgrounds", type=Path, default=REPO.parent / "shared" / "data" / "content")
    ap.add_argument("--count", type=int, default=40, help="composites (default 40)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-docs", action="store_true", help="print the table only")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    lc = A.imagenet_classifier()
    model = lc.model
    import skimage.data as data
    from PIL import Image

    objects = {name: Image.fromarray(getattr(data, name)()) for name in ("chelsea", "coffee")}
    classes = {}
    for name, img in objects.items():
        classes[name] = A.predict(model, to_tensor(img.resize((224, round(224 * img.height / img.width)))), k=1,
                                  labels=lc.labels)[0]
        print(f"object {name}: {classes[name].label} (p={classes[name].probability:.2f})")
    bgs = backgrounds(args.backgrounds)
    rng.shuffle(bgs)
    hits = {m: [] for m in METHODS}
    near = {m: [] for m in METHODS}
    mass = {m: [] for m in METHODS}
    secs = {m: [] for m in METHODS}
    areas, top1 = [], []
    for i in range(args.count):
        name = list(objects)[i % len(objects)]
        comp, box = paste_object(objects[name], bgs[i % len(bgs)], scale=rng.uniform(0.35, 0.55),
                                 position=(rng.random(), rng.random()))
        x = to_tensor(comp)
        target = classes[name].index
        top1.append(A.predict(model, x, k=1)[0].index == target)
        areas.append(box.area / (224 * 224))
        order = METHODS[i % len(METHODS):] + METHODS[:i % len(METHODS)]    # in turn: drift hits all alike
        for m in order:
            t0 = time.perf_counter()
            amap = attribute(m, model, x, target)
            secs[m].append(time.perf_counter() - t0)
            hits[m].append(pointing_hit(amap, box))
            near[m].append(pointing_hit(amap, box, tolerance=15))
            mass[m].append(mass_inside(amap, box))
        print(f"{i + 1}/{args.count} {name}: " + ", ".join(f"{m} {'hit' if hits[m][-1] else 'miss'}"
                                                           for m in METHODS), flush=True)
    rows = sorted(METHODS, key=lambda m: (-statistics.fmean(hits[m]), -statistics.fmean(near[m]),
                                          -statistics.fmean(mass[m])))
    md = [f"Machine: {cpu_description()}. Command: `.venv/bin/python scripts/eval_attribution.py --count "
          f"{args.count}`. Classifier: EfficientNet-Lite0 (ImageNet, percept's default). {args.count} composites "
          f"at 224x224: scikit-image's `chelsea` ({classes['chelsea'].label}) and `coffee` "
          f"({classes['coffee'].label}) pasted at a random box onto "
          f"{'the content photos' if args.backgrounds.is_dir() else 'scikit-image samples'}; the box covers "
          f"{statistics.fmean(areas) * 100:.0f}% of the image on average (a uniform map's mass fraction), and "
          f"the composite's top class is the object's in {sum(top1)}/{len(top1)}. Occlusion: 32 px patch, "
          "stride 16. Grad-CAM at the last feature map (`_relu1`, 7x7). Ranked by the strict hit rate.", "",
          "| method | pointing-game hit rate | within 15 px | mass inside the box | seconds per image (median) |",
          "|---|---|---|---|---|"]
    for m in rows:
        md.append(f"| {m} | {statistics.fmean(hits[m]) * 100:.0f}% | {statistics.fmean(near[m]) * 100:.0f}% | "
                  f"{statistics.fmean(mass[m]):.2f} | "
                  f"{statistics.median(secs[m]):.2f} |")
    text = "\n".join(md)
    print(text)
    if not args.no_docs:
        update_block("eval_attribution", "Attribution methods: pointing game on composites", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
