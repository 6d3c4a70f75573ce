"""``percept viz embed | invert-grid | gallery``: argparse only; the work is imported when a command runs.

* ``embed FOLDER``: nearest neighbours by pixels vs CNN codes, a t-SNE map of CNN codes and a
  channel's maximally activating patches (:mod:`percept.visualize.embed`).
* ``invert-grid IMAGE``: the photo reconstructed from several layers side by side (decoders where
  shipped, Mahendran-Vedaldi optimisation otherwise).
* ``gallery IMAGE``: one self-contained HTML page with every technique for one photo
  (:mod:`percept.visualize.gallery`).
"""

from __future__ import annotations

import argparse

from percept.argtypes import nonneg_int as _nonneg_int  # noqa: E402
from percept.argtypes import positive_float as _positive_float  # noqa: E402
from percept.argtypes import positive_int as _positive_int  # noqa: E402
from percept.argtypes import side_int as _side_int  # noqa: E402
from percept.visualize.commands import common_options


def cmd_embed(args: argparse.Namespace) -> int:
    from percept.visualize.embed import embed_images, save_embed

    res = embed_images(args.folder, layer=args.layer, channel=args.channel, k=args.k, queries=args.queries,
                       size=args.size, perplexity=args.perplexity, canvas=args.canvas, thumb=args.thumb,
                       top=args.top, pool=args.pool, device=args.device, seed=args.seed,
                       progress=not args.quiet)
    paths = save_embed(res, args.out)
    secs = sum(res.seconds.values())
    print(f"{len(res.names)} images, {res.layer} codes ({res.codes.shape[1]}-d), channel {res.channel}, "
          f"{secs:.1f} s")
    for p in paths:
        print(f"wrote {p}")
    return 0


def cmd_invert_grid(args: argparse.Namespace) -> int:
    from pathlib import Path

    from percept.images import save_image
    from percept.visualize.embed import invert_grid

    sheet, cells = invert_grid(args.image, args.layers, method=args.method, size=args.size,
                               iterations=args.iterations, device=args.device, seed=args.seed,
                               progress=not args.quiet)
    for c in cells:
        print(f"{c.layer}: {c.method}, image-space error {c.image_error:.4f}, feature-space error "
              f"{c.feature_error:.4f}, {c.seconds:.2f} s")
    path = save_image(sheet, Path(args.out) / f"{Path(args.image).stem}_invert_grid.png")
    print(f"wrote {path}")
    return 0


def cmd_gallery(args: argparse.Namespace) -> int:
    from percept.visualize.gallery import build_gallery

    only = [k.strip() for k in args.only.split(",") if k.strip()] if args.only else None
    report = build_gallery(args.image, args.out, fast=args.fast, folder=args.folder, size=args.size,
                           classifier=args.classifier, classifier_weights=args.weights, device=args.device,
                           seed=args.seed, progress=not args.quiet, sections=only)
    failed = [s.title for s in report.sections if s.error]
    print(f"wrote {report.path} ({len(report.sections)} sections, {report.images} images, "
          f"{report.seconds:.1f} s{'; failed: ' + ', '.join(failed) if failed else ''})")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("embed", help="nearest neighbours (pixels vs CNN codes), t-SNE map and top patches "
                                     "for a folder of images")
    e.add_argument("folder", help="folder of images (searched recursively)")
    e.add_argument("--layer", default="relu5_1",
                   help="layer whose pooled activations are the CNN codes (default relu5_1); LAYER:CHANNEL also "
                        "picks the patch channel")
    e.add_argument("--channel", type=_nonneg_int,
                   help="channel whose maximally activating patches are shown (default: the most variable one)")
    e.add_argument("-k", type=_positive_int, default=5, help="neighbours per query and space (default 5)")
    e.add_argument("--queries", type=_positive_int, default=6, help="query rows in the neighbour grid (default 6)")
    e.add_argument("--size", type=_side_int, default=224, help="images are centre-cropped to SIZE x SIZE (224)")
    e.add_argument("--perplexity", type=_positive_float, default=30.0,
                   help="t-SNE perplexity (default 30; clamped to (images - 1) / 3)")
    e.add_argument("--canvas", type=_positive_int, default=1600, help="side of the t-SNE picture (default 1600)")
    e.add_argument("--thumb", type=_positive_int, help="thumbnail side on the t-SNE map (default: from the count)")
    e.add_argument("--top", type=_positive_int, default=16, help="how many patches (default 16)")
    e.add_argument("--pool", choices=["avg", "max"], default="avg", help="global pooling into codes (default avg)")
    common_options(e)
    e.set_defaults(func=cmd_embed)

    g = sub.add_parser("invert-grid", help="one photo reconstructed from several layers side by side "
                                           "(decoders where shipped, optimisation otherwise)")
    g.add_argument("image", help="the photo")
    g.add_argument("--layers", default="relu2_1,relu3_1,relu4_1,relu5_1",
                   help="comma-separated VGG19 layers (default relu2_1,relu3_1,relu4_1,relu5_1)")
    g.add_argument("--method", choices=["auto", "decoder", "optimize"], default="auto",
                   help="auto: the shipped decoder where there is one, else optimisation (default); decoder; "
                        "optimize: Mahendran-Vedaldi for every layer (minutes per layer)")
    g.add_argument("--size", type=_side_int, default=256, help="photo's long side in pixels (default 256)")
    g.add_argument("--iterations", type=_positive_int, help="optimisation: steps of the first stage (default 300)")
    common_options(g)
    g.set_defaults(func=cmd_invert_grid)

    h = sub.add_parser("gallery", help="one self-contained HTML page with every visualisation of one photo")
    h.add_argument("image", help="the photo")
    h.add_argument("--fast", action="store_true", help="tiny sizes and few steps (seconds, not minutes)")
    h.add_argument("--folder", help="other images for the embedding section (default: the photo's folder, "
                                    "else scikit-image's sample photos)")
    h.add_argument("--size", type=_side_int, help="working size of the photo (default 224; 64 with --fast)")
    h.add_argument("--classifier", metavar="MODEL", default="efficientnet_lite0",
                   help="the classifier of the class-based sections, whose attributions explain its top class: "
                        "efficientnet_lite0 (default, ImageNet), a torchvision name (vgg16, resnet18, ...) with "
                        "--weights, a percept classifier file (.pt), or none (the sections then explain VGG19 "
                        "channels or are left out)")
    h.add_argument("--weights", metavar="FILE", help="the classifier's local weight file (state dict)")
    h.add_argument("--only", metavar="SECTIONS",
                   help="comma-separated sections to render (default all): filters, activations, maximize, dream, "
                        "saliency, guided-backprop, deconvnet, gradcam, occlusion, classviz, fool, embed, texture, "
                        "invert")
    common_options(h, out_help="output folder for index.html")
    h.set_defaults(func=cmd_gallery)
