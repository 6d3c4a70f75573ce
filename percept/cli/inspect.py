"""``percept invert`` and ``percept viz ...``: looking inside networks (feature inversion, the visualisation tools).
"""

from __future__ import annotations

import argparse

from percept.argtypes import positive_int as _positive_int
from percept.argtypes import side_int as _side_int
from percept.errors import PerceptError


def cmd_invert(args: argparse.Namespace) -> int:
    from percept.images import check_output_path, load_image, resize_long_side, save_image, to_tensor
    from percept.inference.invert import Inverter, crop_to_stride
    from percept.models.decoder import check_decoder_layer
    from percept.models.vgg import LossNetwork, layer_stride

    out = check_output_path(args.output)
    if args.method == "optimize":
        from percept.models.vgg import check_layers

        check_layers([args.layer])
        if args.model:
            raise PerceptError("--model is a decoder; --method optimize does not use one")
    else:
        check_decoder_layer(args.layer)
    photo = resize_long_side(load_image(args.image), args.size)
    x = crop_to_stride(to_tensor(photo), layer_stride(args.layer))
    from percept.visualize.inversion import feature_space_error, image_space_error, invert_optimize

    if args.method == "decoder":
        inv = Inverter(args.layer, args.model, device=args.device)
        res = inv(photo)
        image, y, seconds, net = res.image, res.tensor, res.seconds, inv.net
    else:
        net = LossNetwork(args.layer)
        opt = invert_optimize(x, args.layer, iterations=args.iterations, net=net, device=args.device,
                              seed=args.seed, progress=not args.quiet)
        image, y, seconds = opt.image, opt.tensor, opt.seconds
    save_image(image, out)
    img_err = image_space_error(y, x)
    feat_err = feature_space_error(net, y, x, args.layer)
    print(f"wrote {out} ({args.layer}, {args.method}, {x.shape[3]}x{x.shape[2]}): image-space error {img_err:.4f}, "
          f"feature-space error {feat_err:.4f}, {seconds:.3f} s")
    return 0


def _register_invert(sub) -> None:
    iv = sub.add_parser("invert", help="reconstruct a photo from one VGG19 layer's features "
                                       "(decoder: Dosovitskiy & Brox; optimize: Mahendran & Vedaldi)")
    iv.add_argument("image", help="the photo")
    iv.add_argument("--layer", required=True, help="VGG19 layer, e.g. relu3_1")
    iv.add_argument("--method", choices=["decoder", "optimize"], default="decoder",
                    help="decoder: one pass of a trained decoder (default); optimize: Mahendran-Vedaldi optimisation")
    iv.add_argument("-o", "--output", required=True, help="the reconstruction (.png, .jpg, ...)")
    iv.add_argument("--model", help="decoder .pt (default: the shipped decoder_LAYER)")
    iv.add_argument("--size", type=_side_int, default=256, help="photo's long side in pixels (default 256)")
    iv.add_argument("--iterations", type=_positive_int, help="optimize: steps of the first stage (default 300)")
    iv.add_argument("--device", default="auto", help="auto, cpu or cuda")
    iv.add_argument("--seed", type=int, default=0, help="optimize: seeds the initial noise and the jitter")
    iv.add_argument("--quiet", action="store_true", help="no progress bar")
    iv.set_defaults(func=cmd_invert)


def _register_viz(sub) -> None:
    vz = sub.add_parser("viz", help="look inside networks: filters, activations, attribution, DeepDream, ...")
    vsub = vz.add_subparsers(dest="technique", metavar="TECHNIQUE", required=True)
    from percept.visualize.commands import add_viz_commands

    add_viz_commands(vsub)


def register(sub) -> None:
    """Add this job's subcommands to the ``percept`` parser."""
    _register_invert(sub)
    _register_viz(sub)
