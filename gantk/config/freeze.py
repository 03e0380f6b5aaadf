"""Freezing: a config resolved from the data does not change any more. A frozen config reads, compares
and converts (``to_dict``) as before; assigning a field raises :class:`FrozenConfigError`."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from gantk.config.schema import to_dict
from gantk.config.validate import build
from gantk.errors import PluginError

T = TypeVar("T")


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


def unfrozen(cls: type) -> type:
    """The class a frozen config's class was made from (the class itself when it is not frozen)."""
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
