from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gantk.config import DataConfig
from gantk.data import TensorDataset, load_dataset, locate
from gantk.data.datasets import image_folder, mnist, paired, read_idx
from gantk.errors import DataError
from tests.helpers import SHARED_DATA, write_image_folder, write_mnist


def test_image_folder_is_recursive_and_labels_first_level_folders(tmp_path: Path):
    root = write_image_folder(tmp_path / "imgs", n=12, size=10, classes=3)
    (root / "class1" / "deeper").mkdir()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(root / "class1" / "deeper" / "x.jpg")
    ds = image_folder(root, image_size=8, channels=0)
    assert len(ds) == 13 and ds.class_names == ("class0", "class1", "class2")
    item = ds[0]
    assert item["image"].shape == (3, 8, 8) and item["image"].dtype == torch.uint8
    labels = sorted(int(ds[i]["label"]) for i in range(len(ds)))
    assert labels.count(1) == 5  # 4 + the nested one


def test_image_folder_grey_detected(tmp_path: Path):
    root = write_image_folder(tmp_path / "g", n=3, mode="L")
    assert image_folder(root, 8, 0).channels == 1


def test_empty_folder_is_a_clear_error(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        image_folder(tmp_path / "empty", 8, 0)


def test_mnist_from_idx(tmp_path: Path):
    root = write_mnist(tmp_path / "m", n=10)
    ds = mnist(root, image_size=16, channels=0)
    assert isinstance(ds, TensorDataset) and len(ds) == 10
    assert ds.tensors["image"].shape == (10, 1, 16, 16) and ds.num_classes == 10
    assert len(mnist(root, 28, 0, split="test")) == 5


def test_truncated_idx(tmp_path: Path):
    root = write_mnist(tmp_path / "m", n=4)
    import gzip

    path = root / "raw" / "train-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())[:-50]
    path.write_bytes(gzip.compress(data))
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def _side_by_side(path: Path, left: int, right: int) -> None:
    arr = np.zeros((8, 16, 3), np.uint8)
    arr[:, :8], arr[:, 8:] = left, right
    Image.fromarray(arr).save(path)


def test_paired_side_by_side(tmp_path: Path):
    (tmp_path / "train").mkdir()
    for i in range(3):
        _side_by_side(tmp_path / "train" / f"{i}.png", 10, 250)
    ds = paired(tmp_path, image_size=8, channels=0)
    item = ds[0]
    assert item["A"].float().mean() == 10 and item["B"].float().mean() == 250


def test_paired_folders_and_unpaired_file(tmp_path: Path):
    for side in "AB":
        (tmp_path / side).mkdir()
        for i in range(2):
            Image.fromarray(np.full((8, 8, 3), 60 if side == "A" else 120, np.uint8)).save(tmp_path / side / f"{i}.png")
    ds = paired(tmp_path, 8, 0)
    assert len(ds) == 2 and ds[1]["B"].float().mean() == 120
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "A" / "lonely.png")
    with pytest.raises(DataError, match="lonely.png"):
        paired(tmp_path, 8, 0)


def test_odd_width_side_by_side_is_named(tmp_path: Path):
    Image.fromarray(np.zeros((8, 15, 3), np.uint8)).save(tmp_path / "odd.png")
    ds = paired(tmp_path, 8, 0)
    with pytest.raises(DataError, match="odd.png.*even width"):
        ds[0]


def test_load_dataset_preloads_and_limits(tmp_path: Path):
    root = write_image_folder(tmp_path / "imgs", n=10)
    ds = load_dataset(DataConfig(name=str(root), image_size=8, limit=6))
    assert isinstance(ds, TensorDataset) and len(ds) == 6
    lazy = load_dataset(DataConfig(name=str(root), image_size=8, preload="never"))
    assert not isinstance(lazy, TensorDataset) and len(lazy) == 10


def test_unknown_dataset_name():
    with pytest.raises(DataError, match="neither an existing folder nor a known dataset"):
        locate("no-such-dataset-xyz")


def test_gantk_data_env_is_searched(tmp_path: Path, monkeypatch):
    write_mnist(tmp_path / "mnist", n=4)
    monkeypatch.setenv("GANTK_DATA", str(tmp_path))
    root, kind = locate("mnist")
    assert root == tmp_path / "mnist" and kind == "mnist"


# ---- the real datasets, where ../shared/datasets (or $GANTK_DATA) has them ----------------------------

needs_shared = pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(), reason="no shared datasets here")


@needs_shared
def test_real_mnist(monkeypatch):
    monkeypatch.setenv("GANTK_DATA", str(SHARED_DATA))
    ds = load_dataset(DataConfig(name="mnist", image_size=28))
    assert len(ds) == 60000
    assert ds.tensors["label"][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # as PROVENANCE.md reads them


@needs_shared
def test_real_att_faces(monkeypatch):
    monkeypatch.setenv("GANTK_DATA", str(SHARED_DATA))
    ds = load_dataset(DataConfig(name="att_faces", image_size=64))
    assert len(ds) == 400 and ds.channels == 1 and ds.num_classes == 40
    assert ds.class_names[:3] == ("s1", "s2", "s3")
    assert ds.tensors["image"].shape == (400, 1, 64, 64)


@needs_shared
def test_real_facades_pairs(monkeypatch):
    monkeypatch.setenv("GANTK_DATA", str(SHARED_DATA))
    ds = load_dataset(DataConfig(name="facades", image_size=64, limit=5))
    item = ds[0]
    assert item["A"].shape == (3, 64, 64) and item["B"].shape == (3, 64, 64)
    # the label map (B, right half) is mostly saturated blue background; the photo is not
    a, b = item["A"].float(), item["B"].float()
    assert (b[2] - b[0]).mean() > (a[2] - a[0]).mean() + 30


def test_load_rows_reads_a_few_rows_as_the_preloaded_dataset_holds_them(tmp_path):
    """Held-out pairs and preview images are read alone (load_rows), and must be the very tensors the
    preloaded dataset holds in those rows, the last ones included."""
    from gantk.data import load_rows
    from tests.helpers.pairs import write_side_by_side

    folder = write_side_by_side(tmp_path / "pairs", n=9, size=16)
    cfg = DataConfig(name=str(folder), image_size=16, kind="paired", preload="never")
    everything = load_dataset(cfg).preload()
    for rows in (slice(-3, None), slice(0, 2), slice(-4, -1)):
        part = load_rows(cfg, "train", rows)
        assert set(part.tensors) == {"A", "B"}
        assert all(torch.equal(part.tensors[k], everything.tensors[k][rows]) for k in ("A", "B"))
    with pytest.raises(DataError, match="hold no item"):
        load_rows(cfg, "train", slice(20, 30))
