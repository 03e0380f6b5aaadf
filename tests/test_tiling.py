"""Tiled inference: pieces with overlap give the whole-image result; progress counts the tiles."""

import pytest
import torch
import torch.nn.functional as F

from gantk.tiling import tiled_apply


def test_a_pointwise_function_is_reassembled_exactly():
    x = torch.arange(2 * 11 * 9, dtype=torch.float32).view(1, 2, 11, 9)
    calls = []
    out = tiled_apply(
        lambda t: F.interpolate(t, scale_factor=3, mode="nearest"), x, 3, tile=4, overlap=0,
        progress=lambda done, total: calls.append((done, total)),
    )  # fmt: skip
    assert torch.equal(out, F.interpolate(x, scale_factor=3, mode="nearest"))
    assert calls == [(i, 9) for i in range(1, 10)]  # 3 x 3 tiles


def test_a_neighbourhood_function_needs_its_radius_as_overlap():
    x = torch.rand(1, 1, 15, 17)
    blur = torch.ones(1, 1, 5, 5) / 25  # radius 2

    def fn(t):
        return F.conv2d(t, blur, padding=2)

    whole = fn(x)
    assert torch.allclose(tiled_apply(fn, x, 1, tile=4, overlap=2), whole, atol=1e-6)
    assert not torch.allclose(tiled_apply(fn, x, 1, tile=4, overlap=1), whole, atol=1e-3)


def test_bad_tile_settings_are_refused():
    with pytest.raises(ValueError, match="tile must be positive"):
        tiled_apply(lambda t: t, torch.zeros(1, 1, 4, 4), 1, tile=0)
