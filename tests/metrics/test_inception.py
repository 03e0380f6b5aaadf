"""The FID Inception network read safely from a file, and the Inception Score from its logits."""

import os

import pytest
import torch

from gantk.errors import CheckpointError, ConfigError
from gantk.metrics import inception, load_fid_inception


def test_pickled_weights_with_code_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, path)
    with pytest.raises(CheckpointError, match="safely"):
        load_fid_inception(path)


def test_torchvision_imagenet_weights_are_refused_with_the_file_to_use(tmp_path):
    path = tmp_path / "inception_v3_google.pth"
    torch.save({"fc.weight": torch.zeros(1000, 2048), "AuxLogits.fc.weight": torch.zeros(1000, 768)}, path)
    with pytest.raises(CheckpointError, match="torchvision.*weights-inception-2015-12-05"):
        load_fid_inception(path)
    with pytest.raises(ConfigError, match=r"does not exist \(eval.fid_weights\)"):
        load_fid_inception(tmp_path / "missing.pth")


def test_inception_score_is_the_number_of_equally_likely_confident_classes():
    """exp(E KL(p(y|x) || p(y))): confident logits spread evenly over K classes score ~K; one class scores 1."""
    labels = torch.arange(2000) % 8
    confident = torch.nn.functional.one_hot(labels, 1008).double() * 60
    assert inception.inception_score(confident, splits=1)["inception_score"] == pytest.approx(8.0, rel=1e-9)
    spread = inception.inception_score(confident, seed=0)  # 10 shuffled splits of 200: class counts vary a little
    assert spread["inception_score"] == pytest.approx(8.0, rel=0.04) and 0 < spread["inception_score_std"] < 0.2
    assert inception.inception_score(confident[labels == 3])["inception_score"] == pytest.approx(1.0, abs=1e-6)
    noisy = confident + torch.randn(2000, 1008, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 5
    assert inception.inception_score(noisy, seed=4) == inception.inception_score(
        noisy, seed=4
    )  # the split shuffle is seeded
    with pytest.raises(ConfigError, match="at least 10 images"):
        inception.inception_score(confident[:9])
