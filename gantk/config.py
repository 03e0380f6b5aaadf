"""Typed training configuration.

A run's configuration is a tree of dataclasses. The engine owns the generic sections (``data``,
``train``, ``optim``, ``schedule``); a plugin subclasses :class:`Config` to add its own (``model``,
``loss``, ...) and may widen ``data`` with extra fields. Values come, in order of precedence, from the
dataclass defaults, the plugin's ``defaults.yaml``, an optional ``--config`` file and ``--set key=value``
overrides. Every layer is validated against the dataclass types, so a typo or a wrong type fails
before training starts, with an error that names the key, where it came from and what was expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from gantk.errors import ConfigError

T = TypeVar("T")


# --------------------------------------------------------------------------------------------------
# The engine's sections
# --------------------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    """Which data to train on and how to shape it."""

    name: str = ""  # a registered dataset name (mnist, facades, att_faces) or a path
    kind: str = ""  # loader kind (image_folder, mnist, paired); empty: from the card or the folder
    image_size: int = 64  # square side the images are resized and centre-cropped to
    channels: int = 0  # 1 grey, 3 RGB; 0: take it from the dataset (resolved before training)
    split: str = "train"
    limit: int = 0  # use only the first N items (0: all); handy for smoke tests
    preload: Literal["auto", "always", "never"] = "auto"  # decode once into memory
    num_workers: int = 0  # DataLoader workers when not preloaded
    on_error: Literal["raise", "skip"] = "raise"  # unreadable files: stop naming the file, or skip and count


@dataclass
class OptimConfig:
    """One optimizer; ``optim`` maps each trained network's name to one of these."""

    name: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd / rmsprop only


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, stepped once per generator step, the same for every optimizer."""

    name: Literal["constant", "linear_decay", "cosine", "step"] = "constant"
    warmup_steps: int = 0  # linear warm-up from 0
    decay_start: int = 0  # linear_decay: hold the rate until this step, then decay linearly to 0
    step_size: int = 0  # step: multiply by gamma every step_size steps
    gamma: float = 0.1


@dataclass
class EMAConfig:
    """Exponential moving average of the generator's weights (used for sampling when enabled)."""

    enabled: bool = False
    decay: float = 0.999
    start_step: int = 0  # copy the weights as they are until this step
    # batch norm: re-estimate the EMA generator's statistics from this many batches of its own samples
    # before it is used (gantk/engine/ema.py says why); 0 uses the raw generator's statistics
    calibration_batches: int = 16


@dataclass
class TrainConfig:
    """How the engine runs the loop."""

    batch_size: int = 64  # the global batch: split evenly over the processes of a data-parallel run
    max_steps: int = 10_000  # generator steps (one pass over a phase's updates is one step)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = False
    # capture each training step once as a CUDA graph and replay it (gantk/engine/graph.py): "auto" is on
    # for one process on CUDA when the plugin's step allows it; "on" says why when it cannot be; "off"
    cuda_graph: Literal["auto", "on", "off"] = "auto"
    # torch.compile the networks for training: "default"; "reduce-overhead" and "max-autotune" (which also
    # searches kernels) add the engine's whole-step CUDA graph (train.cuda_graph) on CUDA; "off": eager
    compile: Literal["off", "default", "reduce-overhead", "max-autotune"] = "off"
    sync_batchnorm: bool = True  # data-parallel runs: batch-norm statistics over the global batch
    dist_timeout_s: int = 1800  # how long a rank waits for the others (rank 0 evaluating alone included)
    deterministic: bool = False  # torch.use_deterministic_algorithms; slower, bit-exact resume on GPU
    grad_clip: float = 0.0  # max global grad norm per update; 0: off
    nonfinite: Literal["skip", "stop", "off"] = "skip"  # a NaN/inf loss: skip that update (counted), or stop
    log_every: int = 50
    sample_every: int = 500
    sample_count: int = 64  # images in each periodic sample grid
    eval_every: int = 0  # 0: no periodic evaluation
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2  # newest step checkpoints kept (the best one is kept apart)
    best_metric: str = ""  # an evaluation metric name; empty: the plugin's default
    best_mode: Literal["min", "max"] = "min"
    tensorboard: bool = True
    ema: EMAConfig = field(default_factory=EMAConfig)


def _default_optim() -> dict[str, OptimConfig]:
    return {"G": OptimConfig(), "D": OptimConfig()}


@dataclass
class Config:
    """A full run configuration. Plugins subclass it to add ``model`` / ``loss`` sections."""

    plugin: str = ""  # filled in by the loader: the plugin's registered name
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: dict[str, OptimConfig] = field(default_factory=_default_optim)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)


# --------------------------------------------------------------------------------------------------
# Layering: dictionaries merged with a record of where each key came from
# --------------------------------------------------------------------------------------------------


# YAML 1.1 reads off/no/false as False and on/yes/true as True; for a field of words, the bool meant the word
_YAML_BOOL_WORDS = {False: ("off", "no", "false"), True: ("on", "yes", "true")}


def _bool_as_word(value: bool, choices: tuple) -> Any:
    """The one word among ``choices`` that YAML turned into ``value``; ``value`` itself when none is."""
    found = [w for w in _YAML_BOOL_WORDS[value] if w in choices]
    return found[0] if len(found) == 1 else value


Origins = dict[str, str]  # dotted key -> human description of the source ("--set", "defaults.yaml")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or bad YAML is a :class:`ConfigError` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(data).__name__}.")
    return data


