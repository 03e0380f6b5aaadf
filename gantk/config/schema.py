"""The config's schema: the engine's sections as dataclasses, the ranges numeric fields accept, and the
path marker for fields that name files.

A plugin subclasses :class:`Config` to add its own sections (``model``, ``loss``) and may widen ``data``
with extra fields; :mod:`gantk.config.validate` checks every value against these types.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

# --------------------------------------------------------------------------------------------------
# Ranges: every numeric field says which values it accepts, checked when the config is built
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """The values a numeric field accepts, attached as ``Annotated[int, Range(1)]``.

    Checking the range when the config is built means a value that would make training hang, diverge
    silently or crash hours in (a batch of -1, a negative warm-up, a decay of 2) is refused before any
    work starts, in one paragraph naming the field.
    """

    lo: float | None = None
    hi: float | None = None
    hi_open: bool = False  # hi itself is excluded (betas < 1)
    lo_open: bool = False  # lo itself is excluded (gamma > 0)

    def __contains__(self, value: float) -> bool:
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return False
        return not (self.hi is not None and (value > self.hi or (self.hi_open and value == self.hi)))

    def describe(self) -> str:
        low = None if self.lo is None else f"{'>' if self.lo_open else '>='} {self.lo}"
        high = None if self.hi is None else f"{'<' if self.hi_open else '<='} {self.hi}"
        return " and ".join(x for x in (low, high) if x) or "any value"


#: sizes and counts that must be at least 1 (a batch, a log interval)
PositiveInt = Annotated[int, Range(1)]
#: counts, steps and intervals where 0 means "none" or "off"
Count = Annotated[int, Range(0)]
#: a network's width or depth: at least 1, and short of sizes no machine holds (the memory check is separate)
Width = Annotated[int, Range(1, 1 << 16)]
#: an image side in pixels
Side = Annotated[int, Range(1, 1 << 15)]
#: an image's size: one side for a square, or ``[height, width]`` (fully convolutional plugins: pix2pix, CycleGAN)
ImageSize = Side | tuple[Side, Side]
#: weights of loss terms, noise levels, learning rates: zero or more
NonNegative = Annotated[float, Range(0)]
#: a probability or a mixing weight in [0, 1]
Unit = Annotated[float, Range(0, 1)]
#: Adam's betas, momentum: [0, 1)
Beta = Annotated[float, Range(0, 1, hi_open=True)]
#: a seed every random generator gantk seeds takes (torch, numpy modulo 2**32, python)
Seed = Annotated[int, Range(0, 2**63 - 1)]


class FilePath:
    """Marks a str field as a file or folder path (``Annotated[str, FilePath()]``, or :data:`PathStr`).

    A config read back from a checkpoint's ``config.json`` was written wherever training ran, so its
    relative paths were relative to that directory. :func:`rebase_paths` looks each one up beside the
    checkpoint first, which lets a checkpoint that ships with the files it names (a classifier folder
    next to it, ``../mnist-classifier``) work from any directory.
    """


#: a path-valued key: an eval classifier, a weights file, a transforms file
PathStr = Annotated[str, FilePath()]


# --------------------------------------------------------------------------------------------------
# The engine's sections
# --------------------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    """Which data to train on and how to shape it."""

    name: str = ""  # a registered dataset name (mnist, facades, att_faces) or a path
    kind: str = ""  # loader kind (image_folder, mnist, paired); empty: from the card or the folder
    # the size images are resized (covering it) and centre-cropped to: one side, or [height, width] for the
    # plugins whose networks take any shape (GanPlugin.any_aspect: pix2pix, CycleGAN)
    image_size: ImageSize = 64
    channels: Literal[0, 1, 3] = 0  # 1 grey, 3 RGB; 0: take it from the dataset (resolved before training)
    split: str = "train"
    limit: Count = 0  # use only the first N items (0: all); handy for smoke tests
    preload: Literal["auto", "always", "never"] = "auto"  # decode once into memory
    num_workers: Annotated[int, Range(0, 256)] = 0  # DataLoader workers when not preloaded
    # unreadable files and failing draws: stop naming the item, or skip (left out when the data is built;
    # a draw that fails later, by the next item that reads)
    on_error: Literal["raise", "skip"] = "raise"
    # an albumentations pipeline saved with A.save (YAML or JSON), applied on the CPU to every image as it
    # is drawn (pairs together); empty: none, and in-memory data is sliced a batch at a time
    transforms: PathStr = ""


@dataclass
class OptimConfig:
    """One optimizer; ``optim`` maps each trained network's name to one of these."""

    name: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: NonNegative = 2e-4
    betas: tuple[Beta, Beta] = (0.5, 0.999)
    weight_decay: NonNegative = 0.0
    momentum: Beta = 0.0  # sgd / rmsprop only


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, stepped once per generator step, the same for every optimizer."""

    name: Literal["constant", "linear_decay", "cosine", "step"] = "constant"
    warmup_steps: Count = 0  # linear warm-up from 0
    decay_start: Count = 0  # linear_decay: hold the rate until this step, then decay linearly to 0
    step_size: Count = 0  # step: multiply by gamma every step_size steps
    gamma: Annotated[float, Range(0, lo_open=True)] = 0.1


@dataclass
class EMAConfig:
    """Exponential moving average of the generator's weights (used for sampling when enabled)."""

    enabled: bool = False
    decay: Unit = 0.999
    start_step: Count = 0  # copy the weights as they are until this step
    # StyleGAN2's rule instead of decay when > 0: the average's half-life in thousands of images shown
    # (the paper: 10), so the horizon does not depend on the batch size
    half_life_kimg: Annotated[float, Range(0)] = 0.0
    # with half_life_kimg: the half-life is at most rampup x the images shown so far (NVlabs' ema_rampup,
    # 0.05 in its auto config), so the early average forgets the random initialisation fast; 0: off
    rampup: Annotated[float, Range(0)] = 0.0
    # batch norm: re-estimate the EMA generator's statistics from this many batches of its own samples
    # before it is used (gantk/engine/ema.py says why); 0 uses the raw generator's statistics
    calibration_batches: Count = 16


