"""The shared training engine: :class:`Trainer` runs any plugin."""

from gantk.engine.setup import select_device
from gantk.engine.trainer import Trainer, train

__all__ = ["Trainer", "select_device", "train"]
