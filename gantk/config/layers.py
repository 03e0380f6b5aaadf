"""Layering: a config is the dataclass defaults, then each layer (a plugin's ``defaults.yaml``, a resumed
run's ``config.yaml``, ``--config`` files, flags, a checkpoint's ``config.json``) merged over the last,
then ``--set`` overrides, with a record of which layer set each key, for the errors."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin

import yaml

from gantk.config.freeze import unfrozen
from gantk.config.schema import FilePath, to_dict
from gantk.config.validate import Origins, build
from gantk.config.yaml_files import Plain, parse_yaml
from gantk.errors import ConfigError

T = TypeVar("T")


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


def layered(
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
    return build(unfrozen(type(cfg)), merged, origins)


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
