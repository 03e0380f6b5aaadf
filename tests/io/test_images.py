"""Images between tensors and files: the one [-1, 1] <-> uint8 mapping, grids and files."""

import numpy as np
import torch
from PIL import Image

from gantk.io.images import from_uint8, grid_image, pil_image, save_each, save_grid, to_uint8, to_unit


def test_uint8_and_the_network_range_map_onto_each_other_exactly():
    pixels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    x = from_uint8(pixels)
    assert x.dtype == torch.float32 and x.min() == -1 and x.max() == 1
    assert torch.equal(to_uint8(x), pixels)  # every value survives the round trip
    assert to_uint8(torch.tensor([-1.3, 1.2, 0.0])).tolist() == [0, 255, 128]  # clamped, rounded
    assert torch.equal(to_unit(torch.tensor([-2.0, 0.0, 1.0])), torch.tensor([0.0, 0.5, 1.0]))


def test_from_uint8_leaves_its_input_alone():
    pixels = torch.full((1, 3, 2, 2), 200, dtype=torch.uint8)
    from_uint8(pixels)
    assert bool((pixels == 200).all())


def test_grids_and_files_hold_the_pixels(tmp_path):
    images = from_uint8(
        torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    )
    path = save_grid(images, tmp_path / "sub" / "grid.png", nrow=2)
    grid = np.asarray(Image.open(path))
    assert grid.shape == (2 + 2 * (8 + 2), 2 + 2 * (8 + 2), 3)  # make_grid's 2-pixel padding
    assert np.array_equal(grid[2:10, 2:10], to_uint8(images[0]).permute(1, 2, 0).numpy())
    small, big = grid_image(images[:1, :1]), grid_image(images[:1, :1], min_width=40)
    assert small.mode == big.mode == "L"  # grey stays grey
    factor = big.width // small.width  # enlarged by the smallest whole factor that reaches 40
    assert big.width == factor * small.width >= 40 > (factor - 1) * small.width
    files = save_each(images, tmp_path / "each", prefix="s")
    assert [p.name for p in files] == [f"s_{i:05d}.png" for i in range(4)]
    assert np.array_equal(np.asarray(Image.open(files[3])), np.asarray(pil_image(images[3])))
