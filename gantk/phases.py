"""The rhythm of a plugin's training: a :class:`Phase` is a list of :class:`Update` s, each one optimizer
step on the sum of one loss function's terms (see :mod:`gantk.plugin` for the rhythms of the built-ins)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gantk.contexts import Batch, Losses, StepContext

LossFn = Callable[[Batch, StepContext], Losses]


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


def phase_at(phases: list[Phase], step: int) -> Phase:
    """The phase that runs at ``step`` (0-based: steps done before it): each phase runs its ``steps``, the
    last one (or one without ``steps``) for the rest."""
    start = 0
    for phase in phases:
        if phase.steps is None or step < start + phase.steps:
            return phase
        start += phase.steps
    return phases[-1]
