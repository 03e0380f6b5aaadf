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
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from gantk.errors import ConfigError, PluginError

T = TypeVar("T")


# --------------------------------------------------------------------------------------------------
# Ranges: every numeric field says which values it accepts, checked when the config is built
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """The values a numeric field accepts, attached as ``Annotated[int, Range(1)]``.

    Checking the range when the config is built means a value that would make training hang, diverge
    silently or crash hours in (a batch of -1, a negative warm-up, a decay of 2) is refused before any
    work starts, in one paragraph naming the field.
    """

    lo: float | None = None
    hi: float | None = None
    hi_open: bool = False  # hi itself is excluded (betas < 1)
    lo_open: bool = False  # lo itself is excluded (gamma > 0)

    def __contains__(self, value: float) -> bool:
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return False
        return not (self.hi is not None and (value > self.hi or (self.hi_open and value == self.hi)))

    def describe(self) -> str:
        low = None if self.lo is None else f"{'>' if self.lo_open else '>='} {self.lo}"
        high = None if self.hi is None else f"{'<' if self.hi_open else '<='} {self.hi}"
        return " and ".join(x for x in (low, high) if x) or "any value"


#: sizes and counts that must be at least 1 (a batch, a log interval)
PositiveInt = Annotated[int, Range(1)]
#: counts, steps and intervals where 0 means "none" or "off"
Count = Annotated[int, Range(0)]
#: a network's width or depth: at least 1, and short of sizes no machine holds (the memory check is separate)
Width = Annotated[int, Range(1, 1 << 16)]
#: an image side in pixels
Side = Annotated[int, Range(1, 1 << 15)]
#: weights of loss terms, noise levels, learning rates: zero or more
NonNegative = Annotated[float, Range(0)]
#: a probability or a mixing weight in [0, 1]
Unit = Annotated[float, Range(0, 1)]
#: Adam's betas, momentum: [0, 1)
Beta = Annotated[float, Range(0, 1, hi_open=True)]
#: a seed every random generator gantk seeds takes (torch, numpy modulo 2**32, python)
Seed = Annotated[int, Range(0, 2**63 - 1)]


class FilePath:
    """Marks a str field as a file or folder path (``Annotated[str, FilePath()]``, or :data:`PathStr`).

    A config read back from a checkpoint's ``config.json`` was written wherever training ran, so its
    relative paths were relative to that directory. :func:`rebase_paths` looks each one up beside the
    checkpoint first, which lets a checkpoint that ships with the files it names (a classifier folder
    next to it, ``../mnist-classifier``) work from any directory.
    """


#: a path-valued key: an eval classifier, a weights file, a transforms file
PathStr = Annotated[str, FilePath()]


# --------------------------------------------------------------------------------------------------
# The engine's sections
# --------------------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    """Which data to train on and how to shape it."""

    name: str = ""  # a registered dataset name (mnist, facades, att_faces) or a path
    kind: str = ""  # loader kind (image_folder, mnist, paired); empty: from the card or the folder
    image_size: Side = 64  # square side the images are resized and centre-cropped to
    channels: Literal[0, 1, 3] = 0  # 1 grey, 3 RGB; 0: take it from the dataset (resolved before training)
    split: str = "train"
    limit: Count = 0  # use only the first N items (0: all); handy for smoke tests
    preload: Literal["auto", "always", "never"] = "auto"  # decode once into memory
    num_workers: Annotated[int, Range(0, 256)] = 0  # DataLoader workers when not preloaded
    # unreadable files and failing draws: stop naming the item, or skip (left out when the data is built;
    # a draw that fails later, by the next item that reads)
    on_error: Literal["raise", "skip"] = "raise"
    # an albumentations pipeline saved with A.save (YAML or JSON), applied on the CPU to every image as it
    # is drawn (pairs together); empty: none, and in-memory data is sliced a batch at a time
    transforms: PathStr = ""


