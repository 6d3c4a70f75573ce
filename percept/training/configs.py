"""The settings of every training run, as dataclasses that import no torch: the command line builds
its options from them (each default declared once) without paying for torch at start-up, and the
model cards record them. The runs themselves are the tasks of :func:`percept.training.loop.fit`: per-style
networks (``style``, Johnson et al. 2016), feature decoders (``decoder``, Dosovitskiy & Brox 2016), the
linear style transform (``linear``, Li et al. 2019) and distillation (``distill``, Hinton et al. 2015)."""

from __future__ import annotations

from dataclasses import dataclass, field

from percept.errors import PerceptError
from percept.models.specs import arch_default

__all__ = ["RunOptions", "LoopOptions", "StyleTrainConfig", "DecoderTrainConfig", "DistillConfig", "LinearTrainConfig",
           "fill_arch_defaults"]


def _content_layers() -> list[str]:
    from percept.models.losses import DEFAULT_CONTENT_LAYERS

    return list(DEFAULT_CONTENT_LAYERS)


def _style_layers() -> list[str]:
    from percept.models.losses import DEFAULT_STYLE_LAYERS

    return list(DEFAULT_STYLE_LAYERS)


@dataclass(kw_only=True)
class RunOptions:
    """How a run goes, whatever it trains: seeding, the held-out split, logging and the device.
    Keyword-only, so each run's own config keeps its required fields first."""

    seed: int = 0
    holdout_every: int = 10
    logdir: str | None = None
    device: str = "auto"


@dataclass(kw_only=True)
class LoopOptions(RunOptions):
    """:class:`RunOptions` plus what a :func:`percept.training.loop.fit` run needs: checkpoints, logging cadence,
    data-loading workers, mixed precision and a wall-clock budget."""

    checkpoint_every: int = 100
    log_every: int = 10
    preview_every: int = 100
    workers: int | None = None
    amp: bool | None = None
    """bf16 autocast (``--precision bf16``), fp32 (``fp32``) or None (``auto``): the run's own default, bf16
    where it is faster (style training: on CPUs with native bf16 and on GPUs from batch 8)."""
    time_limit: float | None = None
    """Stop after this many minutes of training in this call (the model is saved as if finished;
    ``--resume`` with the same or more ``iterations`` continues it)."""


def fill_arch_defaults(cfg) -> None:
    """A style network config's ``channels`` / ``n_residual`` left as None become its architecture's
    (:data:`percept.models.transformer.ARCH_DEFAULTS`); an unknown ``arch`` is a one-line error."""
    try:
        cfg.channels = list(cfg.channels or arch_default(cfg.arch, "channels"))
        cfg.n_residual = cfg.n_residual or arch_default(cfg.arch, "n_residual")
    except ValueError as exc:
        raise PerceptError(str(exc)) from None


DEFAULT_STYLE_WEIGHT = 10.0
"""The style weight the shipped style models were trained with (content weight 1)."""


CONTENT_TARGET = 0.7
"""The content loss (relative relu4_2 error, as :class:`percept.evaluation.StyleMetric` measures it) a new
painting's network is steered to when the user gives no style weight (``train-style --teacher``). It lies in
the range of the four shipped real-time models, at its scene-keeping end: a new painting keeps its photo's
layout at least as well as three of the four shipped models do. Their content loss on 16 training crops at
192 px (the default crop): the_scream_rt 0.59, wave_rt 0.77, composition_vii_rt 0.87, starry_night_rt 0.96;
at 256 px 5-9% higher; on the held-out photos at 512 px within 0.06 of the 256 px values."""


@dataclass
class StyleTrainConfig(LoopOptions):
    """Every hyper-parameter of a style training run (all of it goes into the model card); the run
    options (seed, device, checkpoints, ``amp``, ``time_limit``, ...) come from :class:`LoopOptions`."""

    style: str
    data: str
    out: str
    name: str | None = None
    image_size: int = 192
    batch_size: int = 2
    iterations: int = 2000
    lr: float = 2e-3
    content_weight: float = 1.0
    style_weight: float | None = None
    """None: :data:`DEFAULT_STYLE_WEIGHT` (the shipped models'), or with ``teacher`` the weight that balances
    the style and content gradients at the distilled network (:func:`percept.training.fast.balanced_style_weight`)."""
    tv_weight: float = 10.0
    style_size: int = 512
    content_layers: list[str] = field(default_factory=_content_layers)
    style_layers: list[str] = field(default_factory=_style_layers)
    channels: list[int] | None = None
    """Encoder widths; None: the architecture's (:data:`percept.models.transformer.ARCH_DEFAULTS`)."""
    n_residual: int | None = None
    """Residual blocks; None: the architecture's."""
    output: str = "sigmoid"
    arch: str = "johnson"
    channels_last: bool | None = None
    """None: channels_last on the CPU, NCHW on a GPU (see :func:`step_precision`). ``amp`` None:
    bf16 autocast on a GPU at batch >= 8 and on CPUs with AVX512-BF16 or AMX, fp32 (TF32) elsewhere."""
    init: str | None = None
    """Start from this trained model's weights (same architecture) instead of a random init."""
    teacher: str | None = None
    """``linear``, ``wct`` or ``adain``: first distil the network from that arbitrary-style method's pictures of
    the painting (no loss network: fast), then fine-tune it with the perceptual losses
    (:mod:`percept.training.fast`). None: train from scratch (or ``init``)."""
    temporal_weight: float = 0.0
    """Weight of the compound temporal regulariser (Wang et al. 2020; :mod:`percept.training.temporal`):
    stable output under small motion and noise, for video. 0: off."""
    content_target: float | None = None
    """Adapt the style weight during the run so that the content loss settles at this value
    (:class:`percept.training.style.StyleWeightController`); None: a fixed weight. The ``teacher`` route
    uses :data:`CONTENT_TARGET` when neither this nor ``style_weight`` is given."""
    style_weight_min: float | None = None
    """With ``content_target``: the steered weight never goes below this (the ``teacher`` route: the balanced
    weight it starts at, so the target only ever adds style); None: 0.5."""


    def __post_init__(self) -> None:
        fill_arch_defaults(self)


