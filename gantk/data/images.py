"""Decoding image files into uint8 tensors, whatever their mode.

Every loader goes through :func:`read_image`, so grey, RGB, RGBA, palette and 16-bit files all arrive
as ``uint8`` tensors of shape ``(C, H, W)`` with C = 1 or 3, and an unreadable file is a
:class:`~gantk.errors.DataError` naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from gantk.config import height_width
from gantk.errors import DataError

_EXTENSIONS: set[str] | None = None
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")  # Pillow modes without colour


def image_extensions() -> set[str]:
    """Every file extension Pillow can open (lower case, with the dot)."""
    global _EXTENSIONS
    if _EXTENSIONS is None:
        Image.init()
        _EXTENSIONS = {ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    return _EXTENSIONS


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in image_extensions() and not path.name.startswith(".")


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert any Pillow mode to 'L' (channels=1) or 'RGB' (channels=3).

    16-bit and 32-bit integer images are rescaled to 8 bits from their full range; transparent images
    (RGBA, LA, palette with transparency) are composited over white, the usual background of sprites
    and icons.
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(scaled.astype(np.uint8), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    target = "L" if channels == 1 else "RGB"
    return img if img.mode == target else img.convert(target)


def image_files(root: Path) -> list[Path]:
    """Every image file below ``root``, searched recursively, in sorted path order."""
    return sorted(p for p in Path(root).rglob("*") if is_image_file(p))


def open_image(path: Path, max_pixels: int = 0) -> Image.Image:
    """Open and fully decode an image file, turning every decoding failure into a DataError.

    With ``max_pixels`` the size is checked from the header first, before anything is decoded, so a
    decompression bomb (a small file that claims gigapixels) is refused without allocating it.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            w, h = img.size
            if max_pixels and w * h > max_pixels:
                raise DataError(
                    f"image file {path} is {w}x{h} = {w * h:,} pixels; the limit is {max_pixels:,} pixels. "
                    "Crop or shrink it first."
                )
            img.load()
            return ImageOps.exif_transpose(img) if "exif" in img.info else img.copy()
    except FileNotFoundError:
        raise DataError(f"image file {path} does not exist.") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"image file {path} is too large to decode safely: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"image file {path} cannot be decoded (corrupt or not an image): {exc}") from None


def native_channels(path: Path) -> int:
    """1 for grey files, 3 for everything else: what ``data.channels: 0`` resolves to."""
    try:
        with Image.open(path) as img:
            return 1 if img.mode in GREY_MODES else 3
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"image file {path} cannot be read: {exc}") from None


def fit(img: Image.Image, size: int | tuple[int, int]) -> Image.Image:
    """Resize to cover ``size`` (one side, or ``(height, width)``) and centre-crop to it (antialiased bicubic)."""
    h, w = height_width(size)
    if img.size == (w, h):
        return img
    return ImageOps.fit(img, (w, h), method=Image.Resampling.BICUBIC, centering=(0.5, 0.5))


def to_tensor(img: Image.Image) -> torch.Tensor:
    """A Pillow 'L' or 'RGB' image as a uint8 tensor (C, H, W)."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def read_image(path: Path, channels: int, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Decode ``path`` into a uint8 ``(channels, height, width)`` tensor of ``size`` (one side or
    ``(height, width)``; no resize when size is None)."""
    img = to_mode(open_image(path), channels)
    if size:
        img = fit(img, size)
    return to_tensor(img)
