"""The training engine: one loop for every plugin.

The engine owns everything that is not the GAN itself: device, seeding, optimizers and schedules,
mixed precision (autocast; one gradient scaler per optimizer for fp16), ``torch.compile``, EMA of the
generator, logging, sample grids, evaluation with a best checkpoint, checkpoints and exact resume, and
data-parallel training under torchrun (:mod:`gantk.engine.distributed`). A plugin supplies networks,
data and loss functions (see :mod:`gantk.plugin`); the loop below calls them.

Under torchrun every rank runs this same loop. Rank 0 alone writes the run folder (logs, samples,
evaluations, checkpoints); the other ranks wait for it wherever the run's state must agree.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gantk import __version__
from gantk.config import to_dict
from gantk.data.datasets import TensorDataset
from gantk.data.loader import BatchStream
from gantk.engine import distributed, preflight
from gantk.engine.ema import EmaGenerator, recalibrate_batchnorm
from gantk.engine.graph import StepRunner, cuda_graph_recorder, resolve_graph_mode
from gantk.engine.logger import RunLogger
from gantk.engine.optim import build_optimizer, build_scheduler, rates_on_device
from gantk.engine.resolve import resolve_run
from gantk.engine.run_folder import RunFolder
from gantk.engine.step import StepParts, TrainStep, autocast
from gantk.errors import GantkError, NonFiniteError, PluginError, RunFailed, StepFailed, TrainingStopped
from gantk.io import checkpoint as ckpt
from gantk.io.images import save_grid
from gantk.plugin import Batch, EvalContext, GanPlugin, Phase
from gantk.registry import PluginSpec

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
#: torch.compile mode per ``train.compile``: the engine captures whole steps as CUDA graphs itself, so
#: torch.compile's own graphs (reduce-overhead, max-autotune) are left off and ask for the engine's
COMPILE_MODES = {"default": "default", "reduce-overhead": "default", "max-autotune": "max-autotune-no-cudagraphs"}
#: in-memory datasets up to this size live on the GPU, so a batch is one index on the device
DEVICE_DATA_BYTES = 2 << 30


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s own random streams; rank 0 keeps ``seed`` (a single process is rank 0)."""
    return seed + 1_000_003 * rank


def select_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GantkError("--device cuda was asked for, but PyTorch sees no CUDA device; use --device cpu or auto.")
    return torch.device(name)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


