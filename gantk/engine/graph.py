"""Run the training step eagerly, or capture it once per phase as a CUDA graph and replay it.

A GAN step at the sizes people train (pix2pix at batch 1, DCGAN at 64x64) is a few milliseconds of GPU
work spread over hundreds of small kernels; launched one by one from Python, the GPU waits for the CPU
most of the time (measured on an H100: 4 ms of work in a 17 ms step). A CUDA graph records the step's
kernels once and replays them with one launch. :class:`StepRunner` does that for
:class:`gantk.engine.step.TrainStep`, which is written to be capturable (no host reads):

1. The first ``WARMUP`` steps of a phase run eagerly on a side stream (cuDNN picks its algorithms,
   lazy state is created, compiled kernels are built). The last of them runs under
   :func:`gantk.engine.syncs.forbid_host_reads` in recording mode: a plugin whose step reads a tensor
   on the host is found there, named, and trained eagerly instead, with one warning.
   A phase with lazy updates (``Update(..., every=k)``) has a few variants of its step (plain, +R1,
   +path length, ...): each variant (:meth:`gantk.plugin.Phase.variant`) is warmed up, captured and
   replayed on its own, a handful of graphs in all, never one per step.
2. The next step is captured: its raw batches are copied into static buffers, the step is recorded
   into a graph (memory from one pool shared by the phases' graphs), and the graph is replayed.
3. Every later step copies its raw batches into the static buffers and replays the graph.

Random numbers come from generators registered with the graph (PyTorch's default CUDA generator and
the engine's noise generator), whose offsets advance with every replay exactly as eager steps advance
them, so a checkpoint's generator states resume the same stream. Evaluation, sampling, checkpoints and
logging happen between replays, outside the graph, on the same weight tensors.

If capture fails anyway, the step runs eagerly, training goes on eagerly, and a warning says why.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from gantk.engine.step import TrainStep
from gantk.engine.syncs import HostSyncError, forbid_host_reads
from gantk.plugin import Batch, Phase

WARMUP = 3  # eager steps of a phase before its capture


#: records ``fn`` (runs nothing) and returns the call that replays it
Recorder = Callable[[Callable[[], None]], Callable[[], None]]


def cuda_graph_recorder(generators: list[torch.Generator]) -> Recorder:
    """Record with ``torch.cuda.CUDAGraph``: one memory pool for all graphs of the run (they never overlap)."""
    pool = torch.cuda.graph_pool_handle()

    def record(fn: Callable[[], None]) -> Callable[[], None]:
        graph = torch.cuda.CUDAGraph()
        for generator in generators:  # its offsets advance with each replay, as with each eager step
            graph.register_generator_state(generator)
        torch.cuda.synchronize()
        with torch.cuda.graph(graph, pool=pool):
            fn()
        return graph.replay

    return record


@dataclass
class _Captured:
    replay: Callable[[], None]
    inputs: list[Batch]  # static buffers the graph reads its raw batches from


def resolve_graph_mode(
    setting: str, device: torch.device, distributed: bool, compile_mode: str, plugin_reason: str
) -> tuple[str, str]:
    """``(mode, reason)``: the mode to run in, and for an asked-for graph that cannot be had, why not."""
    asked = setting == "on" or (setting == "auto" and compile_mode in ("reduce-overhead", "max-autotune"))
    if setting == "off":
        return "off", ""
    if device.type != "cuda":
        return "off", "CUDA graphs need a CUDA device; the step runs eagerly" if asked else ""
    if distributed:
        return "off", "CUDA graphs are not used under data-parallel training yet; the step runs eagerly"
    if plugin_reason:
        return "off", f"the plugin's step cannot be captured: {plugin_reason}"
    return "on", ""


class StepRunner:
    """Calls ``step(phase, raws, index)`` each step, eagerly or from a per-phase CUDA graph."""

    def __init__(self, step: TrainStep, record: Recorder | None, check_host_reads: bool = True) -> None:
        """``record=None`` runs every step eagerly; the engine passes :func:`cuda_graph_recorder` on CUDA."""
        self.step = step
        self.record = record
        self.check_host_reads = check_host_reads
        self.graphs: dict[str, _Captured] = {}
        self.warm: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        return self.record is not None

    @property
    def captured(self) -> int:
        """How many step variants (a phase, or a phase with its lazy updates due) run from a captured graph."""
        return len(self.graphs)

    def __call__(self, phase: Phase, raws: list[Batch], index: int) -> None:
        if not self.enabled:
            self.step(phase, raws, index)
            return
        variant = phase.variant(index)  # a lazy update makes a few variants of a phase's step: one graph each
        captured = self.graphs.get(variant)
        if captured is not None:
            for slot, raw in zip(captured.inputs, raws, strict=True):
                for key, value in raw.items():
                    slot[key].copy_(value, non_blocking=True)
            captured.replay()
            return
        done = self.warm.get(variant, 0)
        if done < WARMUP:
            self.warm[variant] = done + 1
            # the last warm-up step is checked: lazy set-up (a loss network loaded on first use) is done by then
            self._warm_up(phase, raws, index, check=done == WARMUP - 1 and self.check_host_reads)
            return
        self._capture(variant, phase, raws, index)

    def _warm_up(self, phase: Phase, raws: list[Batch], index: int, check: bool) -> None:
        found: list[HostSyncError] = []
        device = self.step.parts.device
        watch = forbid_host_reads(device, found.append) if check else contextlib.nullcontext()
        if device.type == "cuda":  # PyTorch's rule: warm up on a side stream before capturing
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), watch:
                self.step(phase, raws, index)
            torch.cuda.current_stream().wait_stream(side)
        else:
            with watch:
                self.step(phase, raws, index)
        if found:
            self._give_up(f"the step reads tensor values on the host: {found[0]}")

    def _capture(self, variant: str, phase: Phase, raws: list[Batch], index: int) -> None:
        inputs = [{key: value.clone() for key, value in raw.items()} for raw in raws]
        self.step.autocast_cache = False  # PyTorch's rule for autocast inside a captured graph
        try:
            replay = self.record(lambda: self.step(phase, inputs, index))
        except Exception as exc:  # noqa: BLE001 - any capture failure: train on eagerly and say why
            self._give_up(f"capturing step '{variant}' failed: {type(exc).__name__}: {exc}")
            if self.step.parts.device.type == "cuda":
                torch.cuda.synchronize()
            self.step(phase, raws, index)  # capture ran nothing: this step is still to do
            return
        self.graphs[variant] = _Captured(replay, inputs)
        replay()

    def _give_up(self, reason: str) -> None:
        self.record = None
        self.step.autocast_cache = True
        self.graphs.clear()
        warnings.warn(f"CUDA graphs off, training eagerly: {reason}", stacklevel=3)


def build_runner(
    step: TrainStep, train: Any, device: torch.device, distributed: bool, plugin_reason: str, noise: torch.Generator
) -> tuple[StepRunner, str]:
    """The run's :class:`StepRunner` under ``train.cuda_graph`` / ``train.compile``, and why an asked-for graph
    cannot be had ("" when it can, or was not asked for): the caller says so once."""
    mode, why = resolve_graph_mode(train.cuda_graph, device, distributed, train.compile, plugin_reason)
    record = cuda_graph_recorder([noise]) if mode == "on" else None
    return StepRunner(step, record, check_host_reads=train.compile == "off"), why
