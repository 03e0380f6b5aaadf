"""Tiny configurations of the model-zoo plugins (InfoGAN, CycleGAN) and the data they train on."""

from __future__ import annotations

import numpy as np
from PIL import Image

from gantk import registry
from tests.helpers import tiny_plugin


def tiny_infogan(root, **sections):
    """16x16, widths 4: a step takes milliseconds."""
    train = {"batch_size": 8, "max_steps": 4, "device": "cpu", "log_every": 1, "sample_every": 0}
    train.update({"eval_every": 0, "checkpoint_every": 100, "tensorboard": False})
    layer = {"data": {"name": str(root), "image_size": 16}, "model": {"width": 4, "nz": 6}, "train": train}
    return tiny_plugin("infogan", layer, sections)[1]


TINY = {
    "data": {"image_size": 16, "load_size": 20, "holdout": 2},
    "model": {"ngf": 4, "ndf": 4, "n_blocks": 1, "n_layers": 2, "pool_size": 3},
    "epochs": {"constant": 1, "decay": 1},
}


def tiny_cyclegan(data, **sections):
    """16x16, widths 4, one residual block; side-by-side pairs are read as two domains (data.kind=paired)."""
    spec, cls = registry.load("cyclegan")
    layer = {k: dict(v) for k, v in TINY.items()}
    if not (data / "trainA").is_dir():
        layer["data"]["kind"] = "paired"
    train = {"device": "cpu", "log_every": 1, "sample_every": 0, "eval_every": 0, "tensorboard": False}
    layer["train"] = {**train, "checkpoint_every": 100}
    for section, values in sections.items():
        layer.setdefault(section, {}).update(values)
    cfg = registry.make_config(spec, cls, [(layer, "test")])
    cfg.data.name = str(data)
    return cls(cfg)


def write_unpaired(root, n_a: int, n_b: int, size: int = 20, test: int = 0):
    rng = np.random.default_rng(3)
    for split, counts in (("train", (n_a, n_b)), ("test", (test, test))):
        for side, count in zip("AB", counts, strict=True):
            if not count:
                continue
            (root / f"{split}{side}").mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / f"{split}{side}" / f"{i}.png")
    return root


def tiny_stylegan2(root, **sections):
    """16x16 StyleGAN2, 16 feature maps at most, z and w of 8, ADA on: a step takes tens of milliseconds."""
    train = {"batch_size": 8, "max_steps": 6, "device": "cpu", "log_every": 1, "sample_every": 0}
    train.update({"eval_every": 0, "checkpoint_every": 100, "tensorboard": False})
    model = {"channel_base": 128, "channel_max": 16, "z_dim": 8, "w_dim": 8}
    layer = {"data": {"name": str(root), "image_size": 16}, "model": model, "train": train}
    return tiny_plugin("stylegan2", layer, sections)[1]
