"""Super-resolution data: HR training patches, on-the-fly bicubic LR, and benchmark pairs (Set5 / Set14).

* **Training**: every HR image is cut into ``patch`` x ``patch`` crops on a grid (``stride`` apart) once,
  so the crops stack into one in-memory uint8 tensor and the engine's checkpointed data order replays
  exactly on resume. Random flips / rotations belong on the device (a plugin's ``prepare_batch``).
  Images smaller than a patch are skipped and counted, not fatal.
* **LR inputs** are made from HR by :func:`bicubic_downscale`: PyTorch's bicubic with
  ``antialias=True``, which is the Keys cubic with a = -0.5 whose support widens with the scale
  factor, the kernel of PIL's ``BICUBIC`` and, in shape, MATLAB's ``imresize`` (what the benchmark LR
  images were made with). The test checks it against PIL to within one grey level.
* **Benchmarks** use the LR images they ship with (``<set>/HR/*.png`` + ``<set>/LR_bicubic/X4/*.png``,
  same file names), so numbers are comparable with published tables.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from gantk.data.datasets import TensorDataset
from gantk.data.images import image_files, is_image_file, read_image
from gantk.errors import DataError

log = logging.getLogger("gantk")


def bicubic_downscale(images: Tensor, scale: int) -> Tensor:
    """(N, C, H, W) float images -> (N, C, H // scale, W // scale), antialiased bicubic (a = -0.5)."""
    h, w = images.shape[-2] // scale, images.shape[-1] // scale
    if h < 1 or w < 1:
        raise DataError(f"an image of {tuple(images.shape[-2:])} pixels is too small to downscale {scale}x.")
    return F.interpolate(images, size=(h, w), mode="bicubic", antialias=True, align_corners=False)


def hr_patches(
    roots: Path | Sequence[Path], patch: int, stride: int, channels: int = 3, limit: int = 0
) -> TensorDataset:
    """Grid crops of every image under ``roots``; ``dataset.skipped`` counts images smaller than ``patch``.

    ``limit`` (``data.limit``) keeps the first that many crops, and reads no image past them."""
    roots = [Path(roots)] if isinstance(roots, (str, Path)) else [Path(r) for r in roots]
    files = []
    for root in roots:
        found = image_files(root) if root.is_dir() else []
        if not found:
            raise DataError(f"SR training folder {root} is missing or holds no image files.")
        files += found
    root = ", ".join(map(str, roots))
    crops, small = [], []
    for path in files:
        if limit and len(crops) >= limit:
            break
        image = read_image(path, channels)
        h, w = image.shape[-2:]
        if h < patch or w < patch:
            small.append(f"{path.name} ({w}x{h})")
            continue
        for top in range(0, h - patch + 1, stride):
            for left in range(0, w - patch + 1, stride):
                crops.append(image[:, top : top + patch, left : left + patch])
    if small:
        log.warning(
            "skipped %d of %d images in %s smaller than the %dx%d crop: %s",
            len(small), len(files), root, patch, patch, ", ".join(small[:5]),
        )  # fmt: skip
    if not crops:
        raise DataError(f"no image in {root} is at least {patch}x{patch} pixels, the training tile (data.tile).")
    dataset = TensorDataset({"image": torch.stack(crops[: limit or None])}, channels)
    dataset.skipped = len(small)
    return dataset


@dataclass
class SRPair:
    """One benchmark image: its name, the HR ground truth and the given LR input (uint8, C x H x W)."""

    name: str
    hr: Tensor
    lr: Tensor


def load_sr_benchmark(root: Path, scale: int = 4, channels: int = 3) -> list[SRPair]:
    """``root/HR/*.png`` with ``root/LR_bicubic/X{scale}/`` of the same names; HR must be scale x LR."""
    root = Path(root)
    hr_dir, lr_dir = root / "HR", root / "LR_bicubic" / f"X{scale}"
    if not hr_dir.is_dir() or not lr_dir.is_dir():
        raise DataError(
            f"SR benchmark {root} needs HR/ and LR_bicubic/X{scale}/ folders with images of the same names "
            "(the Set5 / Set14 layout)."
        )
    pairs = []
    for hr_path in sorted(p for p in hr_dir.iterdir() if is_image_file(p)):
        lr_path = lr_dir / hr_path.name
        if not lr_path.is_file():
            raise DataError(f"benchmark image {hr_path} has no LR partner; expected {lr_path}.")
        hr, lr = read_image(hr_path, channels), read_image(lr_path, channels)
        if tuple(hr.shape[-2:]) != (lr.shape[-2] * scale, lr.shape[-1] * scale):
            raise DataError(
                f"benchmark pair {hr_path.name}: HR is {hr.shape[-1]}x{hr.shape[-2]} but LR is "
                f"{lr.shape[-1]}x{lr.shape[-2]}; expected HR exactly {scale}x the LR."
            )
        pairs.append(SRPair(hr_path.stem, hr, lr))
    if not pairs:
        raise DataError(f"SR benchmark folder {hr_dir} holds no images.")
    return pairs
