"""``percept train-style``, ``train-decoder``, ``train-linear`` and ``distill``: training jobs (each a task of
:func:`percept.training` 's one loop); their options are built from the config dataclasses of
:mod:`percept.training.configs`.
"""

from __future__ import annotations

import argparse

from percept.argtypes import add_quiet, config_from_args, config_option
from percept.argtypes import nonneg_float as _nonneg_float
from percept.argtypes import nonneg_int as _nonneg_int
from percept.argtypes import positive_float as _positive_float
from percept.argtypes import positive_int as _positive_int
from percept.argtypes import side_int as _side_int
from percept.argtypes import unit_float as _unit_float
from percept.cli.common import OUT_HELP, channels_list, out_folder
from percept.errors import PerceptError
from percept.training.configs import DecoderTrainConfig, DistillConfig, LinearTrainConfig, StyleTrainConfig


def cmd_train_style(args: argparse.Namespace) -> int:
    from percept.training.style import train_style

    cfg = config_from_args(StyleTrainConfig, args, out=out_folder(args))
    if cfg.teacher:
        from percept.training.fast import TEACHER_INIT, train_style_from_teacher

        if args.resume:
            raise PerceptError("--resume continues a run from scratch; a --teacher run is short: start it again")
        if cfg.init:
            raise PerceptError(TEACHER_INIT)
        from percept.inference.anystyle import Teacher

        teacher = Teacher(cfg.teacher, cfg.style, cfg.device)
        path = train_style_from_teacher(cfg, teacher, teacher.card, progress=not args.quiet)
    else:
        path = train_style(cfg, resume=args.resume, progress=not args.quiet)
    print(f"model written to {path} (card: {path.with_suffix('.json')})")
    return 0


def cmd_train_decoder(args: argparse.Namespace) -> int:
    from percept.training.decoder import train_decoder

    cfg = config_from_args(DecoderTrainConfig, args, out=out_folder(args))
    path = train_decoder(cfg, resume=args.resume, progress=not args.quiet)
    print(f"decoder written to {path} (card: {path.with_suffix('.json')})")
    return 0


def cmd_train_linear(args: argparse.Namespace) -> int:
    from percept.training.linear import train_linear

    cfg = config_from_args(LinearTrainConfig, args, out=out_folder(args))
    path = train_linear(cfg, resume=args.resume, progress=not args.quiet)
    print(f"linear style model written to {path} (card: {path.with_suffix('.json')}); use it with "
          f"`percept stylize PHOTO --style PAINTING --method linear`")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from percept.training.distill import distill_style

    path = distill_style(config_from_args(DistillConfig, args, out=out_folder(args)), progress=not args.quiet)
    print(f"model written to {path} (card: {path.with_suffix('.json')})")
    return 0


def _training_run_options(p: argparse.ArgumentParser, cfg: type, time_limit_help: str) -> None:
    """Options every training command shares (held-out previews, checkpoints, time limit, resume, ...),
    their defaults from the run's config dataclass."""
    config_option(p, cfg, "holdout_every", type=int, help="hold out every Nth photo for previews (0: none)")
    config_option(p, cfg, "checkpoint_every", type=_positive_int)
    config_option(p, cfg, "time_limit", type=_positive_float, metavar="MINUTES", help=time_limit_help)
    config_option(p, cfg, "workers", type=_nonneg_int, help="data-loading processes (default 0 on a CPU, 4 on a GPU)")
    config_option(p, cfg, "logdir", help="TensorBoard folder (default OUT/tb/NAME)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/NAME.train.pt")
    config_option(p, cfg, "device", help="auto, cpu or cuda")
    config_option(p, cfg, "amp", "--precision", type=_train_precision, metavar="{auto,fp32,bf16}",
                  help="the step's arithmetic: bf16 autocast or fp32 (default auto: bf16 on CPUs with "
                       "AVX512-BF16 or AMX and on GPUs from batch 8, where it is faster; fp32 elsewhere)")
    config_option(p, cfg, "seed", type=int)
    add_quiet(p)


def _train_precision(text: str) -> bool | None:
    choices = {"auto": None, "fp32": False, "bf16": True}
    if text not in choices:
        raise argparse.ArgumentTypeError(f"invalid choice: '{text}' (choose from auto, fp32, bf16)")
    return choices[text]


def _architecture_options(p: argparse.ArgumentParser, cfg: type) -> None:
    from percept.models.specs import ARCH_DEFAULTS

    per_arch = "; ".join(f"{a} {','.join(map(str, d['channels']))} x{d['n_residual']}" for a, d in ARCH_DEFAULTS.items())
    config_option(p, cfg, "arch", choices=list(ARCH_DEFAULTS),
                  help="johnson: the paper's network; rt: the real-time CPU network")
    config_option(p, cfg, "channels", type=channels_list, help=f"encoder widths (default: the architecture's: {per_arch})")
    config_option(p, cfg, "n_residual", "--residual-blocks", type=_positive_int, help="residual blocks (default: the architecture's)")


