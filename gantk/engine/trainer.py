"""The training engine: one loop for every plugin.

The engine owns everything that is not the GAN itself: device, seeding, optimizers and schedules,
mixed precision (autocast; one gradient scaler per optimizer for fp16), ``torch.compile``, EMA of the
generator, logging, checkpoints and exact resume, and data-parallel training under torchrun
(:mod:`gantk.engine.distributed`). A plugin supplies networks, data and loss functions (see
:mod:`gantk.plugin`); the loop below calls them.

The trainer is the loop and what it must decide itself; the rest is elsewhere, one job each:

* :mod:`gantk.engine.setup`: the device, seeds, checks and wrapped networks before the first step;
* :mod:`gantk.engine.assembly`: every part of the run, built once into its state and its step's parts;
* :mod:`gantk.engine.resolve`: the config completed from the data, then frozen;
* :mod:`gantk.engine.step`: one training step (:mod:`gantk.engine.graph` replays it as a CUDA graph);
* :mod:`gantk.engine.hooks`: what runs every N steps (sample grids, evaluation), a list that a plugin
  (``GanPlugin.hooks``) or a user (``Trainer(hooks=...)``) extends;
* :mod:`gantk.engine.checkpointing` (over :mod:`gantk.engine.snapshot`): a checkpoint written from, and
  restored into, the run's explicit state;
* :mod:`gantk.engine.failures`: what a failing first step, draw, hook or non-finite loss does;
* :mod:`gantk.engine.sampler`: the generator that samples while training, and eval mode;
* :mod:`gantk.engine.signals`: the first stop signal finishes the step and saves, a second stops.

Under torchrun every rank runs this same loop. Rank 0 alone writes the run folder (logs, samples,
evaluations, checkpoints); the other ranks wait for it wherever the run's state must agree.
"""

from __future__ import annotations

import contextlib
import signal
import time
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gantk.config import Config, to_dict
from gantk.engine import assembly, distributed, failures, preflight, setup, signals, snapshot
from gantk.engine.checkpointing import Checkpoints
from gantk.engine.ema import EmaGenerator
from gantk.engine.graph import build_runner
from gantk.engine.hooks import TrainerView, run_hooks
from gantk.engine.logger import RunLogger, console, interval_values
from gantk.engine.resolve import resolve_run
from gantk.engine.run_folder import RunFolder
from gantk.engine.sampler import TrainingSampler
from gantk.engine.step import TrainStep
from gantk.engine.trackers import open_trackers as trackers_of
from gantk.engine.trackers import tracker_names
from gantk.errors import StepFailed, TrainingStopped
from gantk.io import checkpoint as ckpt
from gantk.phases import phase_at
from gantk.plugin import Batch, GanPlugin, Hook, Phase
from gantk.registry import PluginSpec


