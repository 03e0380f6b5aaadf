"""Fuzz the data layer: random and mutated image files either read or give a DataError naming the file."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from gantk.config import DataConfig
from gantk.data import load_dataset
from gantk.data.images import read_image
from gantk.errors import DataError


def _png_bytes(rng, mode="RGB", size=12) -> bytes:
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buf, "PNG")
    return buf.getvalue()


def _jpeg_bytes(rng, size=12) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _bomb_png(width=40000, height=40000) -> bytes:
    """A tiny PNG whose header claims 1.6 G pixels: must be refused before anything is decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _mutants(seed: int, n: int) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(seed)
    out = [("empty.png", b""), ("bomb.png", _bomb_png()), ("text.jpg", b"not an image at all\n" * 3)]
    for i in range(n):
        base = _png_bytes(rng, "L" if i % 3 == 0 else "RGB") if i % 2 else _jpeg_bytes(rng)
        ext = ".png" if i % 2 else ".jpg"
        how = i % 4
        data = bytearray(base)
        if how == 0:  # truncated
            data = data[: int(rng.integers(1, len(data)))]
        elif how == 1:  # random bytes flipped
            for pos in rng.integers(0, len(data), int(rng.integers(1, 12))):
                data[pos] ^= int(rng.integers(1, 256))
        elif how == 2:  # random noise with an image's name
            data = bytearray(rng.integers(0, 256, int(rng.integers(1, 400)), dtype=np.uint8).tobytes())
        else:  # a valid header followed by garbage
            data = data[:40] + bytearray(rng.integers(0, 256, 200, dtype=np.uint8).tobytes())
        out.append((f"mutant_{i:03d}{ext}", bytes(data)))
    return out


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(7)
    for i in range(8):
        (root / f"good_{i}.png").write_bytes(_png_bytes(rng))
    for name, data in _mutants(seed=11, n=60):
        (root / name).write_bytes(data)
    return root


def test_every_file_reads_or_names_itself(fuzzed):
    readable = 0
    for path in sorted(fuzzed.iterdir()):
        try:
            image = read_image(path, 3, 16)
        except DataError as exc:  # any other exception type fails the test
            assert str(path) in str(exc)
            continue
        assert image.shape == (3, 16, 16) and str(image.dtype) == "torch.uint8"
        readable += 1
    assert 8 <= readable < len(list(fuzzed.iterdir()))  # the good ones read; some mutants do not


def test_raise_policy_stops_at_a_bad_file_naming_it(fuzzed):
    with pytest.raises(DataError, match=str(fuzzed)):
        load_dataset(DataConfig(name=str(fuzzed), image_size=16, channels=3))


@pytest.mark.parametrize("preload", ["always", "never"])
def test_skip_policy_keeps_the_readable_files_and_counts_the_rest(fuzzed, preload):
    total = len(list(fuzzed.iterdir()))
    good = 0
    for path in fuzzed.iterdir():
        try:
            read_image(path, 3, 16)
            good += 1
        except DataError:
            pass
    dataset = load_dataset(DataConfig(name=str(fuzzed), image_size=16, channels=3, on_error="skip", preload=preload))
    assert len(dataset) == good and dataset.skipped == total - good
    assert dataset[len(dataset) - 1]["image"].shape == (3, 16, 16)


def test_skip_policy_with_nothing_readable_is_an_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"junk")
    with pytest.raises(DataError, match="every file of .* failed to read"):
        load_dataset(DataConfig(name=str(tmp_path), image_size=16, channels=3, on_error="skip"))
