"""LPIPS: torchmetrics' network with the ImageNet backbone from a file (never downloaded, never random)
and the linear layers that ship with torchmetrics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torchmetrics.functional.image import lpips as tm_lpips

from gantk.errors import CheckpointError, ConfigError
from gantk.metrics.lpips import load_lpips, lpips


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory) -> Path:
    """torchvision's AlexNet features with random values, as a user's file would hold the ImageNet ones."""
    torch.manual_seed(0)
    features = torchvision.models.alexnet(weights=None).features
    path = tmp_path_factory.mktemp("lpips") / "alexnet.safetensors"
    save_file({f"features.{k}": v.contiguous() for k, v in features.state_dict().items()}, str(path))
    return path


def _by_hand(path: Path, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LPIPS written out (Zhang et al. 2018, eq. 1) on the same weights: the oracle for the wiring."""
    from safetensors.torch import load_file

    net = torchvision.models.alexnet(weights=None).features
    net.load_state_dict({k.removeprefix("features."): v for k, v in load_file(str(path)).items()})
    lins = torch.load(Path(tm_lpips.__file__).parent / "lpips_models" / "alex.pth", map_location="cpu")  # noqa: TID251
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    x, y = (((t.mul(255).round() / 127.5 - 1) - shift) / scale for t in (a, b))
    total = torch.zeros(len(a))
    taps = (1, 4, 7, 9, 11)  # AlexNet's ReLUs after each of the five convolutions
    for layer, tap in enumerate(taps):
        fx, fy = net[: tap + 1](x), net[: tap + 1](y)
        fx, fy = fx / (fx.norm(dim=1, keepdim=True) + 1e-10), fy / (fy.norm(dim=1, keepdim=True) + 1e-10)
        w = lins[f"lin{layer}.model.1.weight"]
        total += torch.nn.functional.conv2d((fx - fy) ** 2, w).mean((1, 2, 3))
    return total


def test_lpips_is_the_papers_distance_on_the_given_backbone(alexnet_file):
    model = load_lpips(str(alexnet_file))
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 3, 48, 40, generator=g)
    b = (a + 0.15 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    ours = lpips(model, a, b)
    assert torch.allclose(ours, _by_hand(alexnet_file, a, b), rtol=1e-4, atol=1e-6)
    assert torch.equal(lpips(model, a, a), torch.zeros(3))
    far = lpips(model, a, torch.rand(a.shape, generator=g))
    assert (far > ours).all() and not any(p.requires_grad for p in model.parameters())


def test_lpips_without_usable_weights_is_refused_by_name(alexnet_file, tmp_path):
    with pytest.raises(ConfigError, match="eval.lpips_weights to torchvision's alexnet-owt-7be5be79.pth"):
        load_lpips("")
    with pytest.raises(ConfigError, match=r"missing.pth does not exist \(eval.lpips_weights\)"):
        load_lpips(str(tmp_path / "missing.pth"))
    with pytest.raises(CheckpointError, match=r"not torchvision's vgg16 .*features.0.weight is of shape"):
        load_lpips(str(alexnet_file), "vgg")
    empty = tmp_path / "classifier-only.safetensors"
    save_file({"classifier.1.weight": torch.zeros(2, 2)}, str(empty))
    with pytest.raises(CheckpointError, match="features.0.weight is missing"):
        load_lpips(str(empty))


def test_torchvisions_loader_that_cannot_provide_weights_is_refused_not_replaced(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: the loader would have to download

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(ConfigError, match=r"'torchvision', but torchvision could not provide the alexnet.*no network"):
        load_lpips("torchvision")
