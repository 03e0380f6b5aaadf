"""CGAN networks: the label joins the input of both G and D, by concatenation (Mirza & Osindero 2014).

``conv`` (default) is DCGAN-shaped: G sees ``[z, one_hot(y)]`` as a 1x1 map and upsamples it with
transposed convolutions; D sees the image with ``num_classes`` extra constant planes, plane ``y`` all
ones, the others zeros. ``mlp`` is the paper's fully-connected form: G maps ``[z, one_hot(y)]`` to the
flattened image, D maps ``[flatten(x), one_hot(y)]`` to a logit. (The paper's D uses maxout units; here
they are LeakyReLU + dropout, the common modern substitute.)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gantk.errors import ConfigError


def one_hot(y: Tensor, num_classes: int, like: Tensor) -> Tensor:
    """(N,) class indices -> (N, num_classes) one-hot rows in ``like``'s dtype.

    Written as a comparison rather than ``F.one_hot``, which checks the indices' range on the host (a
    GPU sync every call, and no CUDA-graph capture). Labels are checked where they enter: the dataset
    and ``sample_inputs``.
    """
    classes = torch.arange(num_classes, device=y.device)
    return (y.long()[:, None] == classes).to(like.dtype)


def _stages(image_size: int) -> int:
    n = image_size.bit_length() - 1
    if image_size < 8 or image_size != 1 << n:
        raise ConfigError(f"model.arch=conv needs data.image_size to be a power of two >= 8, got {image_size}")
    return n - 2  # stride-2 stages between 4x4 and image_size


class ConvGenerator(nn.Module):
    """[z, one_hot(y)] (1x1) -> 4x4 -> ... -> image; BN + ReLU inside, tanh out."""

    def __init__(self, nz: int, num_classes: int, ngf: int, channels: int, image_size: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        n = _stages(image_size)
        width = ngf * 2 ** (n - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz + num_classes, width, 4, 1, 0, bias=False)]
        for _ in range(n - 1):
            layers += [nn.BatchNorm2d(width), nn.ReLU(True), nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False)]
            width //= 2
        layers += [nn.BatchNorm2d(width), nn.ReLU(True), nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        h = torch.cat([z.flatten(1), one_hot(y, self.num_classes, z)], 1)
        return self.net(h[:, :, None, None])


class ConvDiscriminator(nn.Module):
    """[image, label planes] -> ... -> 4x4 -> one logit; LeakyReLU(0.2), BN except on the input layer."""

    def __init__(self, num_classes: int, ndf: int, channels: int, image_size: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        n = _stages(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels + num_classes, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for _ in range(n - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2)]
            layers += [nn.LeakyReLU(0.2, True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        planes = one_hot(y, self.num_classes, x)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return self.net(torch.cat([x, planes], 1)).view(-1)


class MLPGenerator(nn.Module):
    """[z, one_hot(y)] -> hidden (BN + ReLU) -> C*H*W, tanh."""

    def __init__(self, nz: int, num_classes: int, hidden: list[int], channels: int, image_size: int) -> None:
        super().__init__()
        self.num_classes, self.shape = num_classes, (channels, image_size, image_size)
        layers: list[nn.Module] = []
        width = nz + num_classes
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(True)]
            width = h
        layers += [nn.Linear(width, channels * image_size * image_size), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.net(torch.cat([z.flatten(1), one_hot(y, self.num_classes, z)], 1)).view(len(z), *self.shape)


class MLPDiscriminator(nn.Module):
    """[flatten(image), one_hot(y)] -> hidden (LeakyReLU 0.2 + dropout) -> one logit."""

    def __init__(self, num_classes: int, hidden: list[int], channels: int, image_size: int, dropout: float) -> None:
        super().__init__()
        self.num_classes = num_classes
        layers: list[nn.Module] = []
        width = channels * image_size * image_size + num_classes
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2, True), nn.Dropout(dropout)]
            width = h
        layers += [nn.Linear(width, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.net(torch.cat([x.flatten(1), one_hot(y, self.num_classes, x)], 1)).view(-1)
