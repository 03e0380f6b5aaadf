"""What the engine gives a plugin's code: :class:`StepContext` to a loss function (networks, noise drawn
per rank, scratch space for one step, logging on the device) and :class:`EvalContext` to ``evaluate``
(device, step, report folder, the run folder and the run's evaluation cache, the protocol card)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

T = TypeVar("T")

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
        augmentation probability while their mean sign exceeds its target; the mean is also logged as
        ``health/real_logit`` for the training-health alarms (:mod:`gantk.engine.health`)."""
        if self.augment is not None:
            self.augment.observe_real(logits)
        self.log("health/real_logit", logits)

    def observe_fake(self, logits: Tensor) -> None:
        """Report D's logits on generated images (in the D update): logged as ``health/fake_logit``, which the
        training-health alarms read (D winning outright; :mod:`gantk.engine.health`)."""
        self.log("health/fake_logit", logits)

    def observe_samples(self, fake: Tensor, real: Tensor) -> None:
        """Report a batch of generated images beside real ones: their mean pairwise distance over the reals'
        is logged as ``health/diversity`` (near 1 when G's outputs vary as the data does, near 0 when they
        collapse to one image). On the device, on at most 16 images of each; nothing for a batch of one."""
        if self.meter is None or len(fake) < 2 or len(real) < 2:
            return
        f, r = fake.detach()[:16].float().flatten(1), real.detach()[:16].float().flatten(1)
        self.log("health/diversity", torch.pdist(f).mean() / torch.pdist(r).mean().clamp_min(1e-6))

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
