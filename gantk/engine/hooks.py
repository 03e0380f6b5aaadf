"""The engine's own hooks: a sample grid every ``train.sample_every`` steps, evaluation (and the best
checkpoint) every ``train.eval_every``. They use only what any hook can (:class:`gantk.plugin.Hook`), so
a plugin's or a user's hook runs on the same footing.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from gantk import __version__
from gantk.config import Config
from gantk.engine import distributed
from gantk.engine.distributed import World
from gantk.engine.logger import RunLogger
from gantk.errors import ConfigError, PluginError
from gantk.io.images import save_grid
from gantk.plugin import EvalContext, GanPlugin, Hook, Phase


class Trainer(Protocol):
    """What a hook may use of :class:`gantk.engine.Trainer` (the engine's own hooks use nothing else)."""

    plugin: GanPlugin
    cfg: Config
    run: Path  # the run folder
    step: int  # steps done
    best_value: float | None
    best_protocol: dict
    emas: dict  # network name -> its EMA copy
    device: torch.device
    world: World
    logger: RunLogger
    nets: dict[str, nn.Module]
    sample_inputs: dict[str, torch.Tensor] | None

    def sampling_generator(self, name: str | None = None) -> nn.Module: ...
    def eval_mode(self) -> contextlib.AbstractContextManager: ...
    def phase_at(self, step: int) -> Phase: ...
    def save(self, folder: Path | None = None, extra: dict[str, Any] | None = None) -> Path: ...


class SampleGrid(Hook):
    """``samples/step_XXXXXXXX.png`` from the same inputs every time (rank 0 only; the others go on)."""

    def __call__(self, trainer: Trainer) -> None:
        if trainer.sample_inputs is None or not trainer.world.is_main:
            return
        inputs = {k: v.to(trainer.device) for k, v in trainer.sample_inputs.items()}
        with trainer.eval_mode():
            images = trainer.plugin.generate(trainer.sampling_generator(), inputs).float()
        save_grid(images, trainer.run / "samples" / f"step_{trainer.step:08d}.png")


def protocol_differences(a: dict, b: dict, ignore: tuple[str, ...] = ("gantk",)) -> list[str]:
    """``key: A != B`` for each protocol entry that differs (the gantk version is recorded, not compared)."""
    keys = sorted((set(a) | set(b)) - set(ignore))
    return [f"{k}: {a.get(k)!r} != {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


class Evaluate(Hook):
    """The plugin's metrics, computed on rank 0 and shared; a better best metric saves ``checkpoints/best``."""

    def __call__(self, trainer: Trainer) -> None:
        plugin, cfg = trainer.plugin, trainer.cfg

        def on_main() -> tuple[dict[str, float], dict]:
            nets = dict(trainer.nets)
            for name in plugin.sampled_networks():  # the EMA copies, when on
                nets[name] = trainer.sampling_generator(name)
            ctx = EvalContext(
                trainer.device, trainer.step, trainer.run / "eval", run_dir=trainer.run, cache=trainer.eval_cache
            )
            ctx.protocol.update(generator="ema" if plugin.generator in trainer.emas else "raw", gantk=__version__)
            with trainer.eval_mode():
                return {k: float(v) for k, v in plugin.evaluate(nets, ctx).items()}, ctx.protocol

        metrics, protocol = distributed.main_first(on_main, trainer.world)
        if not metrics:
            return
        trainer.logger.write(
            trainer.step, {**{f"eval/{k}": float(v) for k, v in metrics.items()}, "eval_protocol": protocol}
        )
        trainer.logger.message(f"eval at step {trainer.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        name = cfg.train.best_metric or plugin.best_metric()
        mode = cfg.train.best_mode if cfg.train.best_metric else plugin.best_mode
        if not name or not trainer.phase_at(max(0, trainer.step - 1)).keep_best:  # the phase of the step just done
            return
        if name not in metrics:
            raise PluginError(
                f"best metric '{name}' is not among the evaluation metrics {sorted(metrics)}; set train.best_metric."
            )
        value, best = float(metrics[name]), trainer.best_value
        # a best from before protocol cards has none, and is compared as before
        differs = (
            protocol_differences(trainer.best_protocol, protocol) if best is not None and trainer.best_protocol else []
        )
        if differs:
            raise ConfigError(
                f"eval at step {trainer.step}: {name} {value:.4g} cannot be compared with checkpoints/best's "
                f"{best:.4g}: they were measured differently ({'; '.join(differs)}). Evaluate as the best was "
                "evaluated (the same eval.* keys and data), or move checkpoints/best aside to start a new best."
            )
        better = best is None or (value < best if mode == "min" else value > best)
        if better and math.isfinite(value):
            trainer.best_value, trainer.best_protocol = value, protocol
            extra = {"best_metric": name, "best_value": value, "eval_protocol": protocol}
            trainer.save(trainer.run / "checkpoints" / "best", extra=extra)
