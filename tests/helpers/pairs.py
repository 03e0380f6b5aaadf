"""Tiny paired datasets for pix2pix tests."""

from pathlib import Path

import numpy as np
from PIL import Image


def write_side_by_side(root: Path, n: int = 12, size: int = 32) -> Path:
    """``n`` pairs in the pix2pix layout (A left, B right) under root/train; B is a function of A."""
    rng = np.random.default_rng(2)
    (root / "train").mkdir(parents=True)
    for i in range(n):
        a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        b = 255 - a  # a learnable mapping
        Image.fromarray(np.concatenate([a, b], axis=1)).save(root / "train" / f"{i + 1}.png")
    return root