def _register_train_style(sub) -> None:
    cfg: type = StyleTrainConfig
    t = sub.add_parser("train-style", help="train a feed-forward style network (Johnson et al. 2016)")
    config_option(t, cfg, "style", required=True, help="the style image (a painting)")
    config_option(t, cfg, "data", required=True, help="folder of training photos")
    config_option(t, cfg, "out", help=OUT_HELP + ", NAME.train.pt, tb/")
    config_option(t, cfg, "name", help="model name (default: the style file's stem)")
    config_option(t, cfg, "image_size", type=_side_int, help="training crop size (paper 256)")
    config_option(t, cfg, "batch_size", type=_positive_int, help="(paper 4)")
    config_option(t, cfg, "iterations", type=_positive_int, help="(paper 40000)")
    config_option(t, cfg, "lr", type=_nonneg_float, help="Adam learning rate")
    config_option(t, cfg, "content_weight", type=_nonneg_float)
    config_option(t, cfg, "style_weight", type=_nonneg_float,
                  help="(default: 10, the shipped models'; with --teacher, it starts at the weight that balances the "
                       "style and content gradients at the distilled network and is raised while the content loss "
                       "stays under 0.7; recorded in the card)")
    config_option(t, cfg, "content_target", type=_positive_float, metavar="C",
                  help="steer the style weight up or down during the run so that the content loss settles at C "
                       "(relative relu4_2 error; the shipped rt models sit at 0.6-1.0); default: a fixed weight")
    config_option(t, cfg, "tv_weight", type=_nonneg_float)
    config_option(t, cfg, "style_size", type=_positive_int, help="style image long side")
    _architecture_options(t, cfg)
    config_option(t, cfg, "output", choices=["sigmoid", "residual"],
                  help="sigmoid: sigmoid(f(photo)); residual: sigmoid(logit(photo) + f(photo)), starts as the identity")
    config_option(t, cfg, "teacher", choices=["linear", "wct", "adain"],
                  help="distil the network from this arbitrary-style method's pictures of the painting first (no "
                       "loss network: fast), then fine-tune it with the perceptual losses: a new painting in "
                       "minutes on a CPU (with --time-limit, the two phases share it)")
    config_option(t, cfg, "init", metavar="MODEL",
                  help="start from a trained model of the same architecture (name or .pt), e.g. a distilled rt model")
    config_option(t, cfg, "temporal_weight", type=_nonneg_float,
                  help="compound temporal regulariser (Wang et al. 2020): stable strokes under small motion and "
                       "noise, for video; needs no video data (0: off; e.g. 2 to fine-tune a model with --init)")
    _training_run_options(t, cfg, "stop after this many minutes and save the model (--resume continues it)")
    t.set_defaults(func=cmd_train_style)


def _register_train_decoder(sub) -> None:
    cfg = DecoderTrainConfig
    td = sub.add_parser("train-decoder", help="train a feature-inversion decoder for a VGG19 layer "
                                              "(Dosovitskiy & Brox 2016)")
    config_option(td, cfg, "layer", required=True, help="the VGG19 layer to invert, e.g. relu3_1 (relu*/pool* layers)")
    config_option(td, cfg, "data", required=True, help="folder of training photos")
    config_option(td, cfg, "out", help=OUT_HELP + ", NAME.train.pt, tb/")
    config_option(td, cfg, "name", help="model name (default decoder_LAYER)")
    config_option(td, cfg, "loss", choices=["pixel", "pixel+feature", "adain"],
                  help="pixel: MSE (CVPR 2016); pixel+feature: plus the relative feature error at the layer "
                       "(NeurIPS 2016), sharper at deep layers; adain: AdaIN's decoder (Huang & Belongie 2017: "
                       "content + style loss on AdaIN'd features; needs --styles, best with --init)")
    config_option(td, cfg, "feature_weight", type=_nonneg_float, help="weight of the feature term")
    config_option(td, cfg, "styles", action="append", metavar="FOLDER",
                  help="--loss adain: a folder of style images (repeat for several; each folder equally likely)")
    config_option(td, cfg, "style_weight", type=_nonneg_float, help="--loss adain: weight of the style term")
    config_option(td, cfg, "style_layers", nargs="+", metavar="LAYER",
                  help="--loss adain: the layers of the style term (default relu1_1 up to --layer)")
    config_option(td, cfg, "gram_weight", type=_nonneg_float,
                  help="--loss adain: weight of a Gram-matrix style term on the same layers (default 0: none)")
    config_option(td, cfg, "permute_colors", type=float,
                  help="--loss adain: probability of permuting a style crop's colour channels")
    config_option(td, cfg, "init", help="start from this decoder's weights (name or .pt; its architecture), e.g. "
                                        "decoder_relu4_1 for --loss adain")
    config_option(td, cfg, "image_size", type=_side_int, help="training crop size, a multiple of the layer's stride")
    config_option(td, cfg, "batch_size", type=_positive_int)
    config_option(td, cfg, "iterations", type=_positive_int)
    config_option(td, cfg, "lr", type=_nonneg_float, help="Adam, cosine decay to --lr-final")
    config_option(td, cfg, "lr_final", type=_nonneg_float)
    config_option(td, cfg, "width", type=_nonneg_int,
                  help="channels at the feature resolution (default min(C, 256)); 0: --linear")
    config_option(td, cfg, "width", "--linear", action="store_const", const=0,
                  help="a linear decoder (one 3x3 convolution, relu1_1/relu1_2 only), solved in closed form by "
                       "least squares over --iterations crops instead of trained (seconds; --blocks 0)")
    config_option(td, cfg, "n_blocks", "--blocks", type=_nonneg_int, help="residual blocks before upsampling (default 2, or the --init decoder's)")
    _training_run_options(td, cfg, "stop after this many minutes and save the decoder (the LR schedule fits in it)")
    td.set_defaults(func=cmd_train_decoder)


