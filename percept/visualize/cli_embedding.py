"""``percept viz embed | invert-grid | gallery``: argparse only (the options are built from the dataclasses of
:mod:`percept.visualize.options`); the work is imported when a command runs.

* ``embed FOLDER``: nearest neighbours by pixels vs CNN codes, a t-SNE map of CNN codes and a
  channel's maximally activating patches (:mod:`percept.visualize.embed`).
* ``invert-grid IMAGE``: the photo reconstructed from several layers side by side (decoders where
  shipped, Mahendran-Vedaldi optimisation otherwise).
* ``gallery IMAGE``: one self-contained HTML page with every technique for one photo
  (:mod:`percept.visualize.gallery`).
"""

from __future__ import annotations

import argparse

from percept.argtypes import config_from_args
from percept.visualize.commands import add_viz_options
from percept.visualize.options import EmbedOptions, GalleryOptions, InvertGridOptions


def cmd_embed(args: argparse.Namespace) -> int:
    from percept.visualize.embed import embed_images, save_embed

    o = config_from_args(EmbedOptions, args)
    res = embed_images(o.folder, layer=o.layer, channel=o.channel, k=o.k, queries=o.queries,
                       size=o.size, perplexity=o.perplexity, canvas=o.canvas, thumb=o.thumb,
                       top=o.top, pool=o.pool, device=o.device, seed=o.seed,
                       progress=not args.quiet)
    paths = save_embed(res, o.out)
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

    o = config_from_args(InvertGridOptions, args)
    sheet, cells = invert_grid(o.image, o.layers, method=o.method, size=o.size,
                               iterations=o.iterations, device=o.device, seed=o.seed,
                               progress=not args.quiet)
    for c in cells:
        print(f"{c.layer}: {c.method}, image-space error {c.image_error:.4f}, feature-space error "
              f"{c.feature_error:.4f}, {c.seconds:.2f} s")
    path = save_image(sheet, Path(o.out) / f"{Path(o.image).stem}_invert_grid.png")
    print(f"wrote {path}")
    return 0


def cmd_gallery(args: argparse.Namespace) -> int:
    from percept.visualize.gallery import build_gallery

    o = config_from_args(GalleryOptions, args)
    only = [k.strip() for k in o.only.split(",") if k.strip()] if o.only else None
    report = build_gallery(o.image, o.out, fast=o.fast, folder=o.folder, size=o.size,
                           classifier=o.classifier, classifier_weights=o.weights, device=o.device,
                           seed=o.seed, progress=not args.quiet, sections=only)
    failed = [s.title for s in report.sections if s.error]
    print(f"wrote {report.path} ({len(report.sections)} sections, {report.images} images, "
          f"{report.seconds:.1f} s{'; failed: ' + ', '.join(failed) if failed else ''})")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("embed", help="nearest neighbours (pixels vs CNN codes), t-SNE map and top patches "
                                     "for a folder of images")
    add_viz_options(e, EmbedOptions)
    e.set_defaults(func=cmd_embed)

    g = sub.add_parser("invert-grid", help="one photo reconstructed from several layers side by side "
                                           "(decoders where shipped, optimisation otherwise)")
    add_viz_options(g, InvertGridOptions)
    g.set_defaults(func=cmd_invert_grid)

    h = sub.add_parser("gallery", help="one self-contained HTML page with every visualisation of one photo")
    add_viz_options(h, GalleryOptions, out="output folder for index.html")
    h.set_defaults(func=cmd_gallery)
