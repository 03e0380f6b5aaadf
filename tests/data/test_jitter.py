"""Device-side crops and flips equal the slicing they replace."""

import torch

from gantk.data import jitter


def test_crop_equals_slicing_and_flip_mirrors():
    images = torch.arange(2 * 3 * 9 * 9, dtype=torch.float32).view(2, 3, 9, 9)
    top_left = torch.tensor([[0, 4], [3, 1]])
    out = jitter.crop(images, top_left, 5, flip=torch.tensor([False, True]))
    assert torch.equal(out[0], images[0, :, 0:5, 4:9])
    assert torch.equal(out[1], images[1, :, 3:8, 1:6].flip(-1))


def test_offsets_cover_the_room_uniformly():
    u = torch.rand(40_000, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(jitter.random_offsets(u, 5), minlength=5)
    assert counts.numel() == 5 and (counts - 8000).abs().max() < 400


def test_dihedral_gives_all_eight_symmetries_of_the_square():
    image = torch.arange(9.0).view(1, 1, 3, 3)
    bits = torch.tensor([[t, h, v] for t in (0, 1) for h in (0, 1) for v in (0, 1)], dtype=torch.bool)
    out = jitter.dihedral(image.expand(8, 1, 3, 3), bits)
    expected = {
        tuple(torch.rot90(m, k, (-2, -1)).flatten().tolist()) for m in (image, image.flip(-1)) for k in range(4)
    }
    assert {tuple(o.flatten().tolist()) for o in out} == expected
