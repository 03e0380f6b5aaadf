"""Super-resolution of image files of any size and mode, shared by ``gantk upscale`` and the SR app.

The model works on RGB in [-1, 1]; files come as grey, RGB, RGBA, palette or 16-bit. This module:

* checks the pixel count from the header before decoding, so a decompression bomb (a small file that
  claims gigapixels) is refused without allocating it;
* runs the model on the colour planes and upscales an alpha channel with bicubic (a network trained
  on photos has nothing to say about transparency), then puts it back;
* returns grey images as grey (the model's RGB output converted to luma).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from gantk.data.images import to_mode, to_tensor
from gantk.errors import DataError
from gantk.tiling import Progress

GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


def open_checked(path: str | Path, max_pixels: int = 0) -> Image.Image:
    """Open and decode ``path``; with ``max_pixels`` the header's size is checked first, before decoding."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            w, h = img.size
            if max_pixels and w * h > max_pixels:
                raise DataError(
                    f"image {path.name} is {w}x{h} = {w * h:,} pixels; the limit is {max_pixels:,} pixels. "
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


def upscale_image(plugin, G: torch.nn.Module, img: Image.Image, progress: Progress | None = None) -> Image.Image:
    """Super-resolve one Pillow image with an SR plugin's ``upscale``; keeps grey as grey and alpha as alpha."""
    grey = img.mode in GREY_MODES or (img.mode == "P" and _palette_is_grey(img))
    alpha = None
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        alpha = img.convert("RGBA").getchannel("A")
        img = img.convert("RGBA").convert("RGB") if not grey else img.convert("LA").convert("L")
    channels = plugin.cfg.data.channels or 3
    x = to_tensor(to_mode(img, channels)).float().div(127.5).sub(1)[None]
    y = plugin.upscale(G, x, progress)[0]
    pixels = y.mul(127.5).add(127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    out = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    if grey and out.mode != "L":
        out = out.convert("L")
    if alpha is not None:
        out.putalpha(alpha.resize(out.size, Image.Resampling.BICUBIC))
    return out


def bicubic_image(img: Image.Image, scale: int) -> Image.Image:
    """The baseline the app compares against: Pillow's bicubic upscaling."""
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.BICUBIC)


def _palette_is_grey(img: Image.Image) -> bool:
    palette = np.asarray(img.getpalette() or [], dtype=np.int32).reshape(-1, 3)
    return bool(len(palette)) and bool((palette == palette[:, :1]).all())