class Trainer:
    """Trains ``plugin`` into the run folder ``out``; ``resume=True`` continues its newest checkpoint,
    ``resume="step_00000400"`` (a name or path) that checkpoint of the run.

    ``spec`` says where the plugin came from (recorded in checkpoints); by default it is looked up.
    ``hooks`` run after the engine's and the plugin's own between steps (:class:`gantk.Hook`).
    """

    def __init__(
        self,
        plugin: GanPlugin,
        out: str | Path,
        spec: PluginSpec | None = None,
        resume: bool | str = False,
        hooks: list[Hook] | None = None,
        step_context: Callable[[int], AbstractContextManager] | None = None,
    ) -> None:
        """``step_context(step)``, when given, is entered around every training step of this process but
        its first (which may set things up lazily): the conformance kit watches for host reads there."""
        self.plugin = plugin
        self.run = Path(out)
        self.spec = spec or PluginSpec.of(plugin)  # recorded in every checkpoint: how to find the plugin again
        self.resume = resume
        self.user_hooks = list(hooks or [])
        self.step_context = step_context or (lambda step: contextlib.nullcontext())
        self.eval_cache: dict[str, Any] = {}  # EvalContext.cache: what this run's evaluations share
        self.hooks_pending = False  # resumed at a checkpoint whose hooks did not all run after it
        self.parts: assembly.RunParts | None = None  # built by setup() (engine/assembly.py)
        self.ready = False  # setup() done
        self.stop_signal = 0  # set by SIGINT/SIGTERM: finish the step, save, stop
        self.world = distributed.world_from_env()
        self._owns_process_group = False
        self.folder = RunFolder(self.run)
        self._last_save_time = time.monotonic()
        self._first_step = 0
        self._logged_at = 0  # the step of the last log line: lazy updates are counted from there

    @property
    def cfg(self) -> Config:
        """The run's one config: the plugin's (resolved from the data and frozen by setup); never a copy."""
        return self.plugin.cfg

    # what setup() assembled, read in place (engine/assembly.py): the trainer keeps no copies of them
    @property
    def state(self) -> snapshot.RunState | None:
        """What a checkpoint saves: networks, EMA copies, optimizers, schedules, scalers, data position, ..."""
        return self.parts.state if self.parts else None

    @property
    def nets(self) -> dict[str, nn.Module]:
        return self.parts.state.nets

    @property
    def emas(self) -> dict[str, EmaGenerator]:
        """``train.ema``: each sampled generator's average (empty when off, or before setup)."""
        return self.parts.state.emas if self.parts else {}

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self.parts.state.optimizers

    @property
    def optimizer_groups(self) -> dict[str, list[str]]:
        """Optimizer name -> the networks it steps."""
        return self.parts.optimizer_groups

    @property
    def aux(self) -> dict[str, nn.Module]:
        """The plugin's frozen modules (``build_aux``), placed on the device."""
        return self.parts.step.aux

    @property
    def dataset(self) -> Any:
        """The training data, on the device when it fits there."""
        return self.parts.dataset

    # the counters a checkpoint saves live in ``state`` (engine/snapshot.py); these read and set them there
    @property
    def step(self) -> int:
        """Training steps done."""
        return self.state.step if self.state else 0

    @step.setter
    def step(self, value: int) -> None:
        self.state.step = value

    @property
    def best_value(self) -> float | None:
        """The best value of the best metric so far (``checkpoints/best``)."""
        return self.state.best_value if self.state else None

    @property
    def best_protocol(self) -> dict:
        """How the best value was measured (its protocol card); empty before the first best."""
        return self.state.best_protocol

    @property
    def nonfinite_skipped(self) -> int:
        """Updates skipped for a non-finite loss in this run."""
        return self.state.nonfinite_skipped if self.state else 0

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        """Everything before the first step. What can be refused is refused before the run folder is made;
        a setup that fails after that removes a folder it created (nothing was saved in it yet)."""
        try:
            self._setup()
        except BaseException:
            self.folder.close(failed=True)
            raise

    def _setup(self) -> None:
        tc, world = self.cfg.train, self.world
        preflight.check_config(self.plugin)
        self.device = setup.rank_device(tc.device, world)
        self._owns_process_group = distributed.init(world, self.device, tc.dist_timeout_s)
        setup.seed_everything(tc.seed, tc.deterministic)  # every rank builds the same networks

        # rank 0 first: a dataset it downloads or caches is then read by the others
        dataset = distributed.main_first(lambda: resolve_run(self.plugin), world, then_all=True)
        cfg = self.cfg  # resolved from the data, and frozen from here on
        transforms = cfg.data.transforms  # recorded in checkpoints: a --resume says when the file changed
        transforms_sha256 = ckpt.sha256(Path(transforms)) if transforms else ""
        tc = cfg.train
        self.phases = self.plugin.phases()
        trained = set().union(*(p.trained for p in self.phases))
        optimizer_names = {u.optimizer_name for p in self.phases for u in p.updates}
        aux = self.plugin.build_aux()  # frozen helpers (a VGG): counted in the memory check, then placed
        preflight.check_resources(self.plugin, self.device, trained, optimizer_names, aux)
        resume_from = distributed.main_first(lambda: self.folder.open(self.resume), world)

        self.parts = assembly.assemble(self.plugin, self.phases, aux, dataset, self.device, world)
        try:
            self.sample_inputs = self.plugin.preview_inputs(tc.sample_count, torch.Generator().manual_seed(tc.seed))
        except NotImplementedError:
            self.sample_inputs = None
        if world.rank:  # per-rank streams from here on: dropout and other draws differ between ranks
            setup.seed_everything(setup.rank_seed(tc.seed, world.rank), tc.deterministic)
        self.train_step = TrainStep(self.parts.step)
        self.sampler = TrainingSampler(self.plugin, self.parts, self.device, self.sample_inputs)
        self.hooks: list[Hook] = run_hooks(tc, self.plugin, self.user_hooks)
        self.checkpoints = Checkpoints(
            self.plugin, self.spec, self.folder, self.state, world, self.sampler, transforms_sha256, self.hooks
        )
        if resume_from is not None:
            self.checkpoints.restore(resume_from, self.device)
            self.train_step.step_tensor.fill_(self.step)
        if world.is_main:  # after the checkpoint matched: a refused --resume --set leaves config.yaml as it was
            self.folder.write_config(cfg)
        reason = self.plugin.capturable_reason()
        self.runner, why = build_runner(self.train_step, tc, self.device, world.distributed, reason, self.state.noise)
        if why and world.is_main:
            warnings.warn(f"train.cuda_graph={tc.cuda_graph}: {why}.", stacklevel=2)
        one_checkpoint = setup.checkpoint_bytes(self.nets, trained, [e.module for e in self.emas.values()])
        distributed.main_first(lambda: setup.check_disk_space(self.run, one_checkpoint), world)
        if resume_from is not None:
            self.hooks_pending = self.checkpoints.restore_hooks(resume_from)
        self.view = TrainerView(self)  # what every hook gets: read-only
        self.stop_flag = distributed.StopFlag(world)
        self.ready = True

    def close(self) -> None:
        """Release the run folder and leave the process group if this trainer joined it."""
        self.folder.close()
        if self._owns_process_group:
            distributed.shutdown()
            self._owns_process_group = False

    # ------------------------------------------------------------------ the loop
    def phase_at(self, step: int) -> Phase:
        return phase_at(self.phases, step)

    def fit(self) -> Path:
        """Train up to ``train.max_steps`` generator steps; returns the final checkpoint folder."""
        try:
            return self._fit()
        except StepFailed:  # nothing was trained: a folder this run made goes again, as for a refused setup
            self.folder.close(failed=True)
            raise

    def _fit(self) -> Path:
        if not self.ready:
            self.setup()
        tc, world = self.cfg.train, self.world
        trackers = trackers_of(self.run, tracker_names(tc)) if world.is_main else []
        logger = RunLogger(self.run, self.step, tc.max_steps, trackers, main=world.is_main)
        self.logger = logger
        logger.config(to_dict(self.cfg))
        for net in self.nets.values():
            net.train()
        existing = ckpt.step_checkpoints(self.run)
        current = f"step_{self.step:08d}"
        last_saved = existing[-1] if existing and existing[-1].name == current else None  # nothing new to save yet
        last_saved = distributed.broadcast(last_saved, world)  # every rank must agree on the final save
        previous = signals.stop_after_step(self._asked_to_stop)
        self._last_save_time = time.monotonic()
        self._first_step = self._logged_at = self.step
        try:
            if self.step >= tc.max_steps and self.folder.finished_at() == self.step:
                logger.message(f"run already at step {self.step} >= train.max_steps={tc.max_steps}; nothing to do.")
            elif self.hooks_pending:  # killed after a checkpoint, in its samples/evaluation/hooks
                logger.message(
                    f"the samples, evaluation and hooks due at step {self.step} did not all finish after its "
                    "checkpoint (the process was stopped in them): running them now"
                )
                self._run_hooks(last_saved, max(tc.max_steps, self.step))
            while self.step < tc.max_steps:
                self.stop_flag.start(self._local_flag())  # agreed over the ranks while the step runs
                phase = self.phase_at(self.step)
                raws = self._next_raw_batches(phase, last_saved)
                if self.step == self._first_step:
                    failures.first_step(self.runner, phase, raws, self.step, self.cfg.plugin, self.state.augment)
                else:
                    with self.step_context(self.step):
                        self.runner(phase, raws, self.step)  # no host read inside: the GPU runs ahead
                self.step += 1
                self._after_step()
                agreed = self.stop_flag.result(self._local_flag())
                self.stop_signal = self.stop_signal or agreed // 2
                last_saved = self._between_steps(phase, last_saved, save_due=bool(agreed % 2)) or last_saved
                if self.stop_signal:
                    break
            if last_saved is None or last_saved.name != f"step_{self.step:08d}":
                last_saved = self.save()
            if self.step >= tc.max_steps and world.is_main:
                self.folder.mark_finished(self.step)  # its final hooks ran: a --resume has nothing to do
            logger.checkpoint(last_saved)
        finally:
            signals.restore(previous)
            self._check_nonfinite(stop=False)
            if self.nonfinite_skipped:
                logger.write(self.step, {"nonfinite_skipped": self.nonfinite_skipped})
            logger.close()
            self.folder.close()  # the run folder is free for the next command (a --resume) once fit returns
        if self.stop_signal and self.step < tc.max_steps:
            name = signal.Signals(self.stop_signal).name
            raise TrainingStopped(
                f"stopped by {name} at step {self.step}; checkpoint saved in {last_saved}. "
                "Continue with the same command and --resume.",
                self.stop_signal,
            )
        return last_saved

    def _local_flag(self) -> int:
        """What this rank asks of the step's end, as one number for the stop flag's max over ranks:
        2 x the signal that asks to stop (0: none), + 1 when ``train.checkpoint_minutes`` passed since the
        last checkpoint (a stop saves anyway, so the max losing that bit under a stop loses nothing)."""
        minutes = self.cfg.train.checkpoint_minutes
        due = bool(minutes) and time.monotonic() - self._last_save_time >= 60 * minutes
        return 2 * self.stop_signal + int(due)

    def _between_steps(self, phase: Phase, last_saved: Path | None, save_due: bool) -> Path | None:
        """Logging, the checkpoint, then the hooks (samples, evaluation, ...) after a step; returns a
        checkpoint it wrote.

        The checkpoint comes first: whatever fails after it (a sample grid, an evaluation, a report) has
        the training saved. A failure before it saves the finished step, then stops naming that checkpoint.
        """
        tc, step = self.cfg.train, self.step
        with self._saved_on_failure(last_saved):
            if step % tc.log_every == 0 or step == tc.max_steps or step == self._first_step + 1:
                self._check_nonfinite()  # the first step is logged too: a slow run shows its losses at once
                values = interval_values(
                    self.train_step.meter, self.world, self.optimizers, phase, self._logged_at, step
                )
                kimg = step * tc.batch_size / 1000  # images shown to D on all ranks: batch_size is the global batch
                self.logger.log_interval(step, phase.name, {"kimg": kimg, **values})
                self._logged_at = step
            else:
                self.logger.advance(step)
        saved = None
        scheduled = tc.checkpoint_every and step % tc.checkpoint_every == 0
        if step == tc.max_steps or scheduled or save_due or self.stop_signal:
            saved = self.save()  # its own failure names the last good checkpoint: no second attempt
        self._run_hooks(saved or last_saved, tc.max_steps, record=saved is not None)
        return saved

    def _run_hooks(self, last_saved: Path | None, max_steps: int, record: bool = True) -> None:
        """The hooks due after this step, in order; then, after a checkpoint step, the record that they all
        ran (with their states), so that a resume neither repeats nor loses them."""
        with self._saved_on_failure(last_saved):
            for hook in self.hooks:
                if hook.due(self.step, max_steps):
                    hook(self.view)
        if record:
            self.checkpoints.mark_hooks_done()

    def _saved_on_failure(self, last_saved: Path | None) -> contextlib.AbstractContextManager:
        """A failure in the block saves the step just finished and stops naming it (engine/failures.py)."""
        return failures.saved_on_failure(self.step, last_saved, self.save, self.world.distributed)

    def _asked_to_stop(self, signum: int) -> None:
        """First SIGINT/SIGTERM: finish the step, save, stop (a second one stops at once: engine/signals.py)."""
        self.stop_signal = signum
        self.logger.message(
            f"{signal.Signals(signum).name}: finishing this step and saving a checkpoint "
            "(press Ctrl-C again to stop at once)"
        )

    def _next_raw_batches(self, phase: Phase, last_saved: Path | None) -> list[Batch]:
        """The batches of the next step, as stored (uint8 images) on the device: the step converts them. A
        failing draw past this process's first step saves the steps trained so far (engine/failures.py)."""
        return failures.draw_batches(
            self.state.stream,
            TrainStep.batches_needed(phase, self.step),
            lambda batch: {k: v.to(self.device, non_blocking=True) for k, v in batch.items()},
            self.cfg.data.on_error,
            None if self.step == self._first_step else self._saved_on_failure(last_saved),
        )

    def _after_step(self) -> None:
        """Host work between steps: the schedule writes the next rates into the optimizers' lr tensors."""
        with warnings.catch_warnings():  # a network idle in this phase (SRGAN's D in phase 1) still follows
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)  # the step
            for sched in self.state.schedulers.values():
                sched.step()
        self.sampler.stepped()

    def _check_nonfinite(self, stop: bool = True) -> None:
        """Read the device's count of skipped updates (one host read): say so, or stop (engine/failures.py)."""
        policy = self.cfg.train.nonfinite if stop else "skip"
        failures.check_nonfinite(self.train_step.meter, self.state, policy, self.logger.message, self.run)

    # ------------------------------------------------------------------ sampling and evaluation
    def sampling_generator(self, name: str | None = None) -> nn.Module:
        """The generator ``name`` (default: the plugin's ``generator``) to sample and evaluate with: its EMA
        copy (batch norm calibrated) when EMA is on (engine/sampler.py)."""
        return self.sampler.generator(name, self.step)

    def eval_mode(self) -> contextlib.AbstractContextManager:
        """Networks in eval mode without gradients, training's random streams untouched (engine/sampler.py)."""
        return self.sampler.eval_mode()

    # ------------------------------------------------------------------ checkpoints
    def save(self, folder: Path | None = None, extra: dict[str, Any] | None = None) -> Path:
        """Write a checkpoint (every rank calls this; rank 0 writes it: engine/checkpointing.py), never past a
        non-finite loss under ``train.nonfinite=stop``."""
        if self.ready:
            self._check_nonfinite()
        written = self.checkpoints.write(folder, extra)
        self._last_save_time = time.monotonic()
        return written


def train(
    plugin: GanPlugin,
    out: str | Path,
    spec: PluginSpec | None = None,
    resume: bool | str = False,
    hooks: list[Hook] | None = None,
) -> Path:
    """Train ``plugin`` into ``out``; returns the final checkpoint folder."""
    start = time.perf_counter()
    trainer = Trainer(plugin, out, spec, resume, hooks)
    try:
        folder = trainer.fit()
    finally:
        trainer.close()
    if trainer.world.is_main:
        console.print(f"done in {time.perf_counter() - start:.1f}s; checkpoint {folder}", highlight=False)
    return folder