def _register_train_linear(sub) -> None:
    cfg = LinearTrainConfig
    tl = sub.add_parser("train-linear", help="train the linear style transform for any painting (Li et al. 2019; "
                                             "encoder and decoder frozen)")
    config_option(tl, cfg, "data", required=True, help="folder of training photos")
    config_option(tl, cfg, "styles", required=True, action="append", metavar="FOLDER",
                  help="folder of style images (paintings; photos work too); repeat for several, each folder "
                       "drawn equally often")
    config_option(tl, cfg, "out", help=OUT_HELP + ", NAME.train.pt, tb/")
    config_option(tl, cfg, "name", help="model name")
    config_option(tl, cfg, "decoder", metavar="MODEL", help="the frozen decoder (name or .pt); its layer is the transform's")
    config_option(tl, cfg, "rank", type=_positive_int, help="channels of the compressed features")
    config_option(tl, cfg, "image_size", type=_side_int, help="training crop size (photo and painting)")
    config_option(tl, cfg, "batch_size", type=_positive_int)
    config_option(tl, cfg, "iterations", type=_positive_int)
    config_option(tl, cfg, "lr", type=_nonneg_float, help="Adam learning rate")
    config_option(tl, cfg, "content_weight", type=_nonneg_float)
    config_option(tl, cfg, "style_weight", type=_nonneg_float)
    config_option(tl, cfg, "permute_colors", type=_unit_float, help="chance that a painting's colour channels are "
                                                                     "shuffled (new palettes)")
    _training_run_options(tl, cfg, "stop after this many minutes and save the model (--resume continues it)")
    tl.set_defaults(func=cmd_train_linear)


def _register_distill(sub) -> None:
    cfg = DistillConfig
    ds = sub.add_parser("distill", help="train a fast network to reproduce a trained one (no loss network)")
    config_option(ds, cfg, "teacher", required=True, help="the trained model to imitate (name or .pt)")
    config_option(ds, cfg, "data", required=True, help="folder of training photos")
    config_option(ds, cfg, "out", help=OUT_HELP + ", tb/")
    config_option(ds, cfg, "name", help="default: TEACHER_ARCH")
    _architecture_options(ds, cfg)
    config_option(ds, cfg, "image_size", type=_side_int)
    config_option(ds, cfg, "pairs", type=_positive_int, help="teacher-stylised crops")
    config_option(ds, cfg, "batch_size", type=_positive_int)
    config_option(ds, cfg, "iterations", type=_positive_int)
    config_option(ds, cfg, "lr", type=_nonneg_float)
    config_option(ds, cfg, "temporal_weight", type=_nonneg_float,
                  help="compound temporal regulariser (see train-style --temporal-weight; 0: off)")
    config_option(ds, cfg, "time_limit", type=_positive_float, metavar="MINUTES",
                  help="stop after this many minutes, the teacher's pictures included (the LR schedule fits in it)")
    config_option(ds, cfg, "logdir")
    config_option(ds, cfg, "device")
    config_option(ds, cfg, "seed", type=int)
    add_quiet(ds)
    ds.set_defaults(func=cmd_distill)


def register(sub) -> None:
    """Add this job's subcommands to the ``percept`` parser."""
    _register_train_style(sub)
    _register_train_decoder(sub)
    _register_train_linear(sub)
    _register_distill(sub)
