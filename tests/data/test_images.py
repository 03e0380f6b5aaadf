from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gantk.data.images import read_image
from gantk.errors import DataError


@pytest.mark.parametrize(
    "mode, make",
    [
        ("L", lambda: np.full((10, 12), 200, np.uint8)),
        ("RGB", lambda: np.full((10, 12, 3), 200, np.uint8)),
        ("RGBA", lambda: np.dstack([np.full((10, 12, 3), 200, np.uint8), np.full((10, 12), 255, np.uint8)])),
        ("I;16", lambda: np.full((10, 12), 200 * 257, np.uint16)),
    ],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_any_mode_becomes_uint8_with_requested_channels(tmp_path: Path, mode, make, channels):
    path = tmp_path / "img.png"
    img = Image.fromarray(make())  # Pillow infers the mode from the array
    assert img.mode == mode
    img.save(path)
    x = read_image(path, channels, size=8)
    assert x.dtype.is_floating_point is False and x.shape == (channels, 8, 8)
    assert int(x.float().mean().round()) == 200  # value survives the conversion (16-bit rescaled to 8)


def test_transparent_pixels_become_white(tmp_path: Path):
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    assert read_image(tmp_path / "t.png", 3).min() == 255


def test_palette_image(tmp_path: Path):
    img = Image.fromarray(np.full((6, 6, 3), 90, np.uint8)).convert("P")
    img.save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png", 3).shape == (3, 6, 6)


def test_resize_centre_crops_to_square(tmp_path: Path):
    Image.fromarray(np.zeros((40, 80, 3), np.uint8)).save(tmp_path / "wide.png")
    assert read_image(tmp_path / "wide.png", 3, size=16).shape == (3, 16, 16)


def test_corrupt_file_names_the_file(tmp_path: Path):
    bad = tmp_path / "bad.png"
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(good)
    bad.write_bytes(good.read_bytes()[:60])  # truncated
    with pytest.raises(DataError, match="bad.png"):
        read_image(bad, 3)
