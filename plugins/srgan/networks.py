"""SRGAN networks (Ledig et al. 2017, figure 4): the SRResNet generator and the VGG-style discriminator.

Generator (SRResNet): a 9x9 conv + PReLU head; ``blocks`` residual blocks (conv3x3-BN-PReLU-conv3x3-BN
plus identity); conv3x3-BN with a long skip from the head; log2(scale) upsampling stages
(conv3x3 to 4x the channels, PixelShuffle x2, PReLU); a 9x9 conv tail to the image channels. The output
is linear: images are in [-1, 1] and the losses see it unclamped, as most reimplementations do.
``skip="bicubic"`` (not in the paper; off by default) adds the bicubic upscaling of the input to the
output, so the network learns only the residual detail (VDSR's global skip); it trains much faster,
which is what a CPU-trained model needs.

Discriminator: eight 3x3 convs, channels 64, 64, 128, 128, 256, 256, 512, 512 with strides alternating
1 and 2, LeakyReLU 0.2, batch norm on all but the first; then dense 1024, LeakyReLU, dense 1. It returns
a logit; the paper's sigmoid is inside the BCE-with-logits loss, which is the same function computed
stably.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from gantk.errors import ConfigError


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels), nn.PReLU(channels),
            nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """LR image (N, C, h, w) -> SR image (N, C, h * scale, w * scale)."""

    def __init__(
        self, scale: int = 4, channels: int = 3, width: int = 64, blocks: int = 16, skip: str = "none"
    ) -> None:
        super().__init__()
        if scale not in (2, 4, 8):
            raise ConfigError(f"model.scale must be 2, 4 or 8 (PixelShuffle x2 stages); got {scale}.")
        if skip not in ("none", "bicubic"):
            raise ConfigError(f"model.skip must be 'none' (the paper) or 'bicubic'; got {skip!r}.")
        self.scale = scale
        self.skip = skip
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, 1, 4), nn.PReLU(width))
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.fuse = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width))
        self.upsample = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(width, width * 4, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(width))
            for _ in range(int(math.log2(scale)))
        ])  # fmt: skip
        self.tail = nn.Conv2d(width, channels, 9, 1, 4)

    def receptive_radius(self) -> int:
        """How many LR pixels around a pixel can change its output: the overlap that makes tiled
        inference equal to whole-image inference (head 9x9, two 3x3 per block, fuse, one 3x3 per
        upsampling stage at its own resolution, the 9x9 tail at HR)."""
        stages = len(self.upsample)
        radius = 4 + 2 * len(self.blocks) + 1 + sum(1 / 2**i for i in range(stages)) + 4 / self.scale
        return math.ceil(radius)

    def forward(self, lr: Tensor) -> Tensor:
        h = self.head(lr)
        sr = self.tail(self.upsample(h + self.fuse(self.blocks(h))))
        if self.skip == "bicubic":  # learn only the detail bicubic misses (VDSR's global residual)
            sr = sr + F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return sr


class SRDiscriminator(nn.Module):
    """HR patch (N, C, patch, patch) -> one logit per image."""

    WIDTHS = (64, 64, 128, 128, 256, 256, 512, 512)

    def __init__(self, channels: int = 3, patch: int = 96, width: int = 64) -> None:
        super().__init__()
        if patch % 16:
            raise ConfigError(f"data.patch must be a multiple of 16 (four stride-2 convs); got {patch}.")
        widths = [w * width // 64 for w in self.WIDTHS]
        layers: list[nn.Module] = []
        cin = channels
        for i, cout in enumerate(widths):
            layers.append(nn.Conv2d(cin, cout, 3, 1 + i % 2, 1))
            if i:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, True))
            cin = cout
        self.features = nn.Sequential(*layers)
        side = patch // 16
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(cin * side * side, 1024), nn.LeakyReLU(0.2, True), nn.Linear(1024, 1)
        )

    def forward(self, hr: Tensor) -> Tensor:
        return self.head(self.features(hr)).flatten()
