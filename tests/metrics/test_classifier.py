"""The classification accuracy score's judge: trained on real data, saved and reloaded exactly."""

import json

import pytest
import torch

from gantk.config import DataConfig
from gantk.data import load_dataset
from gantk.errors import CheckpointError, DataError
from gantk.metrics import classifier as clf
from tests.helpers import write_image_folder
from tests.helpers.labels import write_grey_levels


@pytest.fixture(scope="module")
def levels(tmp_path_factory):
    root = write_grey_levels(tmp_path_factory.mktemp("levels"), per_class=20)
    return load_dataset(DataConfig(name=str(root), image_size=16, channels=1))


@pytest.fixture(scope="module")
def judge(levels):
    return clf.train_classifier(levels, steps=60, batch_size=16, seed=0, width=4, holdout=0.25)


def test_learns_a_separable_task_and_reports_held_out_accuracy(levels, judge):
    model, held = judge
    assert model.spec.class_names == ("dark", "light", "mid")
    assert held == 1.0
    overall, per_class = clf.dataset_accuracy(model, levels)
    assert overall == 1.0 and per_class == [1.0, 1.0, 1.0]


def test_accuracy_is_per_class():
    predicted = torch.tensor([0, 0, 1, 1, 2, 0])
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    overall, per_class = clf.accuracy(predicted, labels, 4)
    assert overall == pytest.approx(4 / 6)
    assert per_class[:3] == pytest.approx([1.0, 1.0, 1 / 3])
    assert per_class[3] != per_class[3]  # NaN: no sample of class 3


def test_training_leaves_the_callers_random_state_alone(levels):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    clf.train_classifier(levels, steps=2, batch_size=8, width=2)
    assert torch.equal(torch.rand(3), expected)


def test_save_and_load_give_the_same_predictions(judge, levels, tmp_path):
    model, held = judge
    folder = clf.save_classifier(model, tmp_path / "judge", {"heldout_accuracy": held})
    assert {p.name for p in folder.iterdir()} == {clf.CONFIG, clf.WEIGHTS}
    again = clf.load_classifier(folder)
    images = torch.rand(10, 1, 16, 16) * 2 - 1
    assert torch.equal(clf.predict(model, images), clf.predict(again, images))
    assert json.loads((folder / clf.CONFIG).read_text())["classifier"]["class_names"] == ["dark", "light", "mid"]


def test_resizes_other_image_sizes(judge):
    model, _ = judge
    assert clf.predict(model, torch.full((2, 1, 32, 32), 0.77)).tolist() == [1, 1]  # light at 2x size


def test_bad_folder_is_a_clear_error(tmp_path):
    (tmp_path / clf.CONFIG).write_text("{not json")
    with pytest.raises(CheckpointError, match="not a gantk classifier folder"):
        clf.load_classifier(tmp_path)


def test_unlabelled_data_is_refused(tmp_path):
    dataset = load_dataset(DataConfig(name=str(write_image_folder(tmp_path / "flat", n=4)), image_size=16))
    with pytest.raises(DataError, match="labelled data"):
        clf.train_classifier(dataset, steps=1)


def test_a_classifier_folder_that_does_not_exist_says_so_and_where_it_looked(tmp_path, monkeypatch):
    """It said "is not a classifier folder" for a relative path that did not exist (issue 30)."""
    from gantk.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"eval.classifier missing/clf does not exist \(a relative path .* beside"):
        clf.run_judge("missing/clf", tmp_path, lambda: None, steps=1, seed=0, data_name="x", device=torch.device("cpu"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"empty is not a classifier folder \(no config.json"):
        clf.run_judge("empty", tmp_path, lambda: None, steps=1, seed=0, data_name="x", device=torch.device("cpu"))
