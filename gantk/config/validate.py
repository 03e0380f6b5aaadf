"""Validation: plain data (YAML, JSON, ``--set``) into the config's dataclasses, every key and value checked
against its field's type, with errors that name the key, the layer it came from and what was expected.

One converter per kind of type, looked up in a table: a new kind of field is one function and one
entry, not another branch in a long function.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from gantk.config.schema import Range, to_dict
from gantk.config.yaml_files import Plain, plain_value
from gantk.errors import ConfigError

T = TypeVar("T")

Origins = dict[str, str]  # dotted key -> human description of the source ("--set", "defaults.yaml")


def build(cls: type[T], data: dict[str, Any], origins: Origins | None = None) -> T:
    """Build dataclass ``cls`` from nested plain data, checking every key and type."""
    return convert(cls, data, Key("", origins or {}, cls))


@dataclass(frozen=True)
class Key:
    """Where a value sits in the config (``train.batch_size``, ``optim.G.betas[0]``), which layer set it,
    and the root class (for 'did you mean' among all keys)."""

    path: str
    origins: Origins
    root: type

    @property
    def shown(self) -> str:
        return self.path or "<root>"

    def child(self, suffix: str) -> Key:
        """The key of a field (``.name``) or an item (``[i]``) under this one."""
        return Key(f"{self.path}{suffix}" if self.path else suffix.lstrip("."), self.origins, self.root)

    def where(self, path: str | None = None) -> str:
        path = self.path if path is None else path
        src = self.origins.get(path) or self.origins.get(path.split("[")[0])
        return f" (from {src})" if src else ""

    def must(self, expected: str, value: Any) -> ConfigError:
        """The error for ``value`` that is not ``expected`` (``"a whole number"``)."""
        kind = "word" if isinstance(value, Plain) else type(value).__name__
        return ConfigError(f"config key '{self.shown}'{self.where()} must be {expected}; got {_shown(value)} ({kind}).")


def convert(tp: Any, value: Any, key: Key) -> Any:
    """``value`` as field type ``tp``, or a :class:`ConfigError` naming ``key``."""
    origin = get_origin(tp)
    if origin in WRAPPERS:  # Annotated, Optional/Union and Literal see the value as written
        return WRAPPERS[origin](tp, value, key)
    if dataclasses.is_dataclass(tp):
        return _section(tp, value, key)
    if isinstance(value, Plain):  # a field that is not words: the value YAML reads (text for a string)
        value = _unplain(tp, value)
    if origin in CONTAINERS:
        return CONTAINERS[origin](tp, value, key)
    if tp in SCALARS:
        return SCALARS[tp](value, key)
    raise ConfigError(f"config key '{key.shown}' has a type gantk cannot check: {tp!r}.")


# ---- wrappers: checked on the value as written -------------------------------------------------------


def _annotated(tp: Any, value: Any, key: Key) -> Any:
    base, *extras = get_args(tp)
    converted = convert(base, value, key)
    for rng in (e for e in extras if isinstance(e, Range)):
        if converted not in rng:
            raise ConfigError(f"config key '{key.shown}'{key.where()} must be {rng.describe()}; got {converted!r}.")
    return converted


def _union(tp: Any, value: Any, key: Key) -> Any:
    args = get_args(tp)
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return convert(arg, value, key)
        except ConfigError as exc:
            # a list is told what the list option wants (not "a whole number"), anything else the first option's
            container = _bare(arg) in CONTAINERS
            errors.insert(0 if container == isinstance(value, (list, tuple)) else len(errors), str(exc))
    raise ConfigError(errors[0] if errors else f"config key '{key.shown}' has an unsupported value {value!r}.")


def _bare(tp: Any) -> Any:
    """The container type under ``Annotated``: ``list`` for ``Annotated[list[int], ...]``."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return get_origin(tp)


def _literal(tp: Any, value: Any, key: Key) -> Any:
    choices = get_args(tp)
    given = value
    if isinstance(value, Plain):  # the word as written when it is one of the choices (off, on, yes)
        value = str(value) if str(value) in choices else value.value
    elif isinstance(value, str) and value not in choices and any(type(c) is int for c in choices):
        value = _int_or_none(value)
    if isinstance(value, bool) or value not in choices:
        raise ConfigError(
            f"config key '{key.shown}'{key.where()} must be one of {', '.join(repr(c) for c in choices)}; "
            f"got {_shown(given)}."
        )
    return value


WRAPPERS: dict[Any, Callable[[Any, Any, Key], Any]] = {
    Annotated: _annotated,
    Union: _union,
    types.UnionType: _union,
    Literal: _literal,
}


# ---- sections and containers ---------------------------------------------------------------------------


