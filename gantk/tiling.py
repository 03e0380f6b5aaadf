"""Tiled inference: run an image-to-image network over a large image in overlapping tiles.

Memory then grows with the tile, not the image: a 1000x750 input (a 4000x3000 4x output) needs the
activations of one tile at a time plus the output canvas. Each tile is cut with ``overlap`` extra
pixels on every side and only its centre is kept; when ``overlap`` is at least the network's receptive
radius the result equals whole-image inference exactly (up to float rounding), because no kept pixel
ever sees a tile edge.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Progress = Callable[[int, int], None]  # (tiles done, tiles in all)


def tiled_apply(
    fn: Callable[[Tensor], Tensor],
    image: Tensor,
    scale: int,
    tile: int = 128,
    overlap: int = 32,
    progress: Progress | None = None,
) -> Tensor:
    """``fn`` over ``image`` (1, C, H, W) in ``tile`` x ``tile`` pieces; returns (1, C', H*scale, W*scale)
    on the CPU. ``fn`` maps an input piece to its output, ``scale`` times larger."""
    if tile < 1 or overlap < 0:
        raise ValueError(f"tile must be positive and overlap non-negative; got tile={tile}, overlap={overlap}")
    _, _, h, w = image.shape
    tops, lefts = range(0, h, tile), range(0, w, tile)
    total, done = len(tops) * len(lefts), 0
    out: Tensor | None = None
    for top in tops:
        for left in lefts:
            t0, l0 = max(0, top - overlap), max(0, left - overlap)
            t1, l1 = min(h, top + tile + overlap), min(w, left + tile + overlap)
            piece = fn(image[..., t0:t1, l0:l1])
            if out is None:
                out = torch.empty(1, piece.shape[1], h * scale, w * scale, dtype=piece.dtype)
            bh, bw = min(tile, h - top), min(tile, w - left)
            y, x = (top - t0) * scale, (left - l0) * scale
            out[..., top * scale : (top + bh) * scale, left * scale : (left + bw) * scale] = piece[
                ..., y : y + bh * scale, x : x + bw * scale
            ].to("cpu")
            done += 1
            if progress is not None:
                progress(done, total)
    assert out is not None  # h, w >= 1 give at least one tile
    return out
