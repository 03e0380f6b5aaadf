"""data.transforms: a saved albumentations pipeline on the training items, pairs together, seeded per draw."""

from __future__ import annotations

import albumentations as A
import pytest
import torch

from gantk.config import DataConfig
from gantk.data import load_dataset
from gantk.data.loader import BatchStream
from gantk.data.transforms import TransformedDataset, load_pipeline
from gantk.engine import Trainer
from gantk.errors import ConfigError, DataError
from tests.helpers import tiny_dcgan, write_image_folder
from tests.helpers.pairs import write_side_by_side


def _saved(pipeline, path):
    A.save(pipeline, str(path), data_format="yaml" if path.suffix != ".json" else "json")
    return path


def test_a_pipeline_changes_images_as_saved(tmp_path):
    data = load_dataset(DataConfig(name=str(write_image_folder(tmp_path / "img", n=4, size=16)), image_size=16))
    path = _saved(A.Compose([A.HorizontalFlip(p=1.0)]), tmp_path / "flip.json")
    flipped = TransformedDataset(data, load_pipeline(path), 16, str(path))
    assert torch.equal(flipped[(2, 7)]["image"], data[2]["image"].flip(-1))


@pytest.mark.filterwarnings(
    "ignore:Argument\\(s\\) 'padding' are not valid:UserWarning"
)  # albumentations' own save/load
def test_pairs_get_the_same_transform_and_each_draw_its_own_seed(tmp_path):
    pairs = load_dataset(
        DataConfig(name=str(write_side_by_side(tmp_path / "p", n=4, size=16)), kind="paired", image_size=16)
    )
    pipeline = A.Compose([A.RandomCrop(12, 12), A.PadIfNeeded(16, 16, border_mode=0), A.HorizontalFlip(p=0.5)])
    data = TransformedDataset(pairs, load_pipeline(_saved(pipeline, tmp_path / "crop.yaml")), 16, "crop.yaml")
    draws = [data[(1, seed)] for seed in range(6)]
    for item in draws:  # B is 255 - A in these pairs: it stays so where both were cropped alike
        inside = item["A"] != 0
        assert torch.equal(item["B"][inside], 255 - item["A"][inside])
    assert len({bytes(d["A"].numpy()) for d in draws}) > 1  # other seeds, other crops
    assert torch.equal(data[(1, 3)]["A"], draws[3]["A"])  # the same draw, the same result


def test_a_resumed_stream_draws_the_same_augmented_batches(tmp_path):
    data = load_dataset(DataConfig(name=str(write_image_folder(tmp_path / "img", n=8, size=16)), image_size=16))
    pipeline = _saved(A.Compose([A.RandomBrightnessContrast(p=1.0), A.HorizontalFlip()]), tmp_path / "c.yaml")
    augmented = TransformedDataset(data, load_pipeline(pipeline), 16, "c.yaml")
    stream = BatchStream(augmented, 4, seed=5)
    batches = [next(stream)["image"] for _ in range(3)]
    resumed = BatchStream(augmented, 4, seed=5)
    resumed.load_state_dict({"epoch": 0, "batch": 1})
    assert torch.equal(next(resumed)["image"], batches[1]) and torch.equal(next(resumed)["image"], batches[2])


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: p, "no such file"),
        (
            lambda p: (p.with_suffix(".txt").write_text("x"), p.with_suffix(".txt"))[1],
            "expected a .yaml, .yml or .json",
        ),
        (
            lambda p: (
                p.write_text(
                    "transform:\n  __class_fullname__: Compose\n  transforms:\n  - __class_fullname__: HorizontalFlipp\n"
                ),
                p,
            )[1],
            "names the transform 'HorizontalFlipp'",
        ),
        (lambda p: (p.write_text("transform: [1, 2"), p)[1], "is not a loadable albumentations pipeline"),
    ],
)
@pytest.mark.filterwarnings("ignore:Transform HorizontalFlipp has no 'p':UserWarning")
def test_a_pipeline_that_cannot_be_loaded_is_one_paragraph(tmp_path, write, message):
    with pytest.raises(ConfigError, match=message):
        load_pipeline(write(tmp_path / "aug.yaml"))


def test_outputs_must_stay_uint8_and_the_same_size(tmp_path):
    data = load_dataset(DataConfig(name=str(write_image_folder(tmp_path / "img", n=2, size=16)), image_size=16))
    for pipeline, message in (
        (A.Compose([A.Resize(8, 8)]), r"into \(3, 8, 8\)"),
        (A.Compose([A.ToFloat()]), "float32 pixels"),
    ):
        path = _saved(pipeline, tmp_path / "p.yaml")
        with pytest.raises(DataError, match=message):
            TransformedDataset(data, load_pipeline(path), 16, str(path))[(0, 0)]


def test_a_run_trains_on_transformed_items_and_refuses_a_bad_file_before_any_folder(tmp_path):
    folder = write_image_folder(tmp_path / "img", n=16)
    path = _saved(A.Compose([A.HorizontalFlip(), A.RandomBrightnessContrast()]), tmp_path / "aug.yaml")
    spec, plugin = tiny_dcgan(folder, train={"max_steps": 2})
    plugin.cfg.data.transforms = str(path)
    Trainer(plugin, tmp_path / "run", spec).fit()
    assert (tmp_path / "run" / "checkpoints" / "step_00000002").is_dir()
    from gantk.cli import main

    assert (
        main(
            [
                "train",
                "dcgan",
                "--data",
                str(folder),
                "--out",
                str(tmp_path / "bad"),
                "--set",
                f"data.transforms={tmp_path / 'none.yaml'}",
            ]
        )
        == 2
    )
    assert not (tmp_path / "bad").exists()
