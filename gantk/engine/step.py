"""One training step, as a fixed sequence of device work with no host reads.

:class:`TrainStep` runs every update of a phase on its batches: the plugin's losses, backward passes,
optimizer steps, the EMA update, the loss sums for the log and the non-finite check. Nothing in it
reads a tensor value on the host, so the CPU can queue step after step without waiting for the GPU,
and :mod:`gantk.engine.graph` can capture it once as a CUDA graph and replay it. The engine runs this
same function in every mode (eager on the CPU, eager on a GPU, replayed from a graph), which is what
makes their results equal.

How the usual host decisions stay on the device:

* loss terms are summed into :class:`DeviceMeter` tensors, read once per log interval;
* a non-finite loss masks its optimizer step (``found_inf`` of the fused optimizers, or a put-back;
  :func:`gantk.engine.optim.masked_step`) and is counted on the device, with the first step it happened
  at; the engine reads the count at log intervals and before any checkpoint, and stops there under
  ``train.nonfinite=stop``;
* learning rates are device tensors that the schedule fills between steps;
* the step counter ``ctx.step_tensor`` lives on the device and is advanced inside the step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gantk.engine import distributed
from gantk.engine.augment import Augmenter
from gantk.engine.ema import EmaGenerator
from gantk.engine.optim import masked_step
from gantk.errors import DataError, PluginError
from gantk.io.images import from_uint8
from gantk.plugin import Batch, GanPlugin, Phase, StepContext, Update


def autocast(device: torch.device, dtype: torch.dtype | None, cache: bool = True) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device`` (nothing for fp32); ``cache=False`` inside a captured graph."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype, cache_enabled=cache)


class BatchDict(dict):
    """A batch whose missing key is a clear error: data of another kind (``data.kind: paired`` for a plugin
    that reads ``image``) gives batches with other keys, and a bare KeyError would say nothing of that."""

    def __missing__(self, key: str) -> Any:
        raise DataError(
            f"the training step asked the batch for '{key}', but the data gives {', '.join(map(repr, self)) or 'nothing'}"
            "; the dataset's kind (data.kind, or what --data holds) is not the kind this plugin trains on."
        )


class DeviceMeter:
    """Sums and counts of logged values and skipped updates, kept on the device until :meth:`means` /
    :meth:`skipped` read them (one host read each)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, torch.Tensor] = {}
        self.nonfinite: dict[str, torch.Tensor] = {}  # network -> updates skipped since the last read
        self.first_bad: dict[str, torch.Tensor] = {}  # network -> first step with a skipped update, or -1

    def _zeros(self, table: dict[str, torch.Tensor], key: str, fill: float = 0, dtype=torch.float32) -> torch.Tensor:
        if key not in table:  # created in the first (eager) step, before any capture
            table[key] = torch.full((), fill, dtype=dtype, device=self.device)
        return table[key]

    def add(self, key: str, value: torch.Tensor, weight: torch.Tensor | None) -> None:
        """Add ``value`` (0-dim) to the sum of ``key``; ``weight`` (bool) False leaves it out."""
        value = value.detach().float()
        total, count = self._zeros(self.sums, key), self._zeros(self.counts, key)
        if weight is None:
            total.add_(value)
            count.add_(1)
        else:
            total.add_(torch.where(weight, value, 0.0))
            count.add_(weight.to(torch.float32))

    def count_nonfinite(self, network: str, finite: torch.Tensor, step: torch.Tensor) -> None:
        bad = ~finite
        self._zeros(self.nonfinite, network, dtype=torch.int64).add_(bad.to(torch.int64))
        first = self._zeros(self.first_bad, network, fill=-1, dtype=torch.int64)
        first.copy_(torch.where(bad & (first < 0), step, first))

    def means(self, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, float]:
        """The interval means (averaged over ranks by ``reduce``), then zeroed in place.

        One host read. The sums are zeroed in place because a captured graph keeps adding into the same
        tensors. A value whose every update was skipped (non-finite) has no mean and is left out.
        """
        keys = list(self.sums)
        if not keys:
            return {}
        means = torch.stack([self.sums[k] / self.counts[k].clamp(min=1) for k in keys])
        if reduce is not None:
            means = reduce(means)
        counts = torch.stack([self.counts[k] for k in keys])
        host = torch.cat([means.double(), counts.double()]).tolist()
        for t in (*self.sums.values(), *self.counts.values()):
            t.zero_()
        return {k: host[i] for i, k in enumerate(keys) if host[len(keys) + i] > 0}

    def skipped(self) -> dict[str, tuple[int, int]]:
        """``{network: (updates skipped, first step)}`` since the last call (one host read), then reset."""
        nets = list(self.nonfinite)
        if not nets:
            return {}
        host = torch.cat(
            [torch.stack([self.nonfinite[n] for n in nets]), torch.stack([self.first_bad[n] for n in nets])]
        )
        host = host.tolist()
        for t in self.nonfinite.values():
            t.zero_()
        for t in self.first_bad.values():
            t.fill_(-1)
        # the step as the progress line and checkpoint names count it: the first step is step 1
        return {net: (host[j], host[len(nets) + j] + 1) for j, net in enumerate(nets) if host[j]}