@dataclass
class OptimConfig:
    """One optimizer; ``optim`` maps each trained network's name to one of these."""

    name: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: NonNegative = 2e-4
    betas: tuple[Beta, Beta] = (0.5, 0.999)
    weight_decay: NonNegative = 0.0
    momentum: Beta = 0.0  # sgd / rmsprop only


@dataclass
class ScheduleConfig:
    """Learning-rate schedule, stepped once per generator step, the same for every optimizer."""

    name: Literal["constant", "linear_decay", "cosine", "step"] = "constant"
    warmup_steps: Count = 0  # linear warm-up from 0
    decay_start: Count = 0  # linear_decay: hold the rate until this step, then decay linearly to 0
    step_size: Count = 0  # step: multiply by gamma every step_size steps
    gamma: Annotated[float, Range(0, lo_open=True)] = 0.1


@dataclass
class EMAConfig:
    """Exponential moving average of the generator's weights (used for sampling when enabled)."""

    enabled: bool = False
    decay: Unit = 0.999
    start_step: Count = 0  # copy the weights as they are until this step
    # StyleGAN2's rule instead of decay when > 0: the average's half-life in thousands of images shown
    # (the paper: 10), so the horizon does not depend on the batch size
    half_life_kimg: Annotated[float, Range(0)] = 0.0
    # with half_life_kimg: the half-life is at most rampup x the images shown so far (NVlabs' ema_rampup,
    # 0.05 in its auto config), so the early average forgets the random initialisation fast; 0: off
    rampup: Annotated[float, Range(0)] = 0.0
    # batch norm: re-estimate the EMA generator's statistics from this many batches of its own samples
    # before it is used (gantk/engine/ema.py says why); 0 uses the raw generator's statistics
    calibration_batches: Count = 16


@dataclass
class AugmentConfig:
    """Differentiable augmentation of every image D sees, real and generated (gantk/engine/augment.py)."""

    # DiffAugment's transforms, applied in this order; empty: no augmentation
    policy: tuple[Literal["color", "translation", "cutout"], ...] = ()
    p: Unit = 1.0  # the probability of each transform per image; with adaptive, where p starts (ADA: 0)
    adaptive: bool = False  # ADA: steer p so that E[sign(D(real))] stays near target
    target: Unit = 0.6  # ADA's r_t target
    interval: PositiveInt = 4  # steps between two adjustments of p
    ada_kimg: Annotated[float, Range(0, lo_open=True)] = 500.0  # thousands of images for p to move by 1


