"""The shared training engine: :class:`Trainer` runs any plugin; :mod:`.checkpoint` reads and writes runs."""

from gantk.engine.trainer import PluginSource, Trainer, select_device, train

__all__ = ["PluginSource", "Trainer", "select_device", "train"]
