"""``percept invert`` and ``percept viz ...``: looking inside networks (feature inversion, the visualisation tools);
their options are built from the dataclasses of :mod:`percept.visualize.options`.
"""

from __future__ import annotations

import argparse

from percept.argtypes import add_options, add_quiet, config_from_args
from percept.errors import PerceptError
from percept.visualize.options import InvertOptions


def cmd_invert(args: argparse.Namespace) -> int:
    from percept.images import check_output_path, load_image, resize_long_side, save_image, to_tensor
    from percept.inference.invert import Inverter, crop_to_stride
    from percept.models.decoder import check_decoder_layer
    from percept.models.vgg import LossNetwork, layer_stride

    o = config_from_args(InvertOptions, args)
    out = check_output_path(o.output)
    if o.method == "optimize":
        from percept.models.vgg import check_layers

        check_layers([o.layer])
        if o.model:
            raise PerceptError("--model is a decoder; --method optimize does not use one")
    else:
        check_decoder_layer(o.layer)
    photo = resize_long_side(load_image(o.image), o.size)
    x = crop_to_stride(to_tensor(photo), layer_stride(o.layer))
    from percept.visualize.inversion import feature_space_error, image_space_error, invert_optimize

    if o.method == "decoder":
        inv = Inverter(o.layer, o.model, device=o.device)
        res = inv(photo)
        image, y, seconds, net = res.image, res.tensor, res.seconds, inv.net
    else:
        net = LossNetwork(o.layer)
        opt = invert_optimize(x, o.layer, iterations=o.iterations, net=net, device=o.device,
                              seed=o.seed, progress=not args.quiet)
        image, y, seconds = opt.image, opt.tensor, opt.seconds
    save_image(image, out)
    img_err = image_space_error(y, x)
    feat_err = feature_space_error(net, y, x, o.layer)
    print(f"wrote {out} ({o.layer}, {o.method}, {x.shape[3]}x{x.shape[2]}): image-space error {img_err:.4f}, "
          f"feature-space error {feat_err:.4f}, {seconds:.3f} s")
    return 0


def _register_invert(sub) -> None:
    iv = sub.add_parser("invert", help="reconstruct a photo from one VGG19 layer's features "
                                       "(decoder: Dosovitskiy & Brox; optimize: Mahendran & Vedaldi)")
    add_options(iv, InvertOptions)
    add_quiet(iv)
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