def merge(base: dict[str, Any], override: dict[str, Any], source: str, origins: Origins, prefix: str = "") -> dict:
    """Deep-merge ``override`` into a copy of ``base``, recording ``source`` for every key it sets."""
    out = dict(base)
    for key, value in override.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value, source, origins, dotted + ".")
        else:
            out[key] = value
            origins[dotted] = source
            _mark_children(value, dotted, source, origins)
    return out


def _mark_children(value: Any, dotted: str, source: str, origins: Origins) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            origins[f"{dotted}.{k}"] = source
            _mark_children(v, f"{dotted}.{k}", source, origins)


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    """Parse ``--set a.b=value`` strings; values are YAML scalars or flow lists (``[0.5, 0.999]``)."""
    parsed = []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set {item!r} is not of the form section.key=value (for example train.batch_size=64).")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        parsed.append((key, value))
    return parsed


def overrides_to_dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Turn ``[("train.batch_size", 64)]`` into ``{"train": {"batch_size": 64}}``."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: '{part}' was already given a plain value.")
            node = child
        node[leaf] = value
    return out


# --------------------------------------------------------------------------------------------------
# Validation: plain data -> dataclasses, with clear errors
# --------------------------------------------------------------------------------------------------


def build(cls: type[T], data: dict[str, Any], origins: Origins | None = None) -> T:
    """Build dataclass ``cls`` from nested plain data, checking every key and type."""
    origins = origins or {}
    return _convert(cls, data, "", origins, cls)


def _where(path: str, origins: Origins) -> str:
    src = origins.get(path)
    return f" (from {src})" if src else ""


def _all_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key path a dataclass accepts, for 'did you mean' suggestions."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        dotted = f"{prefix}{f.name}"
        keys.append(dotted)
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            keys.extend(_all_keys(tp, dotted + "."))
    return keys


def _convert(tp: Any, value: Any, path: str, origins: Origins, root: type) -> Any:
    origin = get_origin(tp)
    shown = path or "<root>"

    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        if not isinstance(value, dict):
            raise ConfigError(
                f"config key '{shown}'{_where(path, origins)} must be a mapping of "
                f"{', '.join(f.name for f in dataclasses.fields(tp))}; got {value!r}."
            )
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        kwargs = {}
        for key, sub in value.items():
            dotted = f"{path}.{key}" if path else str(key)
            if key not in names:
                candidates = _all_keys(root)
                guess = difflib.get_close_matches(dotted, candidates, n=1, cutoff=0.6) or difflib.get_close_matches(
                    str(key), sorted(names), n=1, cutoff=0.6
                )
                hint = ""
                if guess:
                    g = guess[0] if "." in guess[0] or not path else f"{path}.{guess[0]}"
                    hint = f" Did you mean '{g}'?"
                valid = ", ".join(sorted(names))
                raise ConfigError(
                    f"unknown config key '{dotted}'{_where(dotted, origins)}.{hint} "
                    f"Valid keys in '{shown}' are: {valid}."
                )
            kwargs[key] = _convert(hints[key], sub, dotted, origins, root)
        return tp(**kwargs)

    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path, origins, root)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"config key '{shown}' has an unsupported value {value!r}.")

    if origin is Literal:
        choices = get_args(tp)
        if isinstance(value, bool) and all(isinstance(c, str) for c in choices):
            value = _bool_as_word(value, choices)
        if value not in choices:
            raise ConfigError(
                f"config key '{shown}'{_where(path, origins)} must be one of "
                f"{', '.join(repr(c) for c in choices)}; got {value!r}."
            )
        return value

    if origin is dict:
        key_tp, val_tp = get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{shown}'{_where(path, origins)} must be a mapping; got {value!r}.")
        return {
            _convert(key_tp, k, path, origins, root): _convert(val_tp, v, f"{path}.{k}", origins, root)
            for k, v in value.items()
        }

    if origin in (list, tuple):
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{shown}'{_where(path, origins)} must be a list; got {value!r}.")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(
                    f"config key '{shown}'{_where(path, origins)} must be a list of {len(args)} values; "
                    f"got {list(value)!r}."
                )
            return tuple(
                _convert(a, v, f"{path}[{i}]", origins, root) for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
        item_tp = args[0] if args else Any
        items = [_convert(item_tp, v, f"{path}[{i}]", origins, root) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items

    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(_type_error(shown, path, origins, "true or false", value))
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(_type_error(shown, path, origins, "an integer", value))
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "2e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(_type_error(shown, path, origins, "a number", value))
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(_type_error(shown, path, origins, "a string", value))
    raise ConfigError(f"config key '{shown}' has a type gantk cannot check: {tp!r}.")


def _type_error(shown: str, path: str, origins: Origins, expected: str, value: Any) -> str:
    return f"config key '{shown}'{_where(path, origins)} must be {expected}; got {value!r} ({type(value).__name__})."


def to_dict(cfg: Any) -> Any:
    """Dataclasses -> plain dicts/lists (tuples become lists), ready for YAML or JSON."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    return cfg


def dump_yaml(cfg: Any, path: str | Path) -> None:
    """Write a config (dataclass or dict) as YAML."""
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), encoding="utf-8")


def resolve(
    cls: type[T],
    layers: list[tuple[dict[str, Any], str]],
    overrides: list[str] | None = None,
) -> T:
    """Merge ``layers`` (data, source-name) in order, then ``--set`` overrides, and validate into ``cls``."""
    origins: Origins = {}
    merged: dict[str, Any] = to_dict(cls())  # the dataclass defaults are the bottom layer
    for data, source in layers:
        merged = merge(merged, data, source, origins)
    for key, value in parse_overrides(overrides or []):
        merged = merge(merged, overrides_to_dict([(key, value)]), f"--set {key}", origins)
    return build(cls, merged, origins)
