"""Super-resolution of image files of any size and mode, shared by ``gantk upscale`` and the SR app.

The model works on RGB in [-1, 1]; files come as grey, RGB, RGBA, palette or 16-bit. This module:

* reads files with :func:`gantk.data.images.open_image`, whose ``max_pixels`` checks the pixel count
  from the header before decoding, so a decompression bomb is refused without allocating it;
* runs the model on the colour planes and upscales an alpha channel with bicubic (a network trained
  on photos has nothing to say about transparency), then puts it back;
* returns grey images as grey (the model's RGB output converted to luma).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gantk.data.images import GREY_MODES, to_mode, to_tensor
from gantk.io.generators import load_generator
from gantk.io.images import from_uint8, pil_image
from gantk.tiling import Progress


def load_upscaler(
    checkpoint: str | Path,
    device: str | torch.device = "cpu",
    which: str = "last",
    plugin_ref: str | None = None,
    overrides: list[str] | None = None,
):
    """``(plugin, G)`` of a super-resolution checkpoint (a plugin with ``upscale``); others are refused."""
    plugin, G = load_generator(checkpoint, device, which=which, plugin=plugin_ref, overrides=overrides, task="upscale")
    return plugin, G


def displayable(img: Image.Image) -> Image.Image:
    """``img`` in a mode PNG holds and bicubic resizes: CMYK, LAB, HSV, YCbCr as RGB, float and 32-bit
    grey as 8-bit grey, premultiplied alpha as plain alpha (a TIFF or JPEG upload may come in any)."""
    if img.mode in ("1", "L", "LA", "P", "RGB", "RGBA"):
        return img
    if img.mode in ("F", "I", "I;16", "I;16B", "I;16L"):
        return to_mode(img, 1)
    if img.mode == "La":  # Pillow converts nothing from it: same bytes, read as straight alpha
        return Image.frombytes("LA", img.size, img.tobytes())
    if img.mode in ("RGBa", "PA"):
        return img.convert("RGBA")
    return img.convert("RGB")


def upscale_image(plugin, G: torch.nn.Module, img: Image.Image, progress: Progress | None = None) -> Image.Image:
    """Super-resolve one Pillow image with an SR plugin's ``upscale``; keeps grey as grey and alpha as alpha."""
    img = displayable(img)
    grey = img.mode in GREY_MODES or (img.mode == "P" and _palette_is_grey(img))
    alpha = None
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        alpha = img.convert("RGBA").getchannel("A")
        img = img.convert("RGBA").convert("RGB") if not grey else img.convert("LA").convert("L")
    channels = plugin.cfg.data.channels or 3
    x = from_uint8(to_tensor(to_mode(img, channels)))[None]
    y = plugin.upscale(G, x, progress)[0]
    out = pil_image(y)
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
