"""The engine's own hooks: a sample grid every ``train.sample_every`` steps, evaluation (and the best
checkpoint) every ``train.eval_every``, and the read-only view of the trainer every hook gets
(:class:`TrainerView`). They use only what any hook can (:class:`gantk.plugin.RunView`), so a plugin's
or a user's hook runs on the same footing.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from gantk import __version__
from gantk.config import Config
from gantk.engine import distributed
from gantk.engine.distributed import World
from gantk.engine.logger import RunLogger
from gantk.errors import ConfigError, PluginError
from gantk.io.images import save_grid
from gantk.plugin import EvalContext, GanPlugin, Hook, Phase, RunView


def _hook_key(index: int, hook: Any) -> str:
    return f"{index}:{type(hook).__qualname__}"  # position and class: a reordered list is not mixed up


def hook_states(hooks: list[Any]) -> dict[str, dict[str, Any]]:
    """The non-empty :meth:`Hook.state_dict` of each hook, by position and class; a state JSON cannot hold
    is refused naming the hook (a checkpoint keeps it in config.json)."""
    states = {}
    for i, hook in enumerate(hooks):
        state = hook.state_dict() if hasattr(hook, "state_dict") else {}  # any object with due() and __call__
        try:
            json.dumps(state, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise PluginError(
                f"hook {type(hook).__qualname__}.state_dict() returned what JSON cannot hold ({exc}); return "
                "numbers, strings, lists and dicts (a checkpoint keeps it in config.json)."
            ) from None
        if state:
            states[_hook_key(i, hook)] = state
    return states


def restore_hook_states(hooks: list[Any], saved: dict[str, Any]) -> list[str]:
    """Give each hook its saved state (:meth:`Hook.load_state_dict`); returns the saved keys no hook of
    the same class stands at now."""
    mine = {_hook_key(i, h): h for i, h in enumerate(hooks)}
    unknown = []
    for key, state in saved.items():
        if key in mine and hasattr(mine[key], "load_state_dict"):
            mine[key].load_state_dict(state)
        elif key not in mine:
            unknown.append(key)
    return unknown


class TrainerView:
    """The :class:`gantk.plugin.RunView` the engine gives every hook: read-only properties of the
    trainer, and the few things a hook may ask of it. A hook cannot reassign the trainer's parts."""

    def __init__(self, trainer: Any) -> None:
        self._trainer = trainer

    @property
    def step(self) -> int:
        return self._trainer.step

    @property
    def cfg(self) -> Config:
        return self._trainer.cfg

    @property
    def plugin(self) -> GanPlugin:
        return self._trainer.plugin

    @property
    def run(self) -> Path:
        return self._trainer.run

    @property
    def world(self) -> World:
        return self._trainer.world

    @property
    def device(self) -> torch.device:
        return self._trainer.device

    @property
    def logger(self) -> RunLogger:
        return self._trainer.logger

    @property
    def nets(self) -> Mapping[str, nn.Module]:
        return MappingProxyType(self._trainer.nets)

    @property
    def sample_inputs(self) -> dict[str, torch.Tensor] | None:
        return self._trainer.sample_inputs

    @property
    def best_value(self) -> float | None:
        return self._trainer.best_value

    @property
    def best_protocol(self) -> dict[str, Any]:
        return dict(self._trainer.best_protocol)

    def sampling_generator(self, name: str | None = None) -> nn.Module:
        return self._trainer.sampling_generator(name)

    def eval_mode(self) -> contextlib.AbstractContextManager:
        return self._trainer.eval_mode()

    def phase_at(self, step: int) -> Phase:
        return self._trainer.phase_at(step)

    def eval_context(self) -> EvalContext:
        """The context of an evaluation at this step: reports under ``eval/``, the run's evaluation cache,
        and a protocol card that already says which generator (EMA or raw) and gantk version scored."""
        t = self._trainer
        ctx = EvalContext(t.device, t.step, t.run / "eval", run_dir=t.run, cache=t.eval_cache)
        ctx.protocol.update(generator="ema" if t.plugin.generator in t.emas else "raw", gantk=__version__)
        return ctx

    def keep_best(self, metric: str, value: float, protocol: dict[str, Any]) -> None:
        """Record ``value`` of ``metric`` (measured as ``protocol`` says) as the best so far and save
        ``checkpoints/best``, its meta naming all three."""
        t = self._trainer
        t.state.best_value, t.state.best_protocol = value, protocol
        extra = {"best_metric": metric, "best_value": value, "eval_protocol": protocol}
        t.save(t.run / "checkpoints" / "best", extra=extra)


class SampleGrid(Hook):
    """``samples/step_XXXXXXXX.png`` from the same inputs every time (rank 0 only; the others go on)."""

    def __call__(self, trainer: RunView) -> None:
        if trainer.sample_inputs is None or not trainer.world.is_main:
            return
        inputs = {k: v.to(trainer.device) for k, v in trainer.sample_inputs.items()}
        with trainer.eval_mode():
            images = trainer.plugin.generate(trainer.sampling_generator(), inputs).float()
        path = trainer.run / "samples" / f"step_{trainer.step:08d}.png"
        save_grid(images, path)
        trainer.logger.image(trainer.step, "samples", path)


def protocol_differences(a: dict, b: dict, ignore: tuple[str, ...] = ("gantk",)) -> list[str]:
    """``key: A != B`` for each protocol entry that differs (the gantk version is recorded, not compared)."""
    keys = sorted((set(a) | set(b)) - set(ignore))
    return [f"{k}: {a.get(k)!r} != {b.get(k)!r}" for k in keys if a.get(k) != b.get(k)]


class Evaluate(Hook):
    """The plugin's metrics, computed on rank 0 and shared; a better best metric saves ``checkpoints/best``."""

    def __call__(self, trainer: RunView) -> None:
        plugin, cfg = trainer.plugin, trainer.cfg

        def on_main() -> tuple[dict[str, float], dict]:
            nets = dict(trainer.nets)
            for name in plugin.sampled_networks():  # the EMA copies, when on
                nets[name] = trainer.sampling_generator(name)
            ctx = trainer.eval_context()
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
            trainer.keep_best(name, value, protocol)


def run_hooks(train: Any, plugin: GanPlugin, user_hooks: list[Hook]) -> list[Hook]:
    """A run's hooks, in the order they run between steps: the engine's sample grid and evaluation, the
    plugin's, the user's, then the training-health alarms (last, so the others keep the positions their
    saved states are keyed by)."""
    from gantk.engine.health import HealthWatch

    return [
        SampleGrid(train.sample_every),
        Evaluate(train.eval_every),
        *plugin.hooks(),
        *user_hooks,
        HealthWatch(train.log_every, train.alarms),
    ]
