"""Images between tensors and files: the [-1, 1] <-> uint8 conversion, image grids, one file per image.

gantk stores images as uint8 (datasets, batches until they reach the device) and networks see float
[-1, 1]. The two conversions below are the only place that mapping is written: 0 -> -1, 255 -> 1, and
back with rounding and clamping, so a value that leaves a network slightly outside [-1, 1] still
writes a valid pixel.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

from gantk.config import height_width


def from_uint8(images: Tensor) -> Tensor:
    """uint8 pixels (0-255) -> float32 in [-1, 1]."""
    return images.float().div(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """Float images in [-1, 1] -> uint8 pixels, rounded and clamped."""
    return images.float().mul(127.5).add(127.5).round().clamp(0, 255).to(torch.uint8)


def to_unit(images: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return (images.float() * 0.5 + 0.5).clamp_(0, 1)


def _tile(images: Tensor, nrow: int | None, pad_value: float = 0.0) -> Tensor:
    """Images in [-1, 1] -> one (3, H, W) grid in [0, 1], square-ish unless ``nrow`` is given."""
    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    return make_grid(to_unit(images.cpu()), nrow=nrow, padding=2, pad_value=pad_value)


def save_grid(images: Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save images in [-1, 1] as one PNG grid (square-ish unless ``nrow`` is given)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(_tile(images, nrow), path)
    return path


def grid_image(images: Tensor, nrow: int | None = None, min_width: int = 0):
    """Images in [-1, 1] as one PIL grid, enlarged by a whole factor (nearest) to at least ``min_width``.

    Whole-factor nearest enlargement keeps every generated pixel a crisp block, so small images (MNIST's
    32x32) are shown as they are rather than blurred.
    """
    from PIL import Image

    grid = _tile(images, nrow, pad_value=1.0)  # make_grid repeats a grey image into 3 equal planes
    pixels = grid.mul(255).round_().to(torch.uint8).permute(1, 2, 0).numpy()
    image = Image.fromarray(pixels[..., 0] if images.shape[1] == 1 else pixels)
    factor = max(1, math.ceil(min_width / image.width)) if min_width else 1
    if factor > 1:
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    return image


def pil_image(image: Tensor):
    """One image (C, H, W) in [-1, 1] as a PIL image (grey for one channel)."""
    from PIL import Image

    pixels = to_uint8(image.detach().cpu()).permute(1, 2, 0).numpy()
    return Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)


def save_image_file(image: Tensor, path: str | Path) -> Path:
    """Save one image (C, H, W) in [-1, 1] as a file; the format follows the suffix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(to_unit(image.cpu()), path)
    return path


def save_each(images: Tensor, folder: str | Path, prefix: str = "sample") -> list[Path]:
    """Save images in [-1, 1] as one PNG each in ``folder``."""
    return [save_image_file(img, Path(folder) / f"{prefix}_{i:05d}.png") for i, img in enumerate(images)]


def example_images(n: int, channels: int, size: int | tuple[int, int], seed: int = 0) -> Tensor:
    """``n`` seeded random images (N, C, height, width) in [-1, 1] of ``size`` (one side or ``(height,
    width)``): what an image-to-image plugin's ``export_inputs`` traces its graph with, made without data."""
    h, w = height_width(size)
    return torch.rand(n, channels, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1
