"""The shared training engine: :class:`Trainer` runs any plugin.

The names are loaded on first use, so importing one engine module (``gantk.engine.distributed`` for the
world, say) does not load the trainer and everything it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gantk.device import select_device
    from gantk.engine.trainer import Trainer, train

__all__ = ["Trainer", "select_device", "train"]


def __getattr__(name: str) -> Any:
    if name in ("Trainer", "train"):
        from gantk.engine import trainer

        return getattr(trainer, name)
    if name == "select_device":
        from gantk.device import select_device

        return select_device
    raise AttributeError(f"module 'gantk.engine' has no attribute {name!r}")