@dataclass
class AugmentConfig:
    """Differentiable augmentation of every image D sees, real and generated (gantk/engine/augment.py)."""

    # DiffAugment's transforms, applied in this order; empty: no augmentation
    policy: tuple[Literal["color", "translation", "cutout"], ...] = ()
    p: Unit = 1.0  # the probability of each transform per image; with adaptive, where p starts (ADA: 0)
    adaptive: bool = False  # ADA: steer p so that E[sign(D(real))] stays near target
    target: Unit = 0.6  # ADA's r_t target
    interval: PositiveInt = 4  # steps between two adjustments of p
    ada_kimg: Annotated[float, Range(0, lo_open=True)] = 500.0  # thousands of images for p to move by 1


@dataclass
class AlarmsConfig:
    """Training-health alarms (:mod:`gantk.engine.health`): read at log intervals, each raised once a run."""

    enabled: bool = True
    start: Count = 500  # steps before any alarm is looked at: a GAN's first steps are neither healthy nor sick
    # D wins outright: its mean logit on generated images under d_wins_logit (sigmoid(-6) = 0.25%: it gives
    # them almost no chance) for d_wins_steps steps in a row
    d_wins_logit: Annotated[float, Range(-100, 0)] = -6.0
    d_wins_steps: PositiveInt = 2000
    # G's loss explodes: an interval's mean over g_loss_factor x its lowest so far (and at least 10 above)
    g_loss_factor: Annotated[float, Range(1, lo_open=True)] = 10.0
    # samples collapse: their mean pairwise distance in a batch under this fraction of the real images'
    collapse_ratio: Unit = 0.1


#: where the logged numbers go: ``jsonl`` (metrics.jsonl) always, and each tracker listed (gantk/engine/trackers.py)
Tracker = Literal["jsonl", "tensorboard", "mlflow", "wandb"]