class Trainer:
    """Trains ``plugin`` into the run folder ``out``; ``resume=True`` continues its newest checkpoint.

    ``spec`` says where the plugin came from (recorded in checkpoints); by default it is looked up."""

    def __init__(
        self, plugin: GanPlugin, out: str | Path, spec: PluginSpec | None = None, resume: bool = False
    ) -> None:
        self.plugin = plugin
        self.cfg = plugin.cfg
        self.run = Path(out)
        self.spec = spec or PluginSpec.of(plugin)  # recorded in every checkpoint: how to find the plugin again
        self.resume = resume
        self.step = 0
        self.best_value: float | None = None
        self.ready = False  # setup() done
        self.nonfinite_skipped = 0
        self.stop_signal = 0  # set by SIGINT/SIGTERM: finish the step, save, stop
        self.world = distributed.world_from_env()
        self._owns_process_group = False
        self.folder = RunFolder(self.run)
        self._last_save_time = time.monotonic()
        self._first_step = 0

    # ------------------------------------------------------------------ setup
    def _select_device(self) -> torch.device:
        device = select_device(self.cfg.train.device)
        if self.world.distributed and device.type == "cuda":  # one GPU per process: the local rank's
            if self.world.local_rank >= torch.cuda.device_count():
                raise GantkError(
                    f"local rank {self.world.local_rank} has no GPU: this node has {torch.cuda.device_count()}; "
                    "start at most that many processes per node (--nproc / --nproc_per_node)."
                )
            device = torch.device("cuda", self.world.local_rank)
            torch.cuda.set_device(device)
        return device

    def setup(self) -> None:
        """Everything before the first step. What can be refused is refused before the run folder is made;
        a setup that fails after that removes a folder it created (nothing was saved in it yet)."""
        try:
            self._setup()
        except BaseException:
            self.folder.close(failed=True)
            raise

    def _setup(self) -> None:
        cfg, tc, world = self.cfg, self.cfg.train, self.world
        preflight.check_config(self.plugin)
        self.device = self._select_device()
        self._owns_process_group = distributed.init(world, self.device, tc.dist_timeout_s)
        seed_everything(tc.seed, tc.deterministic)  # every rank builds the same networks

        # rank 0 first: a dataset it downloads or caches is then read by the others
        self.dataset = distributed.main_first(lambda: resolve_run(self.plugin), world, then_all=True)
        self.cfg = cfg = self.plugin.cfg  # resolved from the data, and frozen from here on
        tc = cfg.train
        self.phases = self.plugin.phases()
        trained = {u.network for p in self.phases for u in p.updates}
        preflight.check_resources(self.plugin, self.device, trained)
        resume_from = distributed.main_first(lambda: self.folder.open(self.resume), world)

        nets = self.plugin.build_networks()
        if self.plugin.generator not in nets:
            raise PluginError(
                f"plugin '{cfg.plugin}': build_networks() returned {sorted(nets)}, without its generator "
                f"'{self.plugin.generator}'."
            )
        memory_format = torch.channels_last if tc.channels_last else torch.preserve_format
        self.nets: dict[str, nn.Module] = {k: v.to(self.device, memory_format=memory_format) for k, v in nets.items()}

        self._check_phases()
        self.ema: EmaGenerator | None = None
        if tc.ema.enabled:  # copied before batch norm is synchronised: rank 0 samples with it alone
            self.ema = EmaGenerator(self.nets[self.plugin.generator], tc.ema.decay, tc.ema.start_step)
        self._ema_calibrated_at: int | None = None
        if world.distributed and tc.sync_batchnorm:
            self.nets = {k: distributed.convert_sync_batchnorm(v, self.device) for k, v in self.nets.items()}
        self.optimizers = {
            name: build_optimizer(self.nets[name].parameters(), cfg.optim[name], self.device)
            for name in sorted(trained)
        }
        self.schedulers = {k: build_scheduler(o, cfg.schedule, tc.max_steps) for k, o in self.optimizers.items()}
        self.autocast_dtype = DTYPES.get(tc.precision)
        self.scalers = (
            {k: torch.amp.GradScaler(self.device.type) for k in self.optimizers} if tc.precision == "fp16" else {}
        )
        self._wrap_networks()

        self.dataset = self._data_on_device(self.dataset)
        self.stream = BatchStream(
            self.dataset,
            tc.batch_size,
            tc.seed,
            cfg.data.num_workers,
            pin_memory=self.device.type == "cuda",
            rank=world.rank,
            world_size=world.size,
        )
        self.noise = torch.Generator(device=self.device).manual_seed(tc.seed)  # the same on every rank
        self.cpu_noise = torch.Generator().manual_seed(rank_seed(tc.seed, world.rank) + 1)
        try:
            self.sample_inputs = self.plugin.sample_inputs(tc.sample_count, torch.Generator().manual_seed(tc.seed))
        except NotImplementedError:
            self.sample_inputs = None
        if world.rank:  # per-rank streams from here on: dropout and other draws differ between ranks
            seed_everything(rank_seed(tc.seed, world.rank), tc.deterministic)
        self.train_step = TrainStep(
            StepParts(
                plugin=self.plugin,
                nets=self.nets,
                step_nets=self.step_nets,
                frozen_step_nets=self.frozen_step_nets,
                optimizers=self.optimizers,
                scalers=self.scalers,
                ema=self.ema,
                device=self.device,
                noise=self.noise,
                cpu_noise=self.cpu_noise,
                world=world,
                autocast_dtype=self.autocast_dtype,
                channels_last=tc.channels_last,
                grad_clip=tc.grad_clip,
                nonfinite=tc.nonfinite,
                max_steps=tc.max_steps,
            )
        )
        if resume_from is not None:
            self._load(resume_from)
        if world.is_main:  # after the checkpoint matched: a refused --resume --set leaves config.yaml as it was
            self.folder.write_config(cfg)
        mode, why = resolve_graph_mode(
            tc.cuda_graph, self.device, world.distributed, tc.compile, self.plugin.capturable_reason()
        )
        if why and world.is_main:
            warnings.warn(f"train.cuda_graph={tc.cuda_graph}: {why}.", stacklevel=2)
        record = cuda_graph_recorder([self.noise]) if mode == "on" else None
        self.runner = StepRunner(self.train_step, record, check_host_reads=tc.compile == "off")
        distributed.main_first(self._check_disk_space, world)
        self.stop_flag = distributed.StopFlag(world)
        self.ready = True

    def _data_on_device(self, dataset):
        """An in-memory dataset that fits moves to the GPU: each batch is then one index there."""
        if self.device.type != "cuda" or not isinstance(dataset, TensorDataset):
            return dataset
        size = sum(t.numel() * t.element_size() for t in dataset.tensors.values())
        if size > min(DEVICE_DATA_BYTES, torch.cuda.get_device_properties(self.device).total_memory // 8):
            return dataset
        return dataset.to(self.device)

    def _wrap_networks(self) -> None:
        """What the loss functions call: DDP around each trained network, compiled when asked.

        A network frozen in an update (D during the G update) is called without its DDP wrapper: it
        computes no weight gradients there, so there is nothing to synchronise.
        """
        tc = self.cfg.train
        if tc.compile != "off" and tc.channels_last and self.device.type == "cuda" and self.world.is_main:
            warnings.warn(  # measured on an H100 with PyTorch 2.11; see benchmarks/README.md
                "train.compile with train.channels_last can fail in inductor's convolution backward on CUDA "
                "(a stride assertion); if it does, drop one of them. channels_last with train.cuda_graph "
                "(compile off) is the fastest measured setting.",
                stacklevel=2,
            )

        def compiled(module: nn.Module) -> nn.Module:
            return module if tc.compile == "off" else torch.compile(module, mode=COMPILE_MODES[tc.compile])

        self.step_nets: dict[str, nn.Module] = {}
        self.frozen_step_nets: dict[str, nn.Module] = {}
        for name, net in self.nets.items():
            if self.world.distributed and name in self.optimizers:
                ids = [self.device.index] if self.device.type == "cuda" else None
                self.step_nets[name] = compiled(DistributedDataParallel(net, device_ids=ids))
                self.frozen_step_nets[name] = compiled(net)
            else:
                self.step_nets[name] = self.frozen_step_nets[name] = compiled(net)

    def close(self) -> None:
        """Release the run folder and leave the process group if this trainer joined it."""
        self.folder.close()
        if self._owns_process_group:
            distributed.shutdown()
            self._owns_process_group = False

    def checkpoint_bytes(self) -> int:
        """About how many bytes one checkpoint takes: every network, the EMA copy, Adam's two moments."""

        def size(tensors) -> int:
            return sum(t.numel() * t.element_size() for t in tensors)

        total = sum(size(n.state_dict().values()) for n in self.nets.values())
        total += sum(2 * size(self.nets[name].parameters()) for name in self.optimizers)
        if self.ema is not None:
            total += size(self.ema.module.state_dict().values())
        return total

    def _check_disk_space(self) -> None:
        """Refuse to start a run whose checkpoints cannot be written (a new one is written beside the old)."""
        one = self.checkpoint_bytes()
        need = 2 * one + (64 << 20)  # + slack for samples, logs, JSON
        free = shutil.disk_usage(self.run).free
        if free < need:
            raise GantkError(
                f"not enough free disk space for run folder {self.run}: a checkpoint takes about "
                f"{one / 1e6:.0f} MB and a new one is written beside the last before it "
                f"replaces it, so about {need / 1e6:.0f} MB must be free; {free / 1e6:.0f} MB are. Free some "
                "space or choose another --out."
            )

    def _check_phases(self) -> None:
        cfg = self.cfg
        if not self.phases:
            raise PluginError(f"plugin '{cfg.plugin}': phases() returned no phase.")
        for phase in self.phases:
            if not phase.updates:
                raise PluginError(f"plugin '{cfg.plugin}': phase '{phase.name}' has no updates.")
            for upd in phase.updates:
                for name in (upd.network, *upd.freeze):
                    if name not in self.nets:
                        raise PluginError(
                            f"plugin '{cfg.plugin}': phase '{phase.name}' names network '{name}', but "
                            f"build_networks() made only {sorted(self.nets)}."
                        )
                if upd.network not in cfg.optim:
                    raise GantkError(
                        f"network '{upd.network}' is trained in phase '{phase.name}' but has no optimizer: add "
                        f"optim.{upd.network} to the config (for example --set optim.{upd.network}.lr=2e-4)."
                    )
                if upd.repeat < 1:
                    raise PluginError(f"plugin '{cfg.plugin}': update of '{upd.network}' has repeat={upd.repeat}.")

    # ------------------------------------------------------------------ the loop
    def phase_at(self, step: int) -> Phase:
        start = 0
        for phase in self.phases:
            if phase.steps is None or step < start + phase.steps:
                return phase
            start += phase.steps
        return self.phases[-1]

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
        logger = RunLogger(
            self.run,
            self.step,
            tc.max_steps,
            tc.tensorboard,
            main=world.is_main,
        )
        self.logger = logger
        for net in self.nets.values():
            net.train()
        existing = ckpt.step_checkpoints(self.run)
        current = f"step_{self.step:08d}"
        last_saved = existing[-1] if existing and existing[-1].name == current else None  # nothing new to save yet
        last_saved = distributed.broadcast(last_saved, world)  # every rank must agree on the final save
        previous = self._install_signal_handlers()
        self._last_save_time = time.monotonic()
        self._first_step = self.step
        try:
            if self.step >= tc.max_steps:
                logger.message(f"run already at step {self.step} >= train.max_steps={tc.max_steps}; nothing to do.")
            while self.step < tc.max_steps:
                self.stop_flag.start(self._local_flag())  # agreed over the ranks while the step runs
                phase = self.phase_at(self.step)
                raws = [self._next_raw_batch() for _ in range(TrainStep.batches_needed(phase))]
                if self.step == self._first_step:
                    self._first_step_checked(phase, raws)
                else:
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
        finally:
            self._restore_signal_handlers(previous)
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

    def _first_step_checked(self, phase: Phase, raws: list[Batch]) -> None:
        """The first step of this process, with its failure explained: a config the networks or the data
        cannot take (a depth too great for the image size, a batch of the wrong kind) fails here, after
        every range was checked but before anything was trained, so nothing is lost by stopping."""
        try:
            self.runner(phase, raws, self.step)
        except (GantkError, KeyboardInterrupt):
            raise
        except Exception as exc:
            if os.environ.get("GANTK_DEBUG"):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise StepFailed(
                f"the first training step of plugin '{self.cfg.plugin}' failed: {type(exc).__name__}: {first}. "
                "Nothing was trained by this command, and no checkpoint changed. This is usually a combination of "
                "settings the networks cannot take (depths for the image size, sizes for the data); check the "
                "model.* and data.* values (GANTK_DEBUG=1 shows where it failed)."
            ) from exc

    def _local_flag(self) -> int:
        """What this rank asks of the step's end, as one number for the stop flag's max over ranks:
        2 x the signal that asks to stop (0: none), + 1 when ``train.checkpoint_minutes`` passed since the
        last checkpoint (a stop saves anyway, so the max losing that bit under a stop loses nothing)."""
        minutes = self.cfg.train.checkpoint_minutes
        due = bool(minutes) and time.monotonic() - self._last_save_time >= 60 * minutes
        return 2 * self.stop_signal + int(due)

    def _between_steps(self, phase: Phase, last_saved: Path | None, save_due: bool) -> Path | None:
        """Logging, checkpoints, samples and evaluation after a step; returns a checkpoint it wrote.

        The checkpoint comes first: whatever fails after it (a sample grid, an evaluation, a report) has
        the training saved. A failure before it saves the finished step, then stops naming that checkpoint.
        """
        tc, step = self.cfg.train, self.step
        with self._saved_on_failure(last_saved):
            if step % tc.log_every == 0 or step == tc.max_steps or step == self._first_step + 1:
                self._check_nonfinite()  # the first step is logged too: a slow run shows its losses at once
                values = self.train_step.meter.means(lambda means: distributed.mean_over_ranks(means, self.world))
                lrs = {f"lr/{k}": float(o.param_groups[0]["lr"]) for k, o in self.optimizers.items()}
                self.logger.log_interval(step, phase.name, {**values, **lrs})
            else:
                self.logger.advance(step)
        saved = None
        scheduled = tc.checkpoint_every and step % tc.checkpoint_every == 0
        if step == tc.max_steps or scheduled or save_due or self.stop_signal:
            saved = self.save()  # its own failure names the last good checkpoint: no second attempt
        with self._saved_on_failure(saved or last_saved):
            if tc.sample_every and (step % tc.sample_every == 0 or step == tc.max_steps):
                self.save_samples()
            if tc.eval_every and (step % tc.eval_every == 0 or step == tc.max_steps):
                self.evaluate()
        return saved

    @contextlib.contextmanager
    def _saved_on_failure(self, last_saved: Path | None):
        """A failure in the block saves the step just finished (unless ``last_saved`` is it) and stops with
        an error naming that checkpoint. Under torchrun it propagates as is: a save is collective, and the
        ranks cannot agree on one from here."""
        try:
            yield
        except (NonFiniteError, TrainingStopped, KeyboardInterrupt):
            raise
        except Exception as exc:
            if self.world.distributed:
                raise
            current = f"step_{self.step:08d}"
            kept = last_saved if last_saved is not None and last_saved.name == current else self.save()
            raise RunFailed(
                f"{type(exc).__name__ if not isinstance(exc, GantkError) else 'error'} after step {self.step}: "
                f"{exc} The training is saved: checkpoint {kept}. Fix the cause and continue with the same "
                "command and --resume."
            ) from exc

    def _install_signal_handlers(self) -> dict:
        """First SIGINT/SIGTERM: finish the step, save, stop. A second one: stop at once."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum, frame):
            if self.stop_signal:
                raise KeyboardInterrupt
            self.stop_signal = signum
            self.logger.message(
                f"{signal.Signals(signum).name}: finishing this step and saving a checkpoint "
                "(press Ctrl-C again to stop at once)"
            )

        return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signal_handlers(previous: dict) -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    def _next_raw_batch(self) -> Batch:
        """The stream's next batch on the device, as stored (uint8 images): the step converts it."""
        return {k: v.to(self.device, non_blocking=True) for k, v in next(self.stream).items()}

    def _autocast(self) -> contextlib.AbstractContextManager:
        return autocast(self.device, self.autocast_dtype)

    def _after_step(self) -> None:
        """Host work between steps: the schedule writes the next rates into the optimizers' lr tensors."""
        with warnings.catch_warnings():  # a network idle in this phase (SRGAN's D in phase 1) still follows
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)  # the step
            for sched in self.schedulers.values():
                sched.step()
        self._ema_calibrated_at = None

    def _check_nonfinite(self, stop: bool = True) -> None:
        """Read the device's count of skipped updates (one host read): say so, or stop under ``stop``.

        Called at log intervals, before every checkpoint and at the end. A skipped update changed
        nothing, so under ``train.nonfinite=stop`` the weights are still those of before the bad step,
        but no checkpoint is written past it.
        """
        for net, (count, first) in self.train_step.meter.skipped().items():
            self.nonfinite_skipped += count
            if stop and self.cfg.train.nonfinite == "stop":
                raise NonFiniteError(
                    f"the loss of '{net}' is not finite at step {first}; stopped (train.nonfinite=stop). The "
                    f"newest checkpoint in {self.run / 'checkpoints'} is intact."
                )
            self.logger.message(
                f"step {first}: non-finite loss for '{net}'; update skipped"
                + (f" ({count} updates skipped by step {self.step})" if count > 1 else "")
            )

    # ------------------------------------------------------------------ sampling and evaluation
    def sampling_generator(self) -> nn.Module:
        """The generator to sample and evaluate with: the EMA one (batch norm calibrated) when enabled."""
        if self.ema is None:
            return self.nets[self.plugin.generator]
        if self._ema_calibrated_at != self.step:
            self._calibrate_ema()
            self._ema_calibrated_at = self.step
        return self.ema.module

    def _calibrate_ema(self) -> None:
        tc = self.cfg.train
        if not tc.ema.calibration_batches or self.sample_inputs is None:
            return  # no inputs to draw (image-to-image): the raw generator's statistics stay
        g = torch.Generator().manual_seed(tc.seed + 2)  # the same batches every time: deterministic
        batches = (self.plugin.sample_inputs(tc.batch_size, g) for _ in range(tc.ema.calibration_batches))
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda), torch.no_grad(), self._autocast():
            recalibrate_batchnorm(
                self.ema.module,
                batches,
                lambda G, inputs: self.plugin.generate(G, {k: v.to(self.device) for k, v in inputs.items()}),
            )

    @contextlib.contextmanager
    def _eval_mode(self):
        """Networks in eval mode without gradients; training mode is restored afterwards.

        Eval mode keeps sampling free of side effects (no batch-norm statistics updated, no dropout
        noise drawn), so when or how often samples are taken never changes the training itself.
        """
        modes = {k: n.training for k, n in self.nets.items()}
        for n in self.nets.values():
            n.eval()
        if self.ema is not None:
            self.ema.module.eval()
        # random draws in here (a plugin's evaluation) must not move training's streams: the checkpoint of
        # this step is written before samples and evaluation, and a resumed run does not repeat them
        cuda = [self.device] if self.device.type == "cuda" else []
        python_state, numpy_state = random.getstate(), np.random.get_state()
        try:  # rank 0 alone: batch norm in train mode (pix2pix's test mode) must not wait for the others
            with torch.random.fork_rng(devices=cuda), torch.no_grad(), self._autocast(), distributed.local_batchnorm():
                yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
            for k, n in self.nets.items():
                n.train(modes[k])

    def save_samples(self) -> Path | None:
        """A sample grid in ``samples/`` (rank 0 only; the other ranks go on training)."""
        if self.sample_inputs is None or not self.world.is_main:
            return None
        inputs = {k: v.to(self.device) for k, v in self.sample_inputs.items()}
        with self._eval_mode():
            images = self.plugin.generate(self.sampling_generator(), inputs).float()
        path = self.run / "samples" / f"step_{self.step:08d}.png"
        save_grid(images, path)
        return path

    def evaluate(self) -> dict[str, float]:
        """The plugin's metrics, computed on rank 0 and shared; a better best metric saves ``best``."""

        def on_main() -> dict[str, float]:
            nets = dict(self.nets)
            nets[self.plugin.generator] = self.sampling_generator()
            ctx = EvalContext(self.device, self.step, self.run / "eval")
            with self._eval_mode():
                return {k: float(v) for k, v in self.plugin.evaluate(nets, ctx).items()}

        metrics = distributed.main_first(on_main, self.world)
        if not metrics:
            return {}
        self.logger.write(self.step, {f"eval/{k}": float(v) for k, v in metrics.items()})
        self.logger.message(f"eval at step {self.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        name = self.cfg.train.best_metric or self.plugin.best_metric
        mode = self.cfg.train.best_mode if self.cfg.train.best_metric else self.plugin.best_mode
        if name and self.phase_at(max(0, self.step - 1)).keep_best:  # the phase of the step just done
            if name not in metrics:
                raise PluginError(
                    f"best metric '{name}' is not among the evaluation metrics {sorted(metrics)}; set train.best_metric."
                )
            value = float(metrics[name])
            better = self.best_value is None or (value < self.best_value if mode == "min" else value > self.best_value)
            if better and math.isfinite(value):
                self.best_value = value
                self.save(self.run / "checkpoints" / "best", extra={"best_metric": name, "best_value": value})
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def _meta(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "gantk_version": __version__,
            "plugin": self.spec.to_meta(),
            "generator": self.plugin.generator,
            "step": self.step,
            "config": to_dict(self.cfg),
            **(extra or {}),
        }

    def _rng_state(self) -> dict[str, Any]:
        return {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "noise": self.noise.get_state(),
            "cpu_noise": self.cpu_noise.get_state(),
        }

    def _training_state(self, rngs: list[dict[str, Any]]) -> dict[str, Any]:
        """Everything to resume exactly; ``rngs`` holds every rank's random state, rank 0's first."""
        state = {
            "step": self.step,
            "best_value": self.best_value,
            "nonfinite_skipped": self.nonfinite_skipped,
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scalers": {k: s.state_dict() for k, s in self.scalers.items()},
            "data": self.stream.state_dict(),
            "rng": rngs[0],
        }
        if len(rngs) > 1:
            state["world_size"] = len(rngs)
            state["rng_other_ranks"] = rngs[1:]
        if self.ema is not None:
            state["ema_n_averaged"] = self.ema.n_averaged(self.step)
        return state

    def save(self, folder: Path | None = None, extra: dict[str, Any] | None = None) -> Path:
        """Write a checkpoint (every rank calls this; rank 0 writes it, with every rank's random state)."""
        if self.ready:
            self._check_nonfinite()  # never checkpoint past a non-finite loss under nonfinite=stop
        rngs = distributed.gather(self._rng_state(), self.world)
        written = distributed.main_first(lambda: self._write_checkpoint(folder, extra, rngs), self.world)
        self._last_save_time = time.monotonic()
        return written

    def _write_checkpoint(self, folder: Path | None, extra: dict[str, Any] | None, rngs: list[dict[str, Any]]) -> Path:
        folder = folder or self.run / "checkpoints" / f"step_{self.step:08d}"
        networks = {k: n.state_dict() for k, n in self.nets.items()}
        diverged = [
            f"{net}.{key}"
            for net, state in networks.items()
            for key, t in state.items()
            if t.is_floating_point() and not bool(torch.isfinite(t).all())
        ]
        if diverged:  # never let a diverged state replace (or rotate out) a good checkpoint
            raise NonFiniteError(
                f"the weights are not finite at step {self.step} ({', '.join(diverged[:4])}); no checkpoint was "
                f"written and the existing ones in {self.run / 'checkpoints'} are untouched."
            )
        if self.ema is not None:
            networks[f"{self.plugin.generator}_ema"] = self.sampling_generator().state_dict()
        try:
            ckpt.save_checkpoint(
                folder, meta=self._meta(extra), networks=networks, training_state=self._training_state(rngs)
            )
        except OSError as exc:  # disk full, quota, folder removed: the last good checkpoint is untouched
            kept = ckpt.step_checkpoints(self.run)
            raise GantkError(
                f"could not write checkpoint {folder} at step {self.step}: {exc.strerror or exc}. Nothing was "
                f"replaced; the last good checkpoint is {kept[-1] if kept else 'none yet'}, and --resume "
                "continues from it once there is room."
            ) from None
        if folder.name.startswith("step_"):
            for old in ckpt.step_checkpoints(self.run)[: -self.cfg.train.keep_checkpoints or None]:
                shutil.rmtree(old, ignore_errors=True)
        return folder

    def _load(self, folder: Path) -> None:
        for name, net in self.nets.items():
            ckpt.load_weights(net, folder / f"{name}.safetensors")
        state = ckpt.read_training_state(folder)
        if self.ema is not None:
            ema_file = folder / f"{self.plugin.generator}_ema.safetensors"
            if ema_file.exists():
                ckpt.load_weights(self.ema.module, ema_file)
            else:
                self.ema.module.load_state_dict(self.nets[self.plugin.generator].state_dict())
        for key, opt in self.optimizers.items():
            if key in state["optimizers"]:
                opt.load_state_dict(state["optimizers"][key])
                rates_on_device(opt, self.device)
        for key, sched in self.schedulers.items():
            if key in state["schedulers"]:
                sched.load_state_dict(state["schedulers"][key])
        for key, scaler in self.scalers.items():
            if key in state["scalers"]:
                scaler.load_state_dict(state["scalers"][key])
        self.stream.load_state_dict(state["data"])  # global batches taken: valid on any number of ranks
        self._load_rng(state)
        self.step = int(state["step"])
        self.train_step.step_tensor.fill_(self.step)
        self.best_value = state.get("best_value")
        self.nonfinite_skipped = int(state.get("nonfinite_skipped", 0))
        if not self.world.is_main:
            return
        self.folder.tidy(self.step)
        print_path = folder.relative_to(self.run) if folder.is_relative_to(self.run) else folder
        from gantk.engine.logger import console

        console.print(f"resuming from {print_path} at step {self.step}", highlight=False)

    def _load_rng(self, state: dict[str, Any]) -> None:
        """This rank's random state; on another number of ranks, only what is shared by all of them.

        The data order and ``ctx.randn`` noise are global, so they continue exactly on any number of
        ranks. Per-rank streams (dropout, ``cpu_noise``) continue exactly only on the same number.
        """
        saved_ranks = int(state.get("world_size", 1))
        rngs = [state["rng"], *state.get("rng_other_ranks", [])]
        shared = rngs[0]["noise"]
        if saved_ranks != self.world.size:
            if self.world.is_main:
                from gantk.engine.logger import console

                console.print(
                    f"note: the checkpoint was written by {saved_ranks} process(es) and this run has "
                    f"{self.world.size}; data order and noise continue exactly, per-rank random streams "
                    "(dropout, augmentation) are re-seeded.",
                    highlight=False,
                )
            self.noise.set_state(shared)
            if self.world.rank:  # rank 0's own streams are in the checkpoint whatever the count
                return
        rng = rngs[self.world.rank]
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.noise.set_state(rng["noise"])
        self.cpu_noise.set_state(rng["cpu_noise"])


def train(plugin: GanPlugin, out: str | Path, spec: PluginSpec | None = None, resume: bool = False) -> Path:
    """Train ``plugin`` into ``out``; returns the final checkpoint folder."""
    start = time.perf_counter()
    trainer = Trainer(plugin, out, spec, resume)
    try:
        folder = trainer.fit()
    finally:
        trainer.close()
    if trainer.world.is_main:
        from gantk.engine.logger import console

        console.print(f"done in {time.perf_counter() - start:.1f}s; checkpoint {folder}", highlight=False)
    return folder
