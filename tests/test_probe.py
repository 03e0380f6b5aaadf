"""gantk probe: D's conv features max-pooled to 4x4, a linear L2-SVM, and the random-D baseline."""

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from gantk.cli import main
from gantk.errors import DataError, GantkError
from gantk.probe import extract, feature_layers, few_labels, probe
from tests.helpers import tiny_dcgan, trained_dcgan_run
from tests.helpers.labels import write_grey_levels


def _dcgan(data, channels=1):
    _, plugin = tiny_dcgan(data)
    plugin.cfg.data.channels = channels
    return plugin


def test_features_are_every_hidden_conv_pooled_to_4x4(image_folder):
    plugin = _dcgan(image_folder, channels=3)
    D = plugin.build_networks()["D"]
    layers = feature_layers(D)
    assert [m.out_channels for _, m in layers] == [4, 8]  # the final 1-channel logit conv is left out
    images = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    feats = extract(D, images, torch.device("cpu"), batch=2)
    assert feats.shape == (5, (4 + 8) * 16) and feats.dtype == np.float32
    assert np.allclose(feats[3], extract(D, images[3:4], torch.device("cpu"))[0], atol=1e-5)  # eval mode: per image

    class TakesLabel(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3)

        def forward(self, x, y):
            return self.conv(x)

    with pytest.raises(GantkError, match="needs more"):
        extract(TakesLabel(), images, torch.device("cpu"))


def test_few_labels_per_class():
    labels = np.array([0, 1, 2] * 10)
    picked = few_labels(labels, 4, seed=0)
    assert np.bincount(labels[picked]).tolist() == [4, 4, 4]
    assert np.array_equal(picked, few_labels(labels, 4, seed=0)) and not np.array_equal(
        picked, few_labels(labels, 4, 1)
    )
    assert len(few_labels(labels, 0, 0)) == 30
    with pytest.raises(DataError, match="class 0 has only 10"):
        few_labels(labels, 11, 0)


def test_probe_separates_labelled_classes_and_reports_the_random_baseline(tmp_path):
    data = write_grey_levels(tmp_path / "levels", per_class=20)
    plugin = _dcgan(data)
    torch.manual_seed(1)
    D = plugin.build_networks()["D"]
    report = probe(plugin, D, str(data), labels_per_class=6, seed=0)
    assert report.classes == ["dark", "light", "mid"] and report.labels_used == 18
    assert report.test_images == 12  # 20 % of each class held out
    assert report.trained.accuracy >= 0.9 and report.random.accuracy >= 0.9  # flat grey levels: easy
    assert report.trained.C in (1e-4, 1e-3, 1e-2, 1e-1, 1.0) and report.feature_dim == (4 + 8) * 16
    assert len(report.trained.per_class) == 3

    split = tmp_path / "split"  # a folder with train/ and test/ inside: those are the splits
    shutil.copytree(data, split / "train")
    write_grey_levels(split / "test", per_class=3)
    fixed = probe(plugin, D, str(split), labels_per_class=0, C=0.1)
    assert fixed.labels_used == 60 and fixed.test_images == 9 and fixed.trained.C == 0.1


def test_probe_command_on_a_run_and_refusals(image_folder, tmp_path):
    run = trained_dcgan_run(tmp_path, image_folder)
    data = write_grey_levels(tmp_path / "levels", per_class=10, size=20)
    out = tmp_path / "probe"
    assert (
        main(["probe", str(run), "--data", str(data), "--labels-per-class", "4", "--device", "cpu", "-o", str(out)])
        == 0
    )
    saved = json.loads((out / "probe.json").read_text())
    assert saved["labels_used"] == 12 and {"trained", "random"} <= set(saved) and "accuracy" in saved["trained"]
    assert "random init (baseline)" in (out / "probe.md").read_text()
    assert main(["probe", str(run), "--data", str(image_folder), "-o", str(tmp_path / "x")]) == 2  # no labels
    assert main(["export", str(run), "-o", str(tmp_path / "G")]) == 0
    assert main(["probe", str(tmp_path / "G"), "--data", str(data), "-o", str(tmp_path / "y")]) == 2  # no D


def test_one_class_and_a_half_split_folder_are_refused_in_one_sentence(tmp_path):
    """They ended in scikit-learn tracebacks (issue 30)."""
    data = write_grey_levels(tmp_path / "levels", per_class=6)
    plugin = _dcgan(data)
    D = plugin.build_networks()["D"]
    one = tmp_path / "one"
    shutil.copytree(data / "dark", one / "dark")
    with pytest.raises(DataError, match=r"one class \(dark\); a classifier needs at least two classes"):
        probe(plugin, D, str(one))
    for there, missing in (("train", "test"), ("test", "train")):
        half = tmp_path / f"only-{there}"
        shutil.copytree(data, half / there)
        with pytest.raises(DataError, match=rf"has {there}/ but no {missing}/"):
            probe(plugin, D, str(half))


def test_a_conditional_or_fixed_size_d_is_refused(tmp_path):
    """pix2pix's D sees 6 channels, SRGAN's a fixed size behind its linear layers (issue 30)."""
    from gantk.probe import _check_unconditional

    data = write_grey_levels(tmp_path / "levels", per_class=6)
    plugin = _dcgan(data, channels=3)
    with pytest.raises(GantkError, match=r"takes 6-channel inputs, not the data's 3 channels: it is a conditional D"):
        _check_unconditional(plugin, nn.Sequential(nn.Conv2d(6, 4, 3)))
    fixed = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 94 * 94, 1))
    with pytest.raises(GantkError, match=r"do not fit this D: RuntimeError"):
        extract(fixed, torch.zeros(2, 1, 16, 16, dtype=torch.uint8), torch.device("cpu"))
