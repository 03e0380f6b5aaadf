"""The VGG19 content loss: weights from a file made here or torchvision's loader, never unpickling code."""

import urllib.error

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from gantk.errors import CheckpointError
from gantk.losses import VGGContentLoss, load_vgg19_features
from tests.helpers.sr import vgg_features_file


def test_vgg_content_loss_from_a_weights_file(tmp_path):
    trunk = load_vgg19_features(str(vgg_features_file(tmp_path)))
    assert trunk is not None and len(trunk) == 36 and isinstance(trunk[-1], nn.ReLU)  # phi_{5,4}: conv5_4 + ReLU
    assert not any(p.requires_grad for p in trunk.parameters())
    loss = VGGContentLoss(trunk)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    sr = (x + 0.3 * torch.randn_like(x)).requires_grad_()
    assert loss(x, x).item() == 0.0
    value = loss(sr, x)
    value.backward()
    assert value.item() > 0 and sr.grad is not None and sr.grad.abs().sum() > 0


def test_torchvision_loader_failure_falls_back_with_a_warning(monkeypatch):
    import torchvision.models

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torchvision.models, "vgg19", offline)
    with pytest.warns(UserWarning, match="could not provide the VGG19 ImageNet weights.*falls back"):
        assert load_vgg19_features("torchvision") is None


def test_vgg_weights_that_are_not_vgg_or_not_safe_are_refused(tmp_path):
    wrong = tmp_path / "wrong.safetensors"
    save_file({"features.0.weight": torch.zeros(1)}, str(wrong))
    with pytest.raises(CheckpointError, match="not a VGG19 state dict.*features.0.weight"):
        load_vgg19_features(str(wrong))
    save_file({"classifier.9.weight": torch.zeros(1)}, str(wrong))
    with pytest.raises(CheckpointError, match=r"missing \['features.0.weight'"):
        load_vgg19_features(str(wrong))
    pickled = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(1), "hook": PickledThing()}, pickled)
    with pytest.raises(CheckpointError, match="safely"):
        load_vgg19_features(str(pickled))


class PickledThing:
    """An arbitrary object: torch.load(weights_only=True) must refuse to rebuild it."""


# ---- inference and evaluation ----------------------------------------------------------------------
