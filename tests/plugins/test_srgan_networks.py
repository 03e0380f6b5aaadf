"""SRGAN's networks follow the paper's figure 4."""

import pytest
import torch
from gantk.plugins.srgan.networks import ResidualBlock, SRDiscriminator, SRResNet
from torch import nn

from gantk.errors import ConfigError


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_generator_upscales_by_its_scale(scale):
    G = SRResNet(scale=scale, width=8, blocks=2).eval()
    assert G(torch.rand(2, 3, 6, 5)).shape == (2, 3, 6 * scale, 5 * scale)
    assert sum(isinstance(m, nn.PixelShuffle) for m in G.modules()) == {2: 1, 4: 2, 8: 3}[scale]


def test_paper_generator_shape():
    G = SRResNet()
    assert sum(isinstance(m, ResidualBlock) for m in G.modules()) == 16
    assert G.head[0].kernel_size == (9, 9) and G.tail.kernel_size == (9, 9) and G.head[0].out_channels == 64
    assert sum(isinstance(m, nn.PReLU) for m in G.modules()) == 1 + 16 + 2
    assert 1.5e6 < sum(p.numel() for p in G.parameters()) < 1.6e6  # SRResNet's ~1.5 M parameters


def test_paper_discriminator_shape():
    D = SRDiscriminator()
    convs = [m for m in D.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.features) == 7  # none after the first conv
    assert isinstance(D.features[1], nn.LeakyReLU) and D.features[1].negative_slope == 0.2
    assert D.head[1].in_features == 512 * 6 * 6 and D.head[1].out_features == 1024
    assert D(torch.rand(2, 3, 96, 96)).shape == (2,)


def test_bad_scale_and_patch_are_config_errors():
    with pytest.raises(ConfigError, match="model.scale must be 2, 4 or 8"):
        SRResNet(scale=3)
    with pytest.raises(ConfigError, match="multiple of 16"):
        SRDiscriminator(patch=90)


def test_bicubic_skip_makes_a_silent_network_bicubic():
    G = SRResNet(scale=4, width=8, blocks=1, skip="bicubic").eval()
    torch.nn.init.zeros_(G.tail.weight)
    torch.nn.init.zeros_(G.tail.bias)
    x = torch.rand(1, 3, 7, 9) * 2 - 1
    expected = torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.allclose(G(x), expected, atol=1e-6)
    with pytest.raises(ConfigError, match="model.skip"):
        SRResNet(skip="nearest")