@dataclass
class StepParts:
    """What a step works on; the trainer builds it once (``setup``) and keeps it."""

    plugin: GanPlugin
    nets: dict[str, nn.Module]  # the plain modules
    step_nets: dict[str, nn.Module]  # what losses call: DDP-wrapped and/or compiled
    frozen_step_nets: dict[str, nn.Module]  # the same, unwrapped, for a network frozen in an update
    optimizers: dict[str, torch.optim.Optimizer]
    scalers: dict[str, torch.amp.GradScaler]
    emas: dict[str, EmaGenerator]  # network name -> its EMA copy
    device: torch.device
    noise: torch.Generator
    cpu_noise: torch.Generator
    world: distributed.World
    autocast_dtype: torch.dtype | None
    channels_last: bool
    grad_clip: float
    nonfinite: str  # skip | stop | off
    max_steps: int
    augment: Augmenter | None = None  # train.augment: what D sees is augmented (engine/augment.py)
    aux: dict[str, nn.Module] = field(default_factory=dict)  # the plugin's frozen modules (GanPlugin.build_aux)


class TrainStep:
    """``step(phase, raw_batches, index)`` runs one training step; see the module docstring."""

    def __init__(self, parts: StepParts) -> None:
        self.parts = parts
        self.step_tensor = torch.zeros((), dtype=torch.int64, device=parts.device)  # steps done
        self.meter = DeviceMeter(parts.device)
        self.autocast_cache = True  # off under graph capture (PyTorch's rule for autocast in graphs)

    @staticmethod
    def batches_needed(phase: Phase, index: int) -> int:
        """Raw batches step ``index`` of ``phase`` takes: one shared, plus one per extra repeat of the updates
        that run in it (a lazy update not due takes none)."""
        return 1 + sum(u.repeat - 1 for u in phase.updates_at(index))

    def __call__(self, phase: Phase, raws: list[Batch], index: int) -> None:
        p = self.parts
        ctx = StepContext(
            p.step_nets,
            p.device,
            index,
            p.max_steps,
            phase.name,
            p.noise,
            p.cpu_noise,
            rank=p.world.rank,
            world_size=p.world.size,
            step_tensor=self.step_tensor,
            augment=p.augment,
            meter=self.meter,
            aux=p.aux,
        )
        fresh = iter(raws[1:])
        shared = self.prepare(raws[0], ctx)  # one batch per step, shared by its updates
        for upd in phase.updates_at(index):  # a lazy update (every=k) runs when its step comes round
            ctx.nets = {k: p.frozen_step_nets[k] if k in upd.freeze else v for k, v in p.step_nets.items()}
            for r in range(upd.repeat):
                self.update(upd, shared if r == 0 else self.prepare(next(fresh), ctx), ctx)
        self.step_tensor.add_(1)
        if p.augment is not None:  # ADA's adjustment of p, on the device
            for key, value in p.augment.after_step(self.step_tensor).items():
                self.meter.add(f"augment/{key}", value, None)
        for name, ema in p.emas.items():
            ema.update(p.nets[name], self.step_tensor)

    def prepare(self, raw: Batch, ctx: StepContext) -> Batch:
        """uint8 images -> float in [-1, 1] (channels_last when asked), then the plugin's prepare_batch."""
        out = BatchDict((k, from_uint8(v) if v.dtype == torch.uint8 and v.dim() == 4 else v) for k, v in raw.items())
        out = BatchDict(self.parts.plugin.prepare_batch(out, ctx))
        if self.parts.channels_last:  # after prepare_batch, whose crops and gathers decide the layout
            out = BatchDict(
                (k, v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 and v.is_floating_point() else v)
                for k, v in out.items()
            )
        return out

    def autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.parts.device, self.parts.autocast_dtype, cache=self.autocast_cache)

    def update(self, upd: Update, batch: Batch, ctx: StepContext) -> None:
        """One step of ``upd``'s optimizer on the sum of the plugin's loss terms (masked if not finite)."""
        p = self.parts
        name = upd.optimizer_name
        opt = p.optimizers[name]
        frozen = [q for name in upd.freeze for q in p.nets[name].parameters() if q.requires_grad]
        for q in frozen:
            q.requires_grad_(False)
        try:
            opt.zero_grad(set_to_none=True)
            with self.autocast():
                terms = upd.loss(batch, ctx)
            if not isinstance(terms, dict) or not terms:
                raise PluginError(
                    f"plugin '{p.plugin.cfg.plugin}': the loss for '{name}' must return a non-empty dict "
                    f"of loss tensors, got {type(terms).__name__}."
                )
            total = sum(t.float() for t in terms.values())  # logged as it is
            # a lazy term stands in for the `every` steps it skipped (Update's docstring)
            loss = total * upd.every if upd.every > 1 else total
            finite = None
            if p.nonfinite != "off":  # one verdict for all ranks, decided on the device
                finite = distributed.all_finite(torch.isfinite(loss), p.world)
                self.meter.count_nonfinite(name, finite, self.step_tensor)
            params = [q for net in upd.networks for q in p.nets[net].parameters()]
            scaler = p.scalers.get(name)
            if scaler is not None:
                scaler.scale(loss).backward()
                if finite is not None:  # a NaN loss with finite gradients: make the scaler skip it too
                    _poison_gradients(params, finite)
                if p.grad_clip:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(params, p.grad_clip)
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                if p.grad_clip:
                    nn.utils.clip_grad_norm_(params, p.grad_clip)
                masked_step(opt, finite)
        finally:
            for q in frozen:
                q.requires_grad_(True)
        for key, value in terms.items():
            self.meter.add(f"{name}/{key}", value, finite)
        if len(terms) > 1:
            self.meter.add(f"{name}/loss", total, finite)
        if upd.every == 1 and p.plugin.generator in upd.networks:  # G's main loss: the alarms watch it
            self.meter.add("health/g_loss", total, finite)


def _poison_gradients(params: list[nn.Parameter], finite: torch.Tensor) -> None:
    """Make one gradient NaN where ``finite`` is false, so GradScaler's own check skips the step."""
    for q in params:
        if q.grad is not None:
            q.grad.add_(torch.where(finite, 0.0, float("nan")).to(q.grad.dtype))
            return
