"""What a checkpoint holds of a running training, and how it is put back: functions over explicit state.

:class:`RunState` names everything that changes while a run trains: the networks and the EMA copy, the
optimizers, schedules and gradient scalers, the data stream's position, the noise generators, and the
counters (step, best metric, skipped updates). :func:`write` turns it into a checkpoint folder
(:mod:`gantk.io.checkpoint`) and :func:`restore` loads one back into it, so ``--resume`` continues as
if the run had never stopped. Neither knows about the loop, the run folder's lock or the ranks: the
trainer gathers every rank's random state and decides when and where to write.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gantk.data.loader import BatchStream
from gantk.engine.augment import Augmenter
from gantk.engine.ema import EmaGenerator
from gantk.engine.optim import rates_on_device
from gantk.errors import GantkError, NonFiniteError
from gantk.io import checkpoint as ckpt


@dataclass
class RunState:
    """Everything a checkpoint saves of a run, beyond its config."""

    nets: dict[str, nn.Module]
    emas: dict[str, EmaGenerator]  # network name -> its EMA copy (each generator the plugin samples)
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, Any]
    scalers: dict[str, torch.amp.GradScaler]
    stream: BatchStream
    noise: torch.Generator  # the training noise on the device, the same on every rank
    cpu_noise: torch.Generator  # this rank's CPU noise
    augment: Augmenter | None = None  # train.augment's p and ADA's running statistic
    step: int = 0
    best_value: float | None = None
    best_protocol: dict = field(default_factory=dict)  # how best_value was measured (EvalContext.protocol)
    nonfinite_skipped: int = 0


def rng_state(state: RunState) -> dict[str, Any]:
    """This process's random state: Python, NumPy, PyTorch (CPU and CUDA) and the run's two generators."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "noise": state.noise.get_state(),
        "cpu_noise": state.cpu_noise.get_state(),
    }


def training_state(state: RunState, rngs: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything to resume exactly; ``rngs`` holds every rank's random state, rank 0's first."""
    out = {
        "step": state.step,
        "best_value": state.best_value,
        "best_protocol": state.best_protocol,
        "nonfinite_skipped": state.nonfinite_skipped,
        "optimizers": {k: o.state_dict() for k, o in state.optimizers.items()},
        "schedulers": {k: s.state_dict() for k, s in state.schedulers.items()},
        "scalers": {k: s.state_dict() for k, s in state.scalers.items()},
        "data": state.stream.state_dict(),
        "rng": rngs[0],
    }
    if len(rngs) > 1:
        out["world_size"] = len(rngs)
        out["rng_other_ranks"] = rngs[1:]
    if state.emas:
        out["ema_n_averaged"] = next(iter(state.emas.values())).n_averaged(state.step)
    if state.augment is not None:
        out["augment"] = state.augment.state_dict()
    return out


def network_states(state: RunState, ema_modules: dict[str, nn.Module], run: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Every network's weights (and each EMA generator's, as ``<generator>_ema``), refused when not finite:
    a diverged state must never replace, or rotate out, a good checkpoint of ``run``."""
    networks = {k: n.state_dict() for k, n in state.nets.items()}
    diverged = [
        f"{net}.{key}"
        for net, weights in networks.items()
        for key, t in weights.items()
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
    if diverged:
        raise NonFiniteError(
            f"the weights are not finite at step {state.step} ({', '.join(diverged[:4])}); no checkpoint was "
            f"written and the existing ones in {run / 'checkpoints'} are untouched."
        )
    for name, module in ema_modules.items():
        networks[f"{name}_ema"] = module.state_dict()
    return networks


def write(
    folder: Path,
    state: RunState,
    *,
    meta: dict[str, Any],
    rngs: list[dict[str, Any]],
    ema_modules: dict[str, nn.Module],
    run: Path,
    keep: int,
) -> Path:
    """Write checkpoint ``folder`` of ``run``; a ``step_*`` folder then rotates out all but the newest
    ``keep``. Nothing is replaced when the weights are not finite or the disk refuses the write."""
    networks = network_states(state, ema_modules, run)
    try:
        ckpt.save_checkpoint(folder, meta=meta, networks=networks, training_state=training_state(state, rngs))
    except OSError as exc:  # disk full, quota, folder removed: the last good checkpoint is untouched
        kept = ckpt.step_checkpoints(run)
        raise GantkError(
            f"could not write checkpoint {folder} at step {state.step}: {exc.strerror or exc}. Nothing was "
            f"replaced; the last good checkpoint is {kept[-1] if kept else 'none yet'}, and --resume "
            "continues from it once there is room."
        ) from None
    if folder.name.startswith("step_"):
        for old in ckpt.step_checkpoints(run)[: -keep or None]:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def restore(folder: Path, state: RunState, device: torch.device, rank: int, world_size: int) -> str:
    """Load checkpoint ``folder`` into ``state`` (networks, EMA, optimizers, schedules, scalers, data
    position, random state, counters). Returns a note for the user when the checkpoint was written by
    another number of processes (then per-rank random streams are re-seeded), else ""."""
    for name, net in state.nets.items():
        ckpt.load_weights(net, folder / f"{name}.safetensors")
    saved = ckpt.read_training_state(folder)
    for name, ema in state.emas.items():
        ema_file = folder / f"{name}_ema.safetensors"
        if ema_file.exists():
            ckpt.load_weights(ema.module, ema_file)
        else:
            ema.module.load_state_dict(state.nets[name].state_dict())
    for key, opt in state.optimizers.items():
        if key in saved["optimizers"]:
            opt.load_state_dict(saved["optimizers"][key])
            rates_on_device(opt, device)
    for key, sched in state.schedulers.items():
        if key in saved["schedulers"]:
            sched.load_state_dict(saved["schedulers"][key])
    for key, scaler in state.scalers.items():
        if key in saved["scalers"]:
            scaler.load_state_dict(saved["scalers"][key])
    if state.augment is not None and "augment" in saved:  # a run that had no augmentation starts at p
        state.augment.load_state_dict(saved["augment"])
    state.stream.load_state_dict(saved["data"])  # global batches taken: valid on any number of ranks
    note = restore_rng(saved, state, rank, world_size)
    state.step = int(saved["step"])
    state.best_value = saved.get("best_value")
    state.best_protocol = saved.get("best_protocol") or {}  # none before protocol cards: compared with none
    state.nonfinite_skipped = int(saved.get("nonfinite_skipped", 0))
    return note


def restore_rng(saved: dict[str, Any], state: RunState, rank: int, world_size: int) -> str:
    """This rank's random state; on another number of ranks, only what is shared by all of them.

    The data order and ``ctx.randn`` noise are global, so they continue exactly on any number of
    ranks. Per-rank streams (dropout, ``cpu_noise``) continue exactly only on the same number.
    """
    saved_ranks = int(saved.get("world_size", 1))
    rngs = [saved["rng"], *saved.get("rng_other_ranks", [])]
    note = ""
    if saved_ranks != world_size:
        note = (
            f"note: the checkpoint was written by {saved_ranks} process(es) and this run has {world_size}; data "
            "order and noise continue exactly, per-rank random streams (dropout, augmentation) are re-seeded."
        )
        state.noise.set_state(rngs[0]["noise"])
        if rank:  # rank 0's own streams are in the checkpoint whatever the count
            return note
    rng = rngs[rank]
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    state.noise.set_state(rng["noise"])
    state.cpu_noise.set_state(rng["cpu_noise"])
    return note
