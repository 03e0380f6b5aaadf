"""Random crops and flips computed on the device, with fixed shapes and no host reads.

A crop at a random place is usually written as Python slicing with offsets drawn on the CPU. That
reads random numbers on the host, launches one slice per image, and cannot be captured as a CUDA
graph (the offsets drawn at capture would repeat on every replay). Here the offsets are tensors on the
device (from ``ctx.rand``, the engine's checkpointed generator), and the crop is two ``gather`` calls
over index grids built from them: the same kernels every step, whatever the offsets are.
"""

from __future__ import annotations

import torch
from torch import Tensor


def random_offsets(u: Tensor, room: int) -> Tensor:
    """Integers uniform in ``[0, room)`` from uniform ``[0, 1)`` draws ``u`` (any shape), on their device."""
    return (u * room).long().clamp_(0, room - 1)


def crop(images: Tensor, top_left: Tensor, size: int, flip: Tensor | None = None) -> Tensor:
    """``images[b, :, y:y+size, x:x+size]`` for each image b at ``top_left[b] = (y, x)``.

    ``images`` is (N, C, H, W), ``top_left`` (N, 2) integers on the same device. ``flip`` (N,) bool
    mirrors the chosen images left to right (by reading their columns backwards: no extra pass).
    """
    n, c, h, w = images.shape
    steps = torch.arange(size, device=images.device)
    rows = top_left[:, :1] + steps  # (N, size)
    cols = top_left[:, 1:] + steps
    if flip is not None:
        cols = torch.where(flip[:, None], cols.flip(-1), cols)
    out = images.gather(2, rows[:, None, :, None].expand(n, c, size, w))
    return out.gather(3, cols[:, None, None, :].expand(n, c, size, size))


def dihedral(images: Tensor, bits: Tensor) -> Tensor:
    """One of the 8 symmetries of the square per image: transpose, mirror, flip, by ``bits`` (N, 3) bool.

    Together the three bits give every rotation by 90 degrees and every mirror image, each equally
    likely when the bits are. The images must be square.
    """
    pick = bits[:, :, None, None, None]
    images = torch.where(pick[:, 0], images.transpose(-1, -2), images)
    images = torch.where(pick[:, 1], images.flip(-1), images)
    return torch.where(pick[:, 2], images.flip(-2), images)
