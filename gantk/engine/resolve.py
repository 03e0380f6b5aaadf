"""The one step where a run's config is completed from its data, then frozen.

A config names what the user chose; a few values follow from the data instead: ``data.channels`` and
``data.kind`` (the engine's), and whatever a plugin derives in :meth:`GanPlugin.resolve` (pix2pix's
schedule in steps, CGAN's class names). They are filled in here, once, in this order:

    build_dataset -> data.channels, data.kind -> plugin.resolve(dataset) -> freeze

and only then are the networks and phases built, so neither depends on when the data was read. The
values are checked like ``--set`` ones, and the frozen config is what ``config.yaml`` and every
checkpoint's ``config.json`` hold: a run's networks are rebuilt from it without the data.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from gantk.config import freeze, with_values
from gantk.data import locate
from gantk.data.datasets import SubstituteFailures, TensorDataset
from gantk.data.transforms import TransformedDataset, load_pipeline
from gantk.errors import GantkError
from gantk.plugin import GanPlugin


def resolve_run(plugin: GanPlugin) -> torch.utils.data.Dataset:
    """Build the training data, complete ``plugin.cfg`` from it and freeze it; returns the data, with the
    user's ``data.transforms`` pipeline applied to its items when one is given."""
    dataset = plugin.build_dataset("train")
    cfg = plugin.cfg
    filled: dict[str, Any] = {}
    if not cfg.data.channels:
        filled["data.channels"] = int(getattr(dataset, "channels", 3))
    if not cfg.data.kind:
        with contextlib.suppress(GantkError):
            filled["data.kind"] = locate(cfg.data.name, download=False)[1]
    if filled:
        plugin.cfg = with_values(cfg, filled, "the training data")
    derived = plugin.resolve(dataset)
    if derived:
        plugin.cfg = with_values(plugin.cfg, derived, f"plugin '{cfg.plugin}' (its resolve step)")
    freeze(plugin.cfg)
    data = plugin.cfg.data
    if data.transforms:  # the training data only: evaluation sees the images as they are
        dataset = TransformedDataset(dataset, load_pipeline(data.transforms), data.image_size, data.transforms)
    if data.on_error == "skip" and not isinstance(dataset, TensorDataset):  # decoded in memory: cannot fail
        dataset = SubstituteFailures(dataset)
    return dataset
