"""The shared training engine: :class:`Trainer` runs any plugin; :mod:`.checkpoint` reads and writes runs."""

from gantk.engine.trainer import Trainer, select_device, train

__all__ = ["Trainer", "select_device", "train"]
