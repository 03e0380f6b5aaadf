"""The plugin contract: what a GAN plugin provides, and what the engine gives it back.

This module holds :class:`GanPlugin` and :class:`Hook`; the rhythm (:class:`Phase`, :class:`Update`)
is in :mod:`gantk.phases` and what loss functions and evaluations see in :mod:`gantk.contexts`, and
all of them are importable from here.

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
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import torch
from torch import Tensor, nn

from gantk.config import Config
from gantk.contexts import Batch, EvalContext, Losses, StepContext, draw_for_rank
from gantk.errors import ConfigError
from gantk.latents import LatentCode, slerp
from gantk.phases import LossFn, Phase, Update

# the contract's other halves live beside it and are named here too: ``from gantk.plugin import Phase``
__all__ = [
    "CONTRACT_VERSION",
    "TASKS",
    "Batch",
    "EvalContext",
    "GanPlugin",
    "Hook",
    "LatentCode",
    "LossFn",
    "Losses",
    "Phase",
    "RunView",
    "StepContext",
    "Update",
    "draw_for_rank",
    "generate_in_chunks",
    "slerp",
]

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
    def keep_best(self, metric: str, value: float, protocol: dict[str, Any]) -> None: ...


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
    #: whether the networks take images of any shape (fully convolutional: pix2pix, CycleGAN), so that
    #: ``data.image_size`` may be ``[height, width]``; a plugin whose architecture is square (a dense layer,
    #: a fixed stack of upsamplings) leaves it False and a non-square size is refused before any work
    any_aspect: ClassVar[bool] = False

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
