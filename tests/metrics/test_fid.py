"""FID: the Frechet distance's closed form, and Inception weights read without unpickling code."""

import os

import numpy as np
import pytest
import torch


def test_pickled_weights_with_code_are_refused(tmp_path):
    from gantk.errors import CheckpointError
    from gantk.metrics import load_inception

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"x": Evil()}, path)
    with pytest.raises(CheckpointError, match="safely"):
        load_inception(path)


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    from gantk.metrics import frechet_distance

    # 1-d check: N(0, 1) vs N(1, 4): (0-1)^2 + 1 + 4 - 2*sqrt(4) = 2
    assert frechet_distance(np.zeros(1), np.eye(1), np.ones(1), 4 * np.eye(1)) == pytest.approx(2.0)
    # diagonal 3-d: sum over dims of (sqrt(a) - sqrt(b))^2 when means agree
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    expected = ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(np.zeros(3), np.diag(a), np.zeros(3), np.diag(b)) == pytest.approx(expected)