@dataclass
class DecoderTrainConfig(LoopOptions):
    """Every hyper-parameter of a decoder training run (all of it goes into the model card); the run
    options (seed, device, checkpoints, ``amp`` - None: bf16 autocast on a GPU, fp32 on the CPU -,
    ``time_limit``, ...) come from :class:`LoopOptions`."""

    layer: str
    data: str
    out: str
    name: str | None = None
    loss: str = "pixel"
    feature_weight: float = 0.01
    image_size: int = 128
    batch_size: int = 8
    iterations: int = 2000
    lr: float = 1e-3
    lr_final: float = 1e-4
    """The learning rate decays (cosine) from ``lr`` to this over ``iterations`` (or over
    ``time_limit``, when that runs out first)."""
    width: int | None = None
    """Channels at the feature resolution; None: ``min(C, 256)``, or the ``init`` decoder's; 0: the linear
    decoder."""
    n_blocks: int | None = None
    """Residual blocks before upsampling; None: 2, or the ``init`` decoder's."""
    styles: list[str] | None = None
    """``loss="adain"``: folders of style images (a folder drawn first, each equally likely, then an image)."""
    style_weight: float = 1.0
    """``loss="adain"``: weight of the style term (channel means and standard deviations at relu1_1 up to the
    layer, each relative to the style's) against the content term (the features against the AdaIN target,
    relative)."""
    style_layers: list[str] | None = None
    """``loss="adain"``: the layers of the style term; None: relu1_1 up to the layer (Huang & Belongie's
    relu1_1..relu4_1 at relu4_1). Deeper ones (relu5_1) ask the decoder for the painting's larger motifs too."""
    gram_weight: float = 0.0
    """``loss="adain"``: weight of a Gram-matrix term on the same style layers (Gatys et al.'s style loss, each
    layer relative to the style's Gram matrix: the project's :class:`percept.models.losses.StyleLoss`, per
    sample), added to the mean/std term. Means and standard deviations leave out the channels' correlations,
    which the Gram matrices (and so ``StyleMetric``) count."""
    permute_colors: float = 0.5
    """``loss="adain"``: probability that a style crop's colour channels are permuted (a new palette)."""
    init: str | None = None
    """Start from this decoder's weights (a model name or ``.pt``; same layer and architecture), e.g. the
    reconstruction decoder before AdaIN training."""


@dataclass
class DistillConfig(RunOptions):
    """Every setting of a distillation run (all of it goes into the model card); seed, held-out split,
    log folder and device come from :class:`RunOptions`."""

    teacher: str
    data: str
    out: str
    name: str | None = None
    arch: str = "rt"
    channels: list[int] | None = None
    """Student widths; None: the architecture's (:data:`percept.models.transformer.ARCH_DEFAULTS`)."""
    n_residual: int | None = None
    image_size: int = 256
    pairs: int = 384
    batch_size: int = 8
    iterations: int = 1000
    lr: float = 3e-3
    temporal_weight: float = 0.0
    """Weight of the compound temporal regulariser (see :class:`StyleTrainConfig`). 0: off."""
    time_limit: float | None = None
    """Stop after this many minutes (teacher pictures included); the LR schedule fits in it."""

    def __post_init__(self) -> None:
        fill_arch_defaults(self)


@dataclass
class LinearTrainConfig(LoopOptions):
    """Every setting of a linear-transform training run (all of it goes into the model card)."""

    data: str
    styles: list[str]
    out: str
    name: str = "linear_relu3_1"
    decoder: str = "decoder_relu3_1"
    """The frozen decoder (model name or ``.pt``); its layer is the transform's."""
    rank: int = 32
    """Channels of the compressed features the matrix acts on (Li et al.'s 32)."""
    image_size: int = 192
    batch_size: int = 4
    iterations: int = 4000
    lr: float = 1e-3
    content_weight: float = 1.0
    style_weight: float = 10.0
    content_layers: list[str] = field(default_factory=_content_layers)
    style_layers: list[str] = field(default_factory=_style_layers)
    permute_colors: float = 0.5
    """Probability that a painting's colour channels are permuted (a new palette)."""