def _section(tp: type, value: Any, key: Key) -> Any:
    if dataclasses.is_dataclass(value):
        value = to_dict(value)
    names = {f.name for f in dataclasses.fields(tp)}
    if not isinstance(value, dict):
        raise ConfigError(
            f"config key '{key.shown}'{key.where()} must be a mapping of "
            f"{', '.join(f.name for f in dataclasses.fields(tp))}; got {value!r}."
        )
    hints = typing.get_type_hints(tp, include_extras=True)
    kwargs = {}
    for name, sub in value.items():
        child = key.child(f".{name}")
        if name not in names:
            raise _unknown(child, name, names, key)
        kwargs[str(name)] = convert(hints[name], sub, child)
    return tp(**kwargs)


def _unknown(child: Key, name: Any, names: set[str], section: Key) -> ConfigError:
    """An unknown key, with the closest known one (among all keys, or this section's)."""
    guess = difflib.get_close_matches(child.path, all_keys(child.root), n=1, cutoff=0.6) or difflib.get_close_matches(
        str(name), sorted(names), n=1, cutoff=0.6
    )
    hint = ""
    if guess:
        g = guess[0] if "." in guess[0] or not section.path else f"{section.path}.{guess[0]}"
        hint = f" Did you mean '{g}'?"
    return ConfigError(
        f"unknown config key '{child.path}'{child.where()}.{hint} "
        f"Valid keys in '{section.shown}' are: {', '.join(sorted(names))}."
    )


def _mapping(tp: Any, value: Any, key: Key) -> dict:
    key_tp, val_tp = get_args(tp)
    if not isinstance(value, dict):
        raise ConfigError(f"config key '{key.shown}'{key.where()} must be a mapping; got {value!r}.")
    return {convert(key_tp, k, key): convert(val_tp, v, key.child(f".{k}")) for k, v in value.items()}


def _sequence(tp: Any, value: Any, key: Key) -> list | tuple:
    origin, args = get_origin(tp), get_args(tp)
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"config key '{key.shown}'{key.where()} must be a list; got {value!r}.")
    if origin is tuple and args and args[-1] is not Ellipsis:  # fixed length: one type per place
        if len(value) != len(args):
            raise ConfigError(
                f"config key '{key.shown}'{key.where()} must be a list of {len(args)} values; got {list(value)!r}."
            )
        return tuple(convert(a, v, key.child(f"[{i}]")) for i, (a, v) in enumerate(zip(args, value, strict=True)))
    item_tp = args[0] if args else Any
    items = [convert(item_tp, v, key.child(f"[{i}]")) for i, v in enumerate(value)]
    return tuple(items) if origin is tuple else items


CONTAINERS: dict[Any, Callable[[Any, Any, Key], Any]] = {dict: _mapping, list: _sequence, tuple: _sequence}


# ---- scalars -------------------------------------------------------------------------------------------


def _unplain(tp: Any, value: Plain) -> Any:
    """A plain YAML scalar for a field that is not a choice of words: the text for a string, decimal for
    a whole number (``010`` is ten, not octal eight), else what YAML reads it as."""
    if tp is str:
        return str(value)
    if tp is int and (number := _int_or_none(value)) is not None:
        return number
    return value.value


def _to_bool(value: Any, key: Key) -> bool:
    if isinstance(value, bool):
        return value
    raise key.must("true or false (also: yes/no, on/off)", value)


def _to_int(value: Any, key: Key) -> int:
    if isinstance(value, str) and (number := _int_or_none(value)) is not None:  # "64" quoted in a file
        value = number
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise key.must("a whole number", value)


def _to_float(value: Any, key: Key) -> float:
    number = value
    if isinstance(value, str):  # YAML 1.1 reads "2e-4" (no dot) as a string
        with contextlib.suppress(ValueError):
            number = float(value)
    if isinstance(number, (int, float)) and not isinstance(number, bool):
        if not math.isfinite(number):
            raise key.must("a finite number", value)
        return float(number)
    raise key.must("a number", value)


def _to_str(value: Any, key: Key) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise key.must("a string", value)


def _to_any(value: Any, key: Key) -> Any:
    return plain_value(value)


SCALARS: dict[Any, Callable[[Any, Key], Any]] = {
    bool: _to_bool,
    int: _to_int,
    float: _to_float,
    str: _to_str,
    Any: _to_any,
}


# ---- helpers -------------------------------------------------------------------------------------------


def all_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key path a dataclass accepts, for 'did you mean' suggestions."""
    keys = []
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        dotted = f"{prefix}{f.name}"
        keys.append(dotted)
        if dataclasses.is_dataclass(hints[f.name]):
            keys.extend(all_keys(hints[f.name], dotted + "."))
    return keys


def _int_or_none(text: str) -> int | None:
    try:
        return int(text.strip(), 10)
    except ValueError:
        return None


def _shown(value: Any) -> str:
    """A value as the user wrote it: a plain YAML word as its text."""
    return repr(str(value)) if isinstance(value, Plain) else repr(value)
