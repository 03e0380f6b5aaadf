"""CycleGAN networks (Zhu et al. 2017, appendix 7.2), and the history of generated images D learns from.

Generator (Johnson et al.'s residual network): ``c7s1-64, d128, d256, R256 x n, u128, u64, c7s1-3``, where
``c7s1-k`` is a 7x7 convolution (stride 1, reflection padding) - instance norm - ReLU, ``dk`` a 3x3
stride-2 convolution - instance norm - ReLU, ``Rk`` a residual block of two 3x3 convolutions (reflection
padding), ``uk`` a 3x3 stride-1/2 transposed convolution - instance norm - ReLU; the last layer ends in tanh.
n = 9 blocks at 256x256, 6 at 128x128. The discriminator is the 70x70 PatchGAN shared with pix2pix
(``gantk.plugins.pix2pix.networks``), with instance norm.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gantk.config import height_width

#: instance norm as the paper uses it: no affine parameters, no running statistics
_NORM = {"affine": False, "track_running_stats": False}


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3),
            nn.InstanceNorm2d(width, **_NORM),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3),
            nn.InstanceNorm2d(width, **_NORM),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """Image -> image of the same size (any size that is a multiple of 4)."""

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, n_blocks: int = 9) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7),
            nn.InstanceNorm2d(ngf, **_NORM),
            nn.ReLU(True),
        ]
        for mult in (1, 2):  # d128, d256
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, 2, 1),
                nn.InstanceNorm2d(ngf * mult * 2, **_NORM),
                nn.ReLU(True),
            ]
        layers += [ResidualBlock(ngf * 4) for _ in range(n_blocks)]
        for mult in (4, 2):  # u128, u64
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, 2, 1, output_padding=1),
                nn.InstanceNorm2d(ngf * mult // 2, **_NORM),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ImagePool(nn.Module):
    """The history of generated images that a discriminator is updated with (Shrivastava et al. 2017; the
    paper keeps 50), as device buffers.

    Each generated image goes into the pool while it has room and is returned as it is. Once full, it is
    returned as it is with probability 1/2; otherwise it replaces a random stored image, which is returned
    instead. That is junyanz's ``ImagePool.query`` image by image, written without a host decision: the
    coin and the slot come in as device tensors (the engine's noise), the count lives on the device, and
    the choice is a ``torch.where``, so a step that queries the pool can be captured as a CUDA graph. The
    buffers are module state: checkpoints save them, and ``--resume`` continues with the same history.
    """

    def __init__(self, size: int, channels: int, image_size: int | tuple[int, int]) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, channels, *height_width(image_size)))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def forward(self, fakes: Tensor, coins: Tensor, slots: Tensor) -> Tensor:
        """``fakes`` (N, C, H, W); ``coins`` uniform [0, 1) and ``slots`` in [0, size), N of each, on the device."""
        if self.size == 0:
            return fakes
        out = []
        for i in range(len(fakes)):  # in order: a later image may meet the slot an earlier one filled
            image = fakes[i].to(self.images.dtype)
            filling = self.count < self.size
            slot = torch.where(filling, self.count, slots[i].long()).view(1)
            stored = self.images.index_select(0, slot)[0]
            swap = ~filling & (coins[i] > 0.5)
            out.append(torch.where(swap, stored, image))
            self.images.index_copy_(0, slot, torch.where(filling | swap, image, stored)[None])
            self.count.add_(filling.to(torch.int64))
        return torch.stack(out).to(fakes.dtype)