@dataclass
class TrainConfig:
    """How the engine runs the loop."""

    # the global batch: split evenly over the processes of a data-parallel run
    batch_size: Annotated[int, Range(1, 1 << 20)] = 64
    max_steps: Count = 10_000  # generator steps (one pass over a phase's updates is one step)
    seed: Seed = 0
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
    dist_timeout_s: PositiveInt = 1800  # how long a rank waits for the others (rank 0 evaluating alone included)
    deterministic: bool = False  # torch.use_deterministic_algorithms; slower, bit-exact resume on GPU
    grad_clip: NonNegative = 0.0  # max global grad norm per update; 0: off
    nonfinite: Literal["skip", "stop", "off"] = "skip"  # a NaN/inf loss: skip that update (counted), or stop
    log_every: PositiveInt = 50
    sample_every: Count = 500  # 0: no sample grids
    sample_count: Annotated[int, Range(1, 1024)] = 64  # images in each periodic sample grid
    eval_every: Count = 0  # 0: no periodic evaluation
    checkpoint_every: Count = 1000  # 0: only the final checkpoint (and checkpoint_minutes)
    # also save when this many minutes of training passed since the last checkpoint, so that a preempted
    # or killed job loses at most that much work; 0: by steps only
    checkpoint_minutes: NonNegative = 30.0
    keep_checkpoints: PositiveInt = 2  # newest step checkpoints kept (the best one is kept apart)
    best_metric: str = ""  # an evaluation metric name; empty: the plugin's default
    best_mode: Literal["min", "max"] = "min"
    tensorboard: bool = True
    ema: EMAConfig = field(default_factory=EMAConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class EvalConfig:
    """What the default evaluation of a sampling plugin reads (FID/KID, :mod:`gantk.metrics.fid`).

    A plugin with its own ``eval`` section subclasses this, so every plugin that samples keeps these keys.
    """

    # the FID Inception network's weights (weights-inception-2015-12-05-6726825d.pth, or .safetensors; see
    # docs/metrics.md); empty: FID, KID, precision and recall are skipped with a warning and only
    # kid_pixels is reported
    fid_weights: PathStr = ""
    # generated images per evaluation, and as many real; at least 4, for precision and recall's k = 3
    fid_samples: Annotated[int, Range(4, 1_000_000)] = 5000
    fid_cache: PathStr = ""  # folder of cached reference features; empty: ~/.cache/gantk/fid
    seed: Seed = 0  # the noise of every evaluation, and KID's subsets: evaluations differ only by the weights
    # also the Inception Score of the samples (10 splits): needs weights whose logits layer is trained (torch-
    # fidelity's file has it; a copy with fc.weight all zeros is refused); not comparable across datasets
    inception_score: bool = False


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
    eval: EvalConfig = field(default_factory=EvalConfig)


# --------------------------------------------------------------------------------------------------
# Layering: dictionaries merged with a record of where each key came from
# --------------------------------------------------------------------------------------------------


class Plain(str):
    """A plain (unquoted) YAML scalar: its text as written, and what YAML 1.1 would read it as.

    YAML reads ``off`` as False, ``007`` as 7 and ``1e3`` as a string; which is meant depends on the
    field. :func:`build` decides by the field's type: a string field gets the text, a field of words
    (``Literal``) gets the text when it is one of the words, a number or bool field gets the value.
    """

    value: Any

    def __new__(cls, text: str, value: Any) -> Plain:
        obj = super().__new__(cls, text)
        obj.value = value
        return obj


class _PlainLoader(yaml.SafeLoader):
    """YAML's safe loader, but bools, numbers and dates come back as :class:`Plain` (text + value), and a key
    given twice in one mapping is an error (YAML keeps the last silently; a config means one of them)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key '{key_node.value}' is given twice (lines {seen[key_node.value]} and {line})",
                        key_node.start_mark,
                    )  # fmt: skip
                seen[key_node.value] = line
        return super().construct_mapping(node, deep=deep)


def _keeping_text(construct):
    def constructor(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Plain:
        return Plain(node.value, construct(loader, node))

    return constructor


for _tag, _construct in (
    ("bool", yaml.SafeLoader.construct_yaml_bool),
    ("int", yaml.SafeLoader.construct_yaml_int),
    ("float", yaml.SafeLoader.construct_yaml_float),
    ("timestamp", yaml.SafeLoader.construct_yaml_timestamp),
):
    _PlainLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _keeping_text(_construct))


def parse_yaml(text: str) -> Any:
    """Parse YAML text for a config: plain scalars other than strings and null come back as :class:`Plain`."""
    return yaml.load(text, Loader=_PlainLoader)  # noqa: S506 - a SafeLoader subclass


def plain_value(value: Any) -> Any:
    """``value`` with every :class:`Plain` replaced by what YAML reads it as (for untyped fields)."""
    if isinstance(value, Plain):
        return value.value
    if isinstance(value, dict):
        return {plain_value(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_value(v) for v in value]
    return value


Origins = dict[str, str]  # dotted key -> human description of the source ("--set", "defaults.yaml")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or bad YAML is a :class:`ConfigError` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start} cannot be decoded); a config is a YAML file "
            "saved as UTF-8."
        ) from None
    try:
        data = parse_yaml(text)
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
        if isinstance(out.get(key), dict) and not isinstance(value, dict):
            if value is None:  # "train:" with nothing under it sets nothing
                continue
            raise ConfigError(
                f"config key '{dotted}' (from {source}) is a section of keys ({', '.join(map(str, out[key]))}); "
                f"got the single value {value!r}. Give keys under it, or leave it out."
            )
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
            value = parse_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if value is None:  # "--set data.name=null" or "~": the text, for a string field
            value = Plain(raw.strip(), None)
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


def rebase_paths(cfg: Any, base: Path) -> list[str]:
    """Make each relative :class:`FilePath` field of ``cfg`` that exists under ``base`` point there (absolute).

    A path that does not exist under ``base`` is left as written (relative to the current directory, as
    for a config given on the command line), so older checkpoints behave as before. Returns the dotted
    keys that changed. ``cfg`` must not be frozen yet.
    """
    changed: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        hints = typing.get_type_hints(type(node), include_extras=True)
        for f in dataclasses.fields(node):
            value, tp = getattr(node, f.name), hints[f.name]
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
            elif (
                isinstance(value, str)
                and value
                and get_origin(tp) is Annotated
                and any(isinstance(e, FilePath) for e in get_args(tp)[1:])
                and not Path(value).expanduser().is_absolute()
                and (base / value).exists()
            ):
                setattr(node, f.name, str((base / value).resolve()))
                changed.append(prefix + f.name)

    walk(cfg, "")
    return changed


def _where(path: str, origins: Origins) -> str:
    src = origins.get(path) or origins.get(path.split("[")[0])
    return f" (from {src})" if src else ""


def _all_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key path a dataclass accepts, for 'did you mean' suggestions."""
    keys = []
    hints = typing.get_type_hints(cls, include_extras=True)
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

    if origin is Annotated:
        base, *extras = get_args(tp)
        converted = _convert(base, value, path, origins, root)
        for rng in (e for e in extras if isinstance(e, Range)):
            if converted not in rng:
                raise ConfigError(
                    f"config key '{shown}'{_where(path, origins)} must be {rng.describe()}; got {converted!r}."
                )
        return converted

    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value):
            value = to_dict(value)
        if not isinstance(value, dict):
            raise ConfigError(
                f"config key '{shown}'{_where(path, origins)} must be a mapping of "
                f"{', '.join(f.name for f in dataclasses.fields(tp))}; got {value!r}."
            )
        hints = typing.get_type_hints(tp, include_extras=True)
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
            kwargs[str(key)] = _convert(hints[key], sub, dotted, origins, root)
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
        given = value
        if isinstance(value, Plain):  # the word as written when it is one of the choices (off, on, yes)
            value = str(value) if str(value) in choices else value.value
        elif isinstance(value, str) and value not in choices and any(type(c) is int for c in choices):
            value = _int_or_none(value)
        if isinstance(value, bool) or value not in choices:
            raise ConfigError(
                f"config key '{shown}'{_where(path, origins)} must be one of "
                f"{', '.join(repr(c) for c in choices)}; got {_shown(given)}."
            )
        return value

    if isinstance(value, Plain):  # a field that is not words: the value YAML reads (text for a string)
        if tp is str:
            value = str(value)
        elif tp is int and (number := _int_or_none(value)) is not None:  # decimal: 010 is ten, not octal eight
            value = number
        else:
            value = value.value

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
        return plain_value(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(_type_error(shown, path, origins, "true or false (also: yes/no, on/off)", value))
    if tp is int:
        if isinstance(value, str) and (number := _int_or_none(value)) is not None:  # "64" quoted in a file
            value = number
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(_type_error(shown, path, origins, "a whole number", value))
    if tp is float:
        number = value
        if isinstance(value, str):  # YAML 1.1 reads "2e-4" (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            if not math.isfinite(number):
                raise ConfigError(_type_error(shown, path, origins, "a finite number", value))
            return float(number)
        raise ConfigError(_type_error(shown, path, origins, "a number", value))
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(_type_error(shown, path, origins, "a string", value))
    raise ConfigError(f"config key '{shown}' has a type gantk cannot check: {tp!r}.")


def _int_or_none(text: str) -> int | None:
    try:
        return int(text.strip(), 10)
    except ValueError:
        return None


def _shown(value: Any) -> str:
    """A value as the user wrote it: a plain YAML word as its text."""
    return repr(str(value)) if isinstance(value, Plain) else repr(value)


def _type_error(shown: str, path: str, origins: Origins, expected: str, value: Any) -> str:
    kind = "word" if isinstance(value, Plain) else type(value).__name__
    return f"config key '{shown}'{_where(path, origins)} must be {expected}; got {_shown(value)} ({kind})."


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


def with_values(cfg: T, values: dict[str, Any], source: str) -> T:
    """A new config: ``cfg`` with the dotted ``values`` (``{"data.channels": 3}``) set, every key and type
    checked as for ``--set``; ``source`` names where they came from in an error."""
    origins: Origins = {}
    merged = to_dict(cfg)
    for key, value in values.items():
        merged = merge(merged, overrides_to_dict([(key, value)]), source, origins)
    return build(_unfrozen(type(cfg)), merged, origins)


# --------------------------------------------------------------------------------------------------
# Freezing: a resolved config does not change any more
# --------------------------------------------------------------------------------------------------


class FrozenConfigError(PluginError, AttributeError):
    """A resolved (frozen) config was assigned to: a plugin's mistake, shown as one paragraph like any
    gantk error (and an AttributeError, as assigning a read-only attribute is in Python)."""


class FrozenDict(dict):
    """A dict section (``optim``) of a frozen config: reads as a dict, refuses writes."""

    def _refuse(self, *args: Any, **kwargs: Any):
        raise FrozenConfigError(
            "the config is resolved and frozen: it cannot change once the engine resolved it "
            "(derive values in GanPlugin.resolve instead)."
        )

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __reduce__(self):
        return (dict, (dict(self),))


_FROZEN: dict[type, type] = {}


def _refuse_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenConfigError(
        f"config field '{type(self).__name__}.{name}' cannot be set: the config is resolved and frozen (it was "
        "completed from the data and saved with the run). A value derived from the data belongs in "
        "GanPlugin.resolve; a value chosen by the user in the config files or --set."
    )


def _rebuild(cls: type, data: dict[str, Any]) -> Any:
    return freeze(build(cls, data))


def _frozen_class(cls: type) -> type:
    if cls not in _FROZEN:
        _FROZEN[cls] = type(
            cls.__name__,
            (cls,),
            {
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
                "__setattr__": _refuse_setattr,
                "__delattr__": lambda self, name: _refuse_setattr(self, name, None),
                "__reduce__": lambda self: (_rebuild, (cls, to_dict(self))),
                "__gantk_frozen__": cls,
            },
        )
    return _FROZEN[cls]


def _unfrozen(cls: type) -> type:
    return getattr(cls, "__gantk_frozen__", cls)


def freeze(cfg: T) -> T:
    """``cfg`` made read-only in place, every section with it: assigning a field raises
    :class:`FrozenConfigError`. The engine freezes the config once it is resolved; ``to_dict``,
    ``isinstance`` and reading work as before."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        for f in dataclasses.fields(cfg):
            value = getattr(cfg, f.name)
            if isinstance(value, dict) and not isinstance(value, FrozenDict):
                object.__setattr__(cfg, f.name, FrozenDict({k: freeze(v) for k, v in value.items()}))
            else:
                freeze(value)
        if not is_frozen(cfg):
            object.__setattr__(cfg, "__class__", _frozen_class(type(cfg)))
    return cfg


def is_frozen(cfg: Any) -> bool:
    return hasattr(type(cfg), "__gantk_frozen__")
