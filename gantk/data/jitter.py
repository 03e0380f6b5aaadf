"""Random crops and flips computed on the device, with fixed shapes and no host reads.

A crop at a random place is usually written as Python slicing with offsets drawn on the CPU. That
reads random numbers on the host, launches one slice per image, and cannot be captured as a CUDA
graph (the offsets drawn at capture would repeat on every replay). Here the offsets are tensors on the
device (from ``ctx.rand``, the engine's checkpointed generator), and the crop is two ``gather`` calls
over index grids built from them: the same kernels every step, whatever the offsets are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gantk.config import height_width


def random_offsets(u: Tensor, room: int | tuple[int, int]) -> Tensor:
    """Integers uniform in ``[0, room)`` from uniform ``[0, 1)`` draws ``u`` (any shape), on their device.
    ``room`` as ``(rows, columns)`` takes ``u`` of shape (N, 2): one range per column of it."""
    if isinstance(room, tuple):  # per column: no tensor made from host values (a captured step forbids it)
        return torch.cat([random_offsets(u[:, :1], room[0]), random_offsets(u[:, 1:], room[1])], 1)
    return (u * room).long().clamp_(0, room - 1)


def crop(images: Tensor, top_left: Tensor, size: int | tuple[int, int], flip: Tensor | None = None) -> Tensor:
    """``images[b, :, y:y+height, x:x+width]`` for each image b at ``top_left[b] = (y, x)``; ``size`` is one
    side or ``(height, width)``.

    ``images`` is (N, C, H, W), ``top_left`` (N, 2) integers on the same device. ``flip`` (N,) bool
    mirrors the chosen images left to right (by reading their columns backwards: no extra pass).
    """
    n, c, h, w = images.shape
    height, width = height_width(size)
    rows = top_left[:, :1] + torch.arange(height, device=images.device)  # (N, height)
    cols = top_left[:, 1:] + torch.arange(width, device=images.device)
    if flip is not None:
        cols = torch.where(flip[:, None], cols.flip(-1), cols)
    out = images.gather(2, rows[:, None, :, None].expand(n, c, height, w))
    return out.gather(3, cols[:, None, None, :].expand(n, c, height, width))


def resize_and_crop(
    images: Tensor, load_size: int | tuple[int, int], size: int | tuple[int, int], u: Tensor, flip: Tensor | None
) -> Tensor:
    """pix2pix's and CycleGAN's random jitter: resize to ``load_size`` (bicubic; skipped when it equals
    ``size``), crop ``size`` at offsets drawn from ``u`` (N, 2) uniform, and mirror where ``flip``. Sizes
    are one side or ``(height, width)``."""
    load, out = height_width(load_size), height_width(size)
    if load != out:
        images = F.interpolate(images, size=load, mode="bicubic", align_corners=False).clamp_(-1, 1)
    offsets = random_offsets(u, (load[0] - out[0] + 1, load[1] - out[1] + 1))
    return crop(images, offsets, out, flip)


def dihedral(images: Tensor, bits: Tensor) -> Tensor:
    """One of the 8 symmetries of the square per image: transpose, mirror, flip, by ``bits`` (N, 3) bool.

    Together the three bits give every rotation by 90 degrees and every mirror image, each equally
    likely when the bits are. The images must be square.
    """
    pick = bits[:, :, None, None, None]
    images = torch.where(pick[:, 0], images.transpose(-1, -2), images)
    images = torch.where(pick[:, 1], images.flip(-1), images)
    return torch.where(pick[:, 2], images.flip(-2), images)
