"""The checkpoints shipped in apps/checkpoints load from the repository alone and meet their bar."""

import json

import pytest
import torch

from gantk.io.generators import load_generator
from gantk.metrics import classifier as clf
from gantk.plugin import EvalContext
from gantk.sampling import sample_per_class
from tests.helpers import REPO, SHARED_DATA

CHECKPOINTS = REPO / "apps" / "checkpoints"


def test_cgan_mnist_accuracy_score_meets_the_bar():
    """Issue 3's bar: at least 0.97 overall and 0.93 for every digit, judged by the shipped classifier."""
    plugin, G = load_generator(CHECKPOINTS / "cgan-mnist")
    judge = clf.load_classifier(CHECKPOINTS / "mnist-classifier")
    assert plugin.class_names() == judge.spec.class_names == tuple(str(d) for d in range(10))
    images = sample_per_class(plugin, G, 200, seed=1)
    overall, per_class = clf.accuracy(clf.predict(judge, images), torch.arange(10).repeat_interleave(200), 10)
    assert overall >= 0.97, overall
    assert min(per_class) >= 0.93, per_class


def test_shipped_files_are_small_and_safe():
    for folder in (CHECKPOINTS / "cgan-mnist", CHECKPOINTS / "mnist-classifier", CHECKPOINTS / "srresnet-x4"):
        files = {p.name for p in folder.iterdir()}
        assert not any(name.endswith((".pt", ".pth", ".pkl", ".ckpt", ".bin")) for name in files)
        assert sum(p.stat().st_size for p in folder.iterdir()) < 8e6
    manifest = json.loads((CHECKPOINTS / "cgan-mnist" / "manifest.json").read_text())
    assert set(manifest["files"]) == {"config.json", "G.safetensors"}  # generator only: no D, no optimizer


@pytest.mark.skipif(not (SHARED_DATA / "sr" / "Set14").is_dir(), reason="Set5/Set14 not here (GANTK_DATA)")
def test_srresnet_x4_beats_bicubic_by_1db_on_set5_and_set14(tmp_path, monkeypatch):
    """Issue 5's bar: at least 1.0 dB over bicubic on Set5 and Set14 (Y channel, 4-pixel border crop)."""
    monkeypatch.setenv("GANTK_DATA", str(SHARED_DATA))
    plugin, G = load_generator(CHECKPOINTS / "srresnet-x4")
    with torch.no_grad():
        metrics = plugin.evaluate({"G": G}, EvalContext(torch.device("cpu"), 0, tmp_path))
    for name in ("Set5", "Set14"):
        gain = metrics[f"{name}/psnr_y"] - metrics[f"{name}/bicubic/psnr_y"]
        assert gain >= 1.0, (name, metrics[f"{name}/psnr_y"], metrics[f"{name}/bicubic/psnr_y"])
    readme = (CHECKPOINTS / "srresnet-x4" / "README.md").read_text()
    assert f"{metrics['Set5/psnr_y']:.2f}" in readme and f"{metrics['Set14/psnr_y']:.2f}" in readme  # table is true


def test_the_shipped_cgan_finds_its_judge_from_any_directory(tmp_path, monkeypatch):
    """config.json names its classifier as ../mnist-classifier: beside the checkpoint, not the cwd."""
    monkeypatch.chdir(tmp_path)
    plugin, _ = load_generator(CHECKPOINTS / "cgan-mnist")
    assert plugin.cfg.eval.classifier == str((CHECKPOINTS / "mnist-classifier").resolve())
    assert clf.load_classifier(plugin.cfg.eval.classifier).spec.class_names == tuple(str(d) for d in range(10))
