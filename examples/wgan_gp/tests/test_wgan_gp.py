"""The package's own test: the gantk conformance kit on a tiny WGAN-GP."""

from pathlib import Path

import numpy as np
from PIL import Image

from gantk.testing import check_plugin


def test_wgan_gp_conforms(tmp_path: Path):
    data = tmp_path / "images"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(data / f"{i}.png")
    check_plugin(
        "wgan_gp",
        data=data,
        overrides=["model.ngf=4", "model.ndf=4", "model.nz=8", "data.image_size=16", "train.batch_size=4"],
        workdir=tmp_path,
    )
