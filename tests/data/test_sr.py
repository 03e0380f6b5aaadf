"""SR data: grid patches with a count of skipped small images, bicubic LR like PIL, benchmark pairs."""

import numpy as np
import pytest
import torch
from PIL import Image

from gantk.data.sr import bicubic_downscale, hr_patches, load_sr_benchmark
from gantk.errors import DataError
from tests.helpers import SHARED_DATA


def _save(path, w, h, seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)


def test_patches_on_a_grid_and_small_images_skipped_and_counted(tmp_path):
    _save(tmp_path / "a.png", 40, 30)  # 3 x 2 crops of 16 at stride 12: tops 0, 12; lefts 0, 12, 24
    _save(tmp_path / "b.png", 10, 50)  # narrower than a crop
    _save(tmp_path / "c.png", 16, 16, mode="L")  # grey: read as RGB, one crop
    dataset = hr_patches(tmp_path, patch=16, stride=12)
    assert len(dataset) == 6 + 1 and dataset.skipped == 1
    assert dataset[0]["image"].shape == (3, 16, 16) and dataset[0]["image"].dtype == torch.uint8
    whole = torch.from_numpy(np.asarray(Image.open(tmp_path / "a.png"))).permute(2, 0, 1)
    assert torch.equal(dataset[4]["image"], whole[:, 12:28, 12:28])  # second row, second column


def test_all_images_too_small_is_a_clear_error(tmp_path):
    _save(tmp_path / "tiny.png", 8, 8)
    with pytest.raises(DataError, match="at least 96x96 pixels"):
        hr_patches(tmp_path, patch=96, stride=48)


def test_bicubic_downscale_matches_pil_within_one_level():
    rng = np.random.default_rng(3)
    smooth = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((64, 48), Image.BICUBIC)
    ours = bicubic_downscale(torch.from_numpy(np.asarray(smooth)).permute(2, 0, 1)[None].double(), 4)
    pil = np.asarray(smooth.resize((16, 12), Image.BICUBIC)).astype(np.float64)
    diff = np.abs(ours[0].permute(1, 2, 0).round().clamp(0, 255).numpy() - pil)
    assert diff.max() <= 1.0 and diff.mean() < 0.2


def test_benchmark_pairs_and_their_errors(tmp_path):
    _save(tmp_path / "HR" / "x.png", 32, 24)
    _save(tmp_path / "LR_bicubic" / "X4" / "x.png", 8, 6)
    (pair,) = load_sr_benchmark(tmp_path)
    assert pair.name == "x" and pair.hr.shape == (3, 24, 32) and pair.lr.shape == (3, 6, 8)
    _save(tmp_path / "LR_bicubic" / "X4" / "x.png", 9, 6)
    with pytest.raises(DataError, match="HR is 32x24 but LR is 9x6"):
        load_sr_benchmark(tmp_path)
    _save(tmp_path / "HR" / "y.png", 32, 24)
    (tmp_path / "LR_bicubic" / "X4" / "x.png").unlink()
    with pytest.raises(DataError, match="has no LR partner"):
        load_sr_benchmark(tmp_path)


@pytest.mark.skipif(not (SHARED_DATA / "sr" / "Set14").is_dir(), reason="needs ../shared/datasets/sr")
def test_real_set5_and_set14_load():
    set5, set14 = load_sr_benchmark(SHARED_DATA / "sr" / "Set5"), load_sr_benchmark(SHARED_DATA / "sr" / "Set14")
    assert [p.name for p in set5] == ["baby", "bird", "butterfly", "head", "woman"]
    assert len(set14) == 14 and all(p.hr.shape[0] == 3 for p in set14)  # bridge (grey) read as RGB
