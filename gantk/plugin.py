"""The plugin contract: what a GAN plugin provides, and what the engine gives it back.

A plugin is a subclass of :class:`GanPlugin` in a ``plugin.py`` with a ``defaults.yaml`` beside it.
It *describes* a GAN: its networks, its data, its losses and the rhythm of its updates. It never
contains a training loop; :class:`gantk.engine.Trainer` owns the loop, devices, precision,
checkpoints, logging and sampling for every plugin alike.

One training **step** is one pass over the current :class:`Phase`'s updates, on one batch that all of
them share (pix2pix's D and G see the same pair). Each :class:`Update` steps one optimizer on the sum of
the loss terms its ``loss`` function returns, ``repeat`` times; every repeat after the first draws a
fresh batch (WGAN's critic steps). One optimizer may step several networks together (contract 2).
That carries the rhythms gantk needs without engine changes::

    DCGAN      Phase("gan", [Update("D", d_loss), Update("G", g_loss, freeze=("D",))])
               (the same as Phase.alternating(d_loss, g_loss))
    WGAN-GP    Phase.alternating(critic_loss, g_loss, d_repeat=5)
    SRGAN      Phase("srresnet", [Update("G", pixel_loss)], steps=N), Phase("srgan", [...D..., ...G...])
    CycleGAN   Phase("gan", [Update(("G_AB", "G_BA"), g_loss, freeze=("D_A", "D_B"), optimizer="G"),
                             Update(("D_A", "D_B"), d_loss, optimizer="D")])
    InfoGAN    Phase("gan", [Update("D", d_loss), Update(("G", "Q"), g_and_info_loss, freeze=("D",),
                                                          optimizer="G")])

Extra generator losses (pix2pix L1, SRGAN content loss) are extra terms in the returned dict; conditional
inputs (labels, paired images) are extra keys in the batch.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import torch
from torch import Tensor, nn

from gantk.config import Config
from gantk.errors import ConfigError

T = TypeVar("T")

#: version of the plugin contract below; a plugin built for a newer contract is refused with a clear error.
#: 2 added updates over several networks (``Update(("G_AB", "G_BA"), ..., optimizer="G")``), named
#: generators per direction (``GanPlugin.directions``) and frozen auxiliary modules (``build_aux``);
#: a version-1 plugin uses none of them and loads unchanged. 3 added lazy updates (``Update(..., every=16)``)
#: and sampling options (``GanPlugin.sample_options``: ``gantk sample --truncation``, ``--style-mix``).
#: 4 made ``best_metric`` a method, added ``preview_inputs`` (training's sample grids) and gave
#: ``EvalContext`` the run folder and a cache the engine keeps for a run (no state kept on the plugin),
#: and hooks ``state_dict``/``load_state_dict``; a version-3 plugin that sets ``best_metric = "..."`` is
#: refused with the one-line fix
CONTRACT_VERSION = 4

#: the tasks a plugin can declare in ``GanPlugin.tasks``: from noise (or noise and a label), from an image,
#: a larger image from a smaller one
TASKS = ("sample", "translate", "upscale")

Batch = dict[str, Tensor]
Losses = dict[str, Tensor]


@dataclass
class StepContext:
    """What a loss function sees besides the batch.

    ``scratch`` lives for one step: a D update can leave the fake images there for the G update of
    the same step, so G runs forward once per step (as in pytorch/examples' DCGAN).

    Under data-parallel training the batch is this rank's share of the global batch. ``randn`` and
    ``rand`` take the first dimension of ``shape`` as that local batch: they draw the noise of the
    global batch and return this rank's slice, so a run's noise does not depend on the number of
    processes. ``cpu_noise`` (and PyTorch's global generator, which dropout uses) is seeded per rank.
    """

    nets: dict[str, nn.Module]
    device: torch.device
    step: int
    max_steps: int
    phase: str
    noise: torch.Generator  # the engine's training-noise generator on the device, saved with checkpoints
    # the same on the CPU, for work outside the training step; inside it, draw on the device with rand /
    # randn: a value drawn on the CPU is read on the host, and a captured step would repeat it
    cpu_noise: torch.Generator
    scratch: dict[str, Any] = field(default_factory=dict)
    rank: int = 0  # this process's rank and the number of processes (data-parallel training)
    world_size: int = 1
    # the number of steps done before this one, on the device. ``step`` is the same number on the host,
    # but a step captured as a CUDA graph sees the ``step`` of its capture on every replay: a loss whose
    # values change with the step (an annealed weight) computes them from ``step_tensor``
    step_tensor: Tensor | None = None
    # the engine's: train.augment's augmenter (ADA reads D's real logits through observe_real), and the
    # meter that ``log`` adds to
    augment: Any = None
    meter: Any = None
    # the plugin's frozen auxiliary modules (:meth:`GanPlugin.build_aux`), on the device in eval mode
    aux: dict[str, nn.Module] = field(default_factory=dict)

    def observe_real(self, logits: Tensor) -> None:
        """Report D's logits on real images (in the D update). ADA (``train.augment.adaptive``) raises its
        augmentation probability while their mean sign exceeds its target; without ADA this does nothing."""
        if self.augment is not None:
            self.augment.observe_real(logits)

    def log(self, name: str, value: Tensor) -> None:
        """Log a value that is not a loss term (``D/real_logit``): averaged over the log interval, on the
        device like the losses."""
        if self.meter is not None:
            self.meter.add(name, value.detach().float().mean(), None)

    def randn(self, *shape: int) -> Tensor:
        """Standard normal noise on the training device, from the checkpointed generator."""
        return self._draw(torch.randn, shape)

    def rand(self, *shape: int) -> Tensor:
        """Uniform [0, 1) noise on the training device, from the checkpointed generator."""
        return self._draw(torch.rand, shape)

    def _draw(self, fn: Callable[..., Tensor], shape: tuple[int, ...]) -> Tensor:
        return draw_for_rank(fn, shape, self.noise, self.device, self.rank, self.world_size)


def draw_for_rank(
    fn: Callable[..., Tensor],
    shape: tuple[int, ...],
    generator: torch.Generator,
    device: torch.device,
    rank: int = 0,
    world_size: int = 1,
) -> Tensor:
    """``fn`` (``torch.rand`` / ``torch.randn``) of ``shape``, whose first dimension is this rank's share of
    the global batch: drawn for every rank's share, then sliced, so the values do not depend on the number
    of processes."""
    if world_size == 1 or not shape:
        return fn(shape, generator=generator, device=device)
    n = shape[0]
    full = fn((n * world_size, *shape[1:]), generator=generator, device=device)
    return full[rank * n : (rank + 1) * n]


@dataclass
class EvalContext:
    """What :meth:`GanPlugin.evaluate` sees besides the networks."""

    device: torch.device
    step: int
    out_dir: Path  # the run's eval/ folder, for reports (image grids, HTML)
    #: how the scores were made (weights, image counts, reference set, generator), filled in by the metric
    #: functions (``gantk.metrics.samples.sample_metrics``); stored beside every score, and a best
    #: checkpoint is only ever compared with scores of the same protocol
    protocol: dict[str, Any] = field(default_factory=dict)
    #: the folder for what a run derives once and keeps as files (CGAN's own classifier): the training run's
    #: folder, or ``gantk eval``'s output folder; by default ``out_dir``'s parent
    run_dir: Path | None = None
    #: what the evaluations of one run share, owned by the engine (one per run; ``gantk eval`` starts
    #: empty): read it through :meth:`cached`, so that no evaluation keeps state on the plugin
    cache: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        if self.run_dir is None:
            self.run_dir = self.out_dir.parent

    def cached(self, key: str, make: Callable[[], T]) -> T:
        """``make()`` the first time this run asks for ``key``, the same value after: the reference images,
        benchmark sets and bicubic scores of a run are read once for all its evaluations."""
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


LossFn = Callable[[Batch, StepContext], Losses]


@dataclass(frozen=True)
class LatentCode:
    """One named latent code of a generator's input: categorical with ``values`` values (0 .. values - 1),
    or continuous, trained on [``low``, ``high``] (and worth viewing beyond it)."""

    name: str
    kind: str  # "categorical" | "continuous"
    values: int = 0
    low: float = -1.0
    high: float = 1.0


@dataclass(frozen=True)
class Update:
    """One optimizer step inside a training step, over one network or several stepped together.

    ``network`` is a network's name, or a tuple of names whose parameters one optimizer steps together
    (CycleGAN's two generators; InfoGAN's G and its Q head). ``optimizer`` names that optimizer: its
    config section is ``optim.<optimizer>``, its loss terms are logged as ``<optimizer>/<term>``. It
    defaults to the network's name, and must be given for a tuple. A network belongs to one optimizer.
    ``loss`` returns named loss terms; the engine minimises their sum and logs each term.
    ``repeat`` runs the update several times per step; repeats after the first take fresh batches.
    ``freeze`` names networks whose weight gradients this update does not need (D during a G update);
    they are held at ``requires_grad=False`` while the loss runs, which saves their backward pass.

    ``every=k`` (contract 3) makes the update **lazy** (Karras et al. 2020, "Analyzing and Improving the
    Image Quality of StyleGAN", section 3.1): it runs on the steps where the number of steps done before
    it is a multiple of ``k`` (the first step, then every k-th), so a regulariser that is costly and
    changes slowly (R1, path length) is paid for once in k steps. The loss is written as if it ran every
    step: the engine multiplies it by ``k`` (what the term would add up to over k steps), and an
    optimizer that steps lazy updates has its learning rate scaled by ``r = 1 / (1 + sum 1/k)`` over
    them and its betas raised to ``r`` (the paper's compensation for the extra optimizer steps; with
    one lazy update of interval k, r = k / (k + 1)). The logged terms are the
    loss's own, unscaled, averaged over the steps it ran.
    """

    network: str | tuple[str, ...]
    loss: LossFn
    repeat: int = 1
    freeze: tuple[str, ...] = ()
    optimizer: str = ""
    every: int = 1

    def runs_at(self, step: int) -> bool:
        """Whether the update runs in the step that ``step`` steps precede (0: the first step)."""
        return step % self.every == 0

    @property
    def label(self) -> str:
        """``<optimizer>:<loss function>``: how a lazy update is named in the log and in graph keys."""
        return f"{self.optimizer_name}:{getattr(self.loss, '__name__', 'loss')}"

    @property
    def networks(self) -> tuple[str, ...]:
        """The networks this update's optimizer steps."""
        return (self.network,) if isinstance(self.network, str) else tuple(self.network)

    @property
    def optimizer_name(self) -> str:
        """The optimizer's name: ``optim.<name>`` in the config, ``<name>/<term>`` in the log."""
        return self.optimizer or (self.network if isinstance(self.network, str) else "+".join(self.network))


@dataclass(frozen=True)
class Phase:
    """A stretch of training with one rhythm of updates; ``steps=None`` runs to ``train.max_steps``.

    ``keep_best=False`` stops evaluations in this phase from replacing ``checkpoints/best``: SRGAN's
    adversarial phase trades PSNR for texture, so its best-by-PSNR model is the end of phase 1.
    """

    name: str
    updates: tuple[Update, ...]
    steps: int | None = None
    keep_best: bool = True

    @property
    def trained(self) -> set[str]:
        """The networks some update of this phase steps."""
        return {n for u in self.updates for n in u.networks}

    def updates_at(self, step: int) -> tuple[Update, ...]:
        """The updates that run in the step that ``step`` steps precede: all but the lazy ones not due."""
        return tuple(u for u in self.updates if u.runs_at(step))

    def lazy_runs(self, start: int, stop: int) -> dict[str, int]:
        """How often each lazy update ran in the steps ``start`` to ``stop`` (``stop - start`` steps):
        counted on the host from the step numbers, for the log."""
        return {
            u.label: (stop - 1) // u.every - (start - 1) // u.every  # the multiples of every in [start, stop)
            for u in self.updates
            if u.every > 1 and stop > start
        }

    def variant(self, step: int) -> str:
        """A name for the set of updates that runs at ``step``: the phase's name, plus ``+<label>`` for each
        lazy update due. Steps with the same variant run the same work (one CUDA graph each)."""
        return "+".join([self.name, *(u.label for u in self.updates if u.every > 1 and u.runs_at(step))])

    @classmethod
    def alternating(
        cls, d_loss: LossFn, g_loss: LossFn, d_repeat: int = 1, name: str = "gan", steps: int | None = None
    ) -> Phase:
        """The usual rhythm: ``d_repeat`` D updates, then one G update with D frozen."""
        return cls(name, (Update("D", d_loss, repeat=d_repeat), Update("G", g_loss, freeze=("D",))), steps)


class RunView(Protocol):
    """What a :class:`Hook` sees of the run: read-only, typed, the same for the engine's hooks and yours.

    ``eval_mode()`` gives eval mode without gradients and with training's random streams untouched, so
    what a hook draws never changes the training; ``keep_best`` saves ``checkpoints/best`` for a better
    value of a metric (the engine's evaluation uses it).
    """

    @property
    def step(self) -> int: ...  # steps done
    @property
    def cfg(self) -> Config: ...  # resolved and frozen
    @property
    def plugin(self) -> GanPlugin: ...
    @property
    def run(self) -> Path: ...  # the run folder
    @property
    def world(self) -> Any: ...  # rank, size, is_main (gantk.engine.distributed.World)
    @property
    def device(self) -> torch.device: ...
    @property
    def logger(self) -> Any: ...  # write(step, values), message(text) (gantk.engine.logger.RunLogger)
    @property
    def nets(self) -> Mapping[str, nn.Module]: ...  # the networks being trained
    @property
    def sample_inputs(self) -> dict[str, Tensor] | None: ...  # the preview grid's (preview_inputs)
    @property
    def best_value(self) -> float | None: ...  # of checkpoints/best, None before one
    @property
    def best_protocol(self) -> dict[str, Any]: ...  # how best_value was measured

    def sampling_generator(self, name: str | None = None) -> nn.Module: ...
    def eval_mode(self) -> AbstractContextManager: ...
    def phase_at(self, step: int) -> Phase: ...
    def eval_context(self) -> EvalContext: ...  # for this step, with the run's evaluation cache
    def keep_best(self, value: float, protocol: dict[str, Any], extra: dict[str, Any]) -> None: ...


class Hook:
    """Work that runs between training steps: every ``every`` steps, and after the last step (``at_end``).

    The engine runs its hooks in order after each step's checkpoint was written: its own (the sample
    grid every ``train.sample_every`` steps, evaluation every ``train.eval_every``), then the plugin's
    (:meth:`GanPlugin.hooks`), then the user's (``Trainer(..., hooks=[...])``). A hook is called on every
    rank of a data-parallel run: write files only where ``run.world.is_main``. It gets a
    :class:`RunView` of the run (``step``, ``cfg``, ``plugin``, ``run`` folder, ``logger``,
    ``sampling_generator()``, ``eval_mode()``, ...). A failing hook stops the run with the step's
    checkpoint saved.
    """

    def __init__(self, every: int = 0, at_end: bool = True) -> None:
        self.every = every
        self.at_end = at_end

    def due(self, step: int, max_steps: int) -> bool:
        """Whether the hook runs after ``step`` (1-based: steps done); never when ``every`` is 0."""
        return bool(self.every) and (step % self.every == 0 or (self.at_end and step == max_steps))

    def __call__(self, run: RunView) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """What a stateful hook must keep across a resume (JSON values: numbers, strings, lists, dicts),
        saved in every checkpoint's ``config.json`` as the checkpoint is written (before that step's
        hooks run) and given back to :meth:`load_state_dict` on ``--resume``. Empty: nothing to keep."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state_dict` returned when the checkpoint being resumed was written."""


class GanPlugin:
    """Base class of every gantk plugin. Subclass it in a ``plugin.py``; see docs in the README."""

    #: registered name (``gantk train NAME``); defaults to the plugin folder's name when empty
    name: ClassVar[str] = ""
    #: one line for ``gantk plugins``
    description: ClassVar[str] = ""
    #: the contract version the plugin was written for (see docs/plugins.md, "Versioning")
    contract: ClassVar[int] = CONTRACT_VERSION
    #: the typed config this plugin reads; subclass :class:`gantk.Config` to add sections
    config_class: ClassVar[type[Config]] = Config
    #: the network that generates images: sampled from, averaged by EMA, exported by default
    generator: ClassVar[str] = "G"
    #: contract 2: for a plugin with one generator per direction or task, which network serves which
    #: (CycleGAN: ``{"AtoB": "G_AB", "BtoA": "G_BA"}``); ``gantk translate --direction``, ``sample`` and
    #: ``export`` pick one by its key, and EMA averages each of them. Empty: ``generator`` serves alone
    directions: ClassVar[dict[str, str]] = {}
    #: whether lower (``min``) or higher (``max``) values of :meth:`best_metric` are better
    best_mode: ClassVar[str] = "min"
    #: the network whose image input ``train.augment`` augments (real and generated alike); "" opts out,
    #: for a plugin whose losses need D to see the images as they are
    augment_network: ClassVar[str] = "D"
    #: what a trained generator serves (:data:`TASKS`): ``gantk sample``, ``translate`` and ``upscale`` and
    #: the apps refuse a checkpoint whose plugin does not declare their task, before they load any weights
    tasks: ClassVar[frozenset[str]] = frozenset({"sample"})
    #: sampling options besides ``label`` (contract 3): ``"truncation"``, a keyword :meth:`sample_inputs`
    #: takes (``gantk sample --truncation`` and the synthesis app's slider), and ``"style_mix"``, for a
    #: plugin that implements :meth:`style_mix_inputs` (``gantk sample --style-mix``); StyleGAN2 has both
    sample_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    @classmethod
    def defaults_path(cls) -> Path:
        """The plugin's defaults file: ``defaults.yaml`` beside the module that defines the class."""
        return Path(inspect.getfile(cls)).with_name("defaults.yaml")

    # ---- config -----------------------------------------------------------------------------------
    def check_config(self) -> None:
        """Refuse combinations of values the networks or the data path cannot take, with a ConfigError
        naming the keys (``data.image_size`` not a multiple of what the architecture halves it by, ...).

        Called before the data is read and before anything is written; each field's own range is already
        checked (``gantk.config.Range``). A rule that needs the data belongs in :meth:`resolve`.
        """

    def resolve(self, dataset: torch.utils.data.Dataset) -> dict[str, Any]:
        """Config values that follow from the training data, as dotted keys: pix2pix's ``train.max_steps``
        from its epochs and the number of pairs, CGAN's ``model.class_names`` from the labels.

        The engine calls it once, after :meth:`build_dataset` (with ``data.channels`` and ``data.kind``
        already filled in) and before :meth:`build_networks` and :meth:`phases`. The values are checked as
        ``--set`` values are; then the config is frozen and saved with the run, so every checkpoint
        rebuilds the networks without the data. Never assign to ``self.cfg``: return the values here.
        """
        return {}

    # ---- data -------------------------------------------------------------------------------------
    def build_dataset(self, split: str = "train") -> torch.utils.data.Dataset:
        """The training data. Items are dicts of tensors; uint8 images become float [-1, 1] on the device.

        The default reads ``cfg.data`` through gantk's dataset registry; override it for paired or
        conditional data.
        """
        from gantk.data import load_dataset

        return load_dataset(self.cfg.data, split=split)

    def prepare_batch(self, batch: Batch, ctx: StepContext) -> Batch:
        """Per-batch work on the device before the losses: augmentation, conditioning, ...

        Called once per batch drawn. Randomness from ``ctx.randn`` / ``ctx.rand`` is checkpointed, so
        augmentations done here replay exactly on ``--resume``; paired data gets the same jitter on
        both images by drawing the parameters once.
        """
        return batch

    # ---- networks and losses ----------------------------------------------------------------------
    def build_networks(self) -> dict[str, nn.Module]:
        """Build every network, initialised, keyed by name (``{"G": ..., "D": ...}``)."""
        raise NotImplementedError

    def phases(self) -> list[Phase]:
        """The training rhythm: one or more phases of updates."""
        raise NotImplementedError

    def build_aux(self) -> dict[str, nn.Module]:
        """Frozen auxiliary modules the losses use (SRGAN's VGG feature network), keyed by name.

        The engine builds them once per run, counts them in its memory check, moves them to the training
        device in eval mode without gradients (and compiles them under ``train.compile``), and hands them
        to the losses as ``ctx.aux``. They are not trained and not saved in checkpoints: build them from
        their own source (a weights file). Never build such a module inside a loss: it would be out of sight
        of the device placement, the memory check and ``compile``.
        """
        return {}

    def capturable_reason(self) -> str:
        """Why this plugin's training step, under its config, cannot be captured as a CUDA graph; "" if it can.

        A capturable step reads no tensor value on the host (no ``.item()``, ``bool()``, ``.tolist()``,
        Python ``if`` on a tensor, or ops whose output size depends on values) and makes the same calls in
        the same order every step: anything that changes with the step comes from tensors
        (``ctx.step_tensor``, ``ctx.rand``), not from Python values. The engine checks the first point on
        a warm-up step and falls back to eager with a warning; the second is the plugin's to declare here.
        """
        return ""

    def hooks(self) -> list[Hook]:
        """Extra work between steps (a plugin's own report, a metric on another cadence): see :class:`Hook`."""
        return []

    # ---- sampling ---------------------------------------------------------------------------------
    def class_names(self) -> tuple[str, ...]:
        """The classes a class-conditional generator takes (as ``label=`` in :meth:`sample_inputs`).

        Empty for an unconditional plugin. A conditional plugin takes a class name or index as
        ``label`` and puts the index into its inputs under the key ``"label"``; ``gantk sample --label``
        and the synthesis app rely on that.
        """
        return ()

    def sample_inputs(self, n: int, generator: torch.Generator, **conditions: Any) -> dict[str, Tensor]:
        """Generator inputs for ``n`` samples (``{"z": ...}``), drawn on the CPU from ``generator``.

        Drawing on the CPU makes a seed give the same inputs on every device.
        """
        raise NotImplementedError(f"plugin '{self.cfg.plugin}' does not sample from noise")

    def preview_inputs(self, n: int, generator: torch.Generator) -> dict[str, Tensor]:
        """The inputs of training's sample grids (``train.sample_count``, drawn once per run, so the grids
        follow the same inputs) and of EMA's batch-norm calibration. By default :meth:`sample_inputs`; a
        plugin that does not sample from noise reads fixed inputs itself (pix2pix: held-out label maps),
        so nothing depends on :meth:`build_dataset` having run. NotImplementedError: no grids."""
        return self.sample_inputs(n, generator)

    def latent_codes(self) -> tuple[LatentCode, ...]:
        """Named parts of the generator's input that a user can vary one at a time (InfoGAN's ``c1, c2, c3``),
        for ``gantk sample --traverse`` and the synthesis app; empty when there are none."""
        return ()

    def coded_inputs(self, n: int, generator: torch.Generator, codes: dict[str, float]) -> dict[str, Tensor]:
        """``n`` inputs with each latent code named in ``codes`` set to its value (a categorical code's value
        is its index) and everything else drawn on the CPU from ``generator``; the synthesis app's sliders."""
        raise NotImplementedError(f"plugin '{self.cfg.plugin}' has no named latent codes")

    def traversal_inputs(self, code: str, steps: int, generator: torch.Generator) -> tuple[dict[str, Tensor], int]:
        """Inputs of a grid that varies latent code ``code`` along each row (``steps`` values) with everything
        else fixed, drawn on the CPU from ``generator``; returns ``(inputs, row length)``."""
        raise NotImplementedError(f"plugin '{self.cfg.plugin}' has no named latent codes to traverse")

    def style_mix_inputs(
        self, rows: int, cols: int, generator: torch.Generator, **conditions: Any
    ) -> dict[str, Tensor]:
        """Inputs of a style-mixing grid, drawn on the CPU from ``generator``: ``cols`` column sources, ``rows``
        row sources, then the ``rows x cols`` mixes row by row, mix (r, c) taking row r's coarse styles and
        column c's fine ones; ``fine_from`` in ``conditions`` is the resolution where the fine ones begin.
        Only for a plugin that lists ``"style_mix"`` in :attr:`sample_options`."""
        raise NotImplementedError(f"plugin '{self.cfg.plugin}' has no styles to mix")

    def export_inputs(self) -> dict[str, Tensor]:
        """Example generator inputs for ``gantk export --format onnx|torchscript``, made without any data.

        The keys become the exported model's input names; the first axis of each is dynamic (the batch),
        and so are the height and width of 4-D image inputs. By default two of :meth:`sample_inputs`; an
        image-to-image plugin returns an input image batch instead.
        """
        return self.sample_inputs(2, torch.Generator().manual_seed(0))

    def generate(self, G: nn.Module, inputs: dict[str, Tensor]) -> Tensor:
        """Run the generator on ``inputs``; returns images in [-1, 1]."""
        return G(inputs["z"])

    def interpolate(self, a: dict[str, Tensor], b: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
        """Inputs on the path from ``a`` to ``b`` (one sample each) at positions ``t`` in [0, 1].

        Noise vectors follow a great circle (slerp), which keeps Gaussian samples at a typical norm;
        other inputs are taken from ``a``.
        """
        out = {}
        for key, va in a.items():
            vb = b[key]
            if va.is_floating_point():
                out[key] = slerp(va, vb, t)
            else:
                out[key] = va.expand(len(t), *va.shape[1:])
        return out

    # ---- evaluation -------------------------------------------------------------------------------
    def evaluate(self, nets: dict[str, nn.Module], ctx: EvalContext) -> dict[str, float]:
        """Evaluation metrics, run every ``train.eval_every`` steps with networks in eval mode.

        ``nets[generator]`` is the EMA generator when EMA is on. Write reports under ``ctx.out_dir``.
        """
        return {}

    def best_metric(self) -> str:
        """The evaluation metric that keeps ``checkpoints/best`` (``train.best_metric`` overrides it); may
        depend on the config (DCGAN: ``fid`` with Inception weights, else ``kid_pixels``). Empty: none."""
        return ""

    def metric_names(self) -> tuple[str, ...]:
        """The names :meth:`evaluate` reports under this config, so that ``train.best_metric`` is checked
        before training starts; empty when they depend on the data (then the first evaluation checks)."""
        return ()

    # ---- image-to-image inference -----------------------------------------------------------------
    def translate(self, G: nn.Module, image: Tensor, train_mode: bool = False) -> Tensor:
        """Map one input image (1, C, H, W) in [-1, 1] to an output image, for ``gantk translate``
        (declare ``"translate"`` in :attr:`tasks`)."""
        raise NotImplementedError(f"plugin '{self.cfg.plugin}' does not translate images")

    def upscale(self, G: nn.Module, lr: Tensor, progress: Any = None) -> Tensor:
        """Super-resolve a batch (N, C, h, w) in [-1, 1], for ``gantk upscale`` and the super-resolution app
        (declare ``"upscale"`` in :attr:`tasks`). ``progress`` is a :class:`gantk.tiling.Progress` to report to."""
        raise NotImplementedError(f"plugin '{self.cfg.plugin}' does not upscale images")

    @classmethod
    def sampled_networks(cls) -> tuple[str, ...]:
        """Every network that generates: ``generator`` and those of :attr:`directions`, each once."""
        return tuple(dict.fromkeys((cls.generator, *cls.directions.values())))

    @classmethod
    def network_for(cls, direction: str | None) -> str:
        """The network serving ``direction`` (a key of :attr:`directions`); ``None``: the ``generator``.
        An unknown direction is a ConfigError naming the plugin's."""
        if direction is None:
            return cls.generator
        if direction not in cls.directions:
            offered = ", ".join(cls.directions) if cls.directions else "none: it has one generator"
            raise ConfigError(f"--direction {direction}: plugin '{cls.name}' offers directions {offered}.")
        return cls.directions[direction]

    @classmethod
    def serves(cls, task: str) -> bool:
        """Whether the plugin declares ``task`` (one of :data:`TASKS`) in :attr:`tasks`."""
        return task in cls.tasks


@torch.no_grad()
def generate_in_chunks(
    plugin: GanPlugin, G: nn.Module, inputs: dict[str, Tensor], device: str | torch.device, chunk: int = 256
) -> Tensor:
    """``plugin.generate`` over inputs drawn on the CPU, ``chunk`` at a time on ``device``; float images in
    [-1, 1] back on the CPU. What sampling, evaluation and the apps run a generator through."""
    n = len(next(iter(inputs.values())))
    out = [
        plugin.generate(G, {k: v[i : i + chunk].to(device) for k, v in inputs.items()}).float().cpu()
        for i in range(0, n, chunk)
    ]
    return torch.cat(out)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between two batches of one vector each (shape ``(1, ...)``)."""
    fa, fb = a.flatten(1), b.flatten(1)
    cos = (fa / fa.norm(dim=1, keepdim=True) * fb / fb.norm(dim=1, keepdim=True)).sum(1).clamp(-1, 1)
    omega = torch.arccos(cos)
    t = t.to(a.dtype).view(-1, 1)
    if omega.abs().item() < 1e-4:  # nearly parallel: fall back to a straight line
        out = (1 - t) * fa + t * fb
    else:
        so = torch.sin(omega)
        out = torch.sin((1 - t) * omega) / so * fa + torch.sin(t * omega) / so * fb
    return out.view(len(t), *a.shape[1:])
