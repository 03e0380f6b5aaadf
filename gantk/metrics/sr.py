"""Super-resolution metrics with the field's evaluation conventions (SRGAN paper, BasicSR).

Published SR numbers are only comparable under the same protocol, so both are spelled out here:

* **Y channel, border crop** (Ledig et al. 2017 and most SR papers): convert to the Y of ITU-R BT.601
  "studio swing" YCbCr, as MATLAB's ``rgb2ycbcr`` does (Y in [16, 235]), crop ``border`` pixels from every
  side, then compute PSNR / SSIM on the 0-255 scale. Kornia's ``rgb_to_ycbcr`` is the full-range JPEG
  variant (Y in [0, 255]), which gives different numbers, hence the small function below.
* **RGB, border = scale** (BasicSR's default for RGB tables).

Images are quantised to 8 bits first, as they are when saved and as the reference code reads them.
SSIM is Wang et al.'s: an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, over valid
positions only (kornia, ``padding="valid"``).
"""

from __future__ import annotations

import hashlib
import math

import torch
from kornia.metrics import ssim as kornia_ssim
from torch import Tensor

# MATLAB rgb2ycbcr, Y row, for RGB in [0, 1]: Y = 16 + 65.481 R + 128.553 G + 24.966 B (0-255 scale)
_Y_WEIGHTS = (65.481, 128.553, 24.966)


def quantize(images: Tensor) -> Tensor:
    """Images in [0, 1] -> float 0-255 values rounded to whole numbers, as an 8-bit file holds them."""
    return images.clamp(0, 1).mul(255).round()


def rgb_to_y(images_255: Tensor) -> Tensor:
    """(N, 3, H, W) RGB on the 0-255 scale -> (N, 1, H, W) BT.601 studio-swing Y on the 0-255 scale."""
    w = images_255.new_tensor(_Y_WEIGHTS).view(1, 3, 1, 1)
    return (images_255 / 255.0 * w).sum(1, keepdim=True) + 16.0


def _prepare(sr: Tensor, hr: Tensor, border: int, y_channel: bool) -> tuple[Tensor, Tensor]:
    if sr.shape != hr.shape:
        raise ValueError(f"super-resolved and reference images differ in shape: {tuple(sr.shape)} vs {tuple(hr.shape)}")
    a, b = quantize(sr.double()), quantize(hr.double())
    if y_channel and a.shape[1] == 3:
        a, b = rgb_to_y(a), rgb_to_y(b)
    if border:
        a, b = a[..., border:-border, border:-border], b[..., border:-border, border:-border]
    return a, b


def psnr(sr: Tensor, hr: Tensor, border: int = 0, y_channel: bool = True) -> Tensor:
    """PSNR in dB per image; ``sr`` and ``hr`` are (N, C, H, W) in [0, 1]. Identical images give inf."""
    a, b = _prepare(sr, hr, border, y_channel)
    mse = (a - b).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(255.0**2 / mse)


def ssim(sr: Tensor, hr: Tensor, border: int = 0, y_channel: bool = True) -> Tensor:
    """SSIM per image (mean over channels and valid positions); inputs as for :func:`psnr`."""
    a, b = _prepare(sr, hr, border, y_channel)
    if min(a.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after the border crop; got {tuple(a.shape[-2:])}")
    return kornia_ssim(a, b, window_size=11, max_val=255.0, padding="valid").flatten(1).mean(1)


def mean_db(values: Tensor) -> float:
    """Mean PSNR over images, ignoring identical pairs (inf) the way a table would print them."""
    finite = values[torch.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.inf


def protocol(scale: int) -> dict[str, str]:
    """The protocol card of :func:`psnr` / :func:`ssim` as the SR plugins report them."""
    return {
        "y": "PSNR/SSIM on BT.601 studio-swing Y (MATLAB rgb2ycbcr), 4-pixel border crop",
        "rgb": f"PSNR/SSIM on RGB, {scale}-pixel border crop (border = scale)",
        "quantised": "8-bit, as saved files",
        "ssim": "11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, valid positions (kornia)",
        "lr": f"the benchmark's own LR_bicubic/X{scale} files",
    }


def pairs_sha256(pairs: list[tuple[Tensor, Tensor]]) -> str:
    """SHA-256 of a benchmark's (HR, LR) uint8 images in order: the reference set's identity."""
    digest = hashlib.sha256()
    for hr, lr in pairs:
        for image in (hr, lr):
            digest.update(str(tuple(image.shape)).encode())
            digest.update(image.contiguous().numpy().tobytes())
    return digest.hexdigest()
