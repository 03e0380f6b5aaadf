"""A labelled dataset a tiny classifier separates perfectly: each class is a flat grey level."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

LEVELS = {"dark": 30, "mid": 128, "light": 225}


def write_grey_levels(root: Path, per_class: int = 12, size: int = 16) -> Path:
    """One sub-folder per class; its images are the class's grey level plus a little noise."""
    rng = np.random.default_rng(0)
    for name, level in LEVELS.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(level + rng.normal(0, 8, (size, size)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, "L").save(folder / f"{i}.png")
    return root


def level_of(name: str) -> float:
    """Class ``name``'s grey level in [-1, 1], as gantk feeds images to networks."""
    return LEVELS[name] / 127.5 - 1.0


def tiny_cgan_checkpoint(folder: Path, classes=("dark", "light", "mid"), size: int = 16) -> Path:
    """A randomly initialised, generator-only CGAN checkpoint, as ``gantk export`` writes one."""
    import torch

    from gantk import registry
    from gantk.config import to_dict
    from gantk.io.checkpoint import save_checkpoint

    spec, cls = registry.load("cgan")
    layer = {
        "data": {"image_size": size, "channels": 1},
        "model": {"ngf": 4, "ndf": 4, "nz": 8, "class_names": list(classes)},
    }
    plugin = cls(registry.make_config(spec, cls, [(layer, "test")]))
    torch.manual_seed(0)
    G = plugin.build_networks()["G"]
    meta = {
        "plugin": {"name": "cgan", "source": "built-in", "location": ""},
        "generator": "G",
        "step": 0,
        "config": to_dict(plugin.cfg),
    }
    return save_checkpoint(folder, meta=meta, networks={"G": G.state_dict()})