@dataclass
class TrainConfig:
    """How the engine runs the loop."""

    # the global batch: split evenly over the processes of a data-parallel run
    batch_size: Annotated[int, Range(1, 1 << 20)] = 64
    max_steps: Count = 10_000  # generator steps (one pass over a phase's updates is one step)
    seed: Seed = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = False
    # capture each training step once as a CUDA graph and replay it (gantk/engine/graph.py): "auto" is on
    # for one process on CUDA when the plugin's step allows it; "on" says why when it cannot be; "off"
    cuda_graph: Literal["auto", "on", "off"] = "auto"
    # torch.compile the networks for training: "default"; "reduce-overhead" and "max-autotune" (which also
    # searches kernels) add the engine's whole-step CUDA graph (train.cuda_graph) on CUDA; "off": eager
    compile: Literal["off", "default", "reduce-overhead", "max-autotune"] = "off"
    sync_batchnorm: bool = True  # data-parallel runs: batch-norm statistics over the global batch
    dist_timeout_s: PositiveInt = 1800  # how long a rank waits for the others (rank 0 evaluating alone included)
    deterministic: bool = False  # torch.use_deterministic_algorithms; slower, bit-exact resume on GPU
    grad_clip: NonNegative = 0.0  # max global grad norm per update; 0: off
    nonfinite: Literal["skip", "stop", "off"] = "skip"  # a NaN/inf loss: skip that update (counted), or stop
    log_every: PositiveInt = 50
    sample_every: Count = 500  # 0: no sample grids
    sample_count: Annotated[int, Range(1, 1024)] = 64  # images in each periodic sample grid
    eval_every: Count = 0  # 0: no periodic evaluation
    checkpoint_every: Count = 1000  # 0: only the final checkpoint (and checkpoint_minutes)
    # also save when this many minutes of training passed since the last checkpoint, so that a preempted
    # or killed job loses at most that much work; 0: by steps only
    checkpoint_minutes: NonNegative = 30.0
    keep_checkpoints: PositiveInt = 2  # newest step checkpoints kept (the best one is kept apart)
    best_metric: str = ""  # an evaluation metric name; empty: the plugin's default
    best_mode: Literal["min", "max"] = "min"
    # experiment trackers besides metrics.jsonl (always written): tensorboard, mlflow, wandb, each an optional
    # extra (pip install 'gantk[mlflow]'), refused before training when not installed; each gets the same
    # scalars, the config, sample grids and the final checkpoint (gantk/engine/trackers.py)
    loggers: list[Tracker] = field(default_factory=lambda: ["jsonl"])
    # also TensorBoard when it is installed (a warning when not), without listing it in train.loggers
    tensorboard: bool = True
    alarms: AlarmsConfig = field(default_factory=AlarmsConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class EvalConfig:
    """What the default evaluation of a sampling plugin reads (FID/KID, :mod:`gantk.metrics.fid`).

    A plugin with its own ``eval`` section subclasses this, so every plugin that samples keeps these keys.
    """

    # the FID Inception network's weights (weights-inception-2015-12-05-6726825d.pth, or .safetensors; see
    # docs/metrics.md); empty: FID, KID, precision and recall are skipped with a warning and only
    # kid_pixels is reported
    fid_weights: PathStr = ""
    # generated images per evaluation, and as many real; at least 4, for precision and recall's k = 3
    fid_samples: Annotated[int, Range(4, 1_000_000)] = 5000
    fid_cache: PathStr = ""  # folder of cached reference features; empty: ~/.cache/gantk/fid
    seed: Seed = 0  # the noise of every evaluation, and KID's subsets: evaluations differ only by the weights
    # also the Inception Score of the samples (10 splits): needs weights whose logits layer is trained (torch-
    # fidelity's file has it; a copy with fc.weight all zeros is refused); not comparable across datasets
    inception_score: bool = False


def _default_optim() -> dict[str, OptimConfig]:
    return {"G": OptimConfig(), "D": OptimConfig()}


@dataclass
class Config:
    """A full run configuration. Plugins subclass it to add ``model`` / ``loss`` sections."""

    plugin: str = ""  # filled in by the loader: the plugin's registered name
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: dict[str, OptimConfig] = field(default_factory=_default_optim)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def height_width(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``data.image_size`` (or ``data.load_size``) as ``(height, width)``: one side is a square."""
    if isinstance(size, (tuple, list)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def to_dict(cfg: Any) -> Any:
    """Dataclasses -> plain dicts/lists (tuples become lists), ready for YAML or JSON."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    return cfg
