"""gantk upscale: any mode in, the same kind of image out, 4x larger; header-checked pixel limits."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gantk.data.images import open_image
from gantk.errors import DataError
from gantk.io.generators import load_generator
from gantk.upscale import upscale_image
from tests.helpers import REPO
from tests.helpers.sr import tiny_sr_run


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory) -> Path:
    return tiny_sr_run(tmp_path_factory.mktemp("upscale"), steps=2)


@pytest.fixture(scope="module")
def model(sr_run):
    return load_generator(sr_run, "cpu")


def _photo(w: int = 13, h: int = 9) -> Image.Image:
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    ("mode", "expected"), [("RGB", "RGB"), ("L", "L"), ("P", "RGB"), ("I;16", "L"), ("RGBA", "RGBA"), ("LA", "LA")]
)
def test_every_mode_comes_back_4x_in_its_own_kind(model, mode, expected):
    plugin, G = model
    img = _photo()
    if mode == "I;16":
        img = Image.fromarray((np.asarray(img.convert("L"), dtype=np.uint16) * 257).astype(np.uint16))
    elif mode == "RGBA" or mode == "LA":
        img = img.convert(mode)
    else:
        img = img.convert(mode)
    out = upscale_image(plugin, G, img)
    assert out.size == (52, 36) and out.mode == expected


def test_alpha_is_kept_where_it_was(model):
    plugin, G = model
    img = _photo(16, 8).convert("RGBA")
    alpha = np.zeros((8, 16), np.uint8)
    alpha[:, 8:] = 255
    img.putalpha(Image.fromarray(alpha))
    out = np.asarray(upscale_image(plugin, G, img).getchannel("A"))
    assert out[:, :24].max() <= 10 and out[:, 40:].min() >= 245  # away from the edge, as it was


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny valid PNG whose header claims width x height pixels (a decompression bomb's header)."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    path.write_bytes(bytes(data))
    return path


def test_the_pixel_limit_is_checked_from_the_header_before_decoding(tmp_path):
    big = _png_claiming(tmp_path / "big.png", 5_000, 5_000)  # 75 MB of pixels if decoded; 70 bytes on disk
    with pytest.raises(DataError, match=r"big.png is 5000x5000 = 25,000,000 pixels; the limit is 1,000,000"):
        open_image(big, max_pixels=1_000_000)
    bomb = _png_claiming(tmp_path / "bomb.png", 40_000, 40_000)
    with pytest.raises(DataError, match="too large to decode safely"):
        open_image(bomb)  # Pillow's own bomb guard still applies without a limit
    _photo().save(tmp_path / "ok.png")
    assert open_image(tmp_path / "ok.png", max_pixels=13 * 9).size == (13, 9)


def test_the_command_upscales_a_file_and_a_folder(sr_run, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    _photo().save(folder / "a.png")
    _photo(8, 8).convert("L").save(folder / "b.jpg")
    cmd = [sys.executable, "-m", "gantk", "upscale", str(sr_run), "--device", "cpu"]
    one = subprocess.run(
        [*cmd, str(folder / "a.png"), "-o", str(tmp_path / "a4.png")], cwd=REPO, capture_output=True, text=True
    )
    assert one.returncode == 0, one.stderr
    assert Image.open(tmp_path / "a4.png").size == (52, 36)
    many = subprocess.run(
        [*cmd, str(folder), "-o", str(tmp_path / "out"), "--tile", "8"], cwd=REPO, capture_output=True, text=True
    )
    assert many.returncode == 0, many.stderr
    assert Image.open(tmp_path / "out" / "b.png").mode == "L"
    bad = subprocess.run(
        [*cmd, str(tmp_path / "missing.png"), "-o", str(tmp_path / "x.png")], cwd=REPO, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
