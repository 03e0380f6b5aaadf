"""pix2pix networks (Isola et al. 2017, appendix 6.1): the U-Net generator and the PatchGAN discriminator.

Notation from the paper: ``Ck`` is Convolution-Norm-ReLU with k filters, ``CDk`` the same with dropout
0.5; convolutions are 4x4 with stride 2. The encoder is C64-C128-C256-C512-C512-C512-C512-C512 (no norm
on the first layer, LeakyReLU 0.2); the U-Net decoder is CD512-CD1024-CD1024-C1024-C1024-C512-C256-C128
(channel counts include the skip connections, ReLU), then a convolution to the output channels and tanh.
"""

from __future__ import annotations

import functools

import torch
from torch import nn


def norm_layer(kind: str) -> type[nn.Module] | functools.partial:
    if kind == "batch":
        return nn.BatchNorm2d
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    raise ValueError(kind)


class UNetBlock(nn.Module):
    """One level of the U-Net: down, the inner levels, up, then the skip concatenation."""

    def __init__(
        self,
        outer: int,
        inner: int,
        *,
        in_channels: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        Norm = norm_layer(norm)
        bias = norm == "instance"  # batch norm's shift makes a conv bias redundant
        in_channels = in_channels or outer
        down = [nn.Conv2d(in_channels, inner, 4, 2, 1, bias=bias)]
        if outermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
            layers = down + [submodule] + up
        elif innermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias), Norm(outer)]
            if dropout:
                up.append(nn.Dropout(dropout))
            layers = [nn.LeakyReLU(0.2, True)] + down + up
        else:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=bias), Norm(outer)]
            if dropout:
                up.append(nn.Dropout(dropout))
            layers = [nn.LeakyReLU(0.2, True)] + down + [Norm(inner)] + [submodule] + up
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UNetGenerator(nn.Module):
    """U-Net with ``num_downs`` halvings (8 for 256x256: down to 1x1); inputs must be multiples of 2**num_downs.

    Dropout (the generator's only noise source) sits in the first three decoder blocks, counted from
    the bottleneck, as the paper's decoder CD512-CD1024-CD1024 has it. (pytorch-CycleGAN-and-pix2pix
    puts it one block further out, skipping the innermost up-convolution.)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ngf: int = 64,
        num_downs: int = 8,
        norm: str = "batch",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be at least 5, got {num_downs}")
        self.num_downs = num_downs
        block = UNetBlock(ngf * 8, ngf * 8, innermost=True, norm=norm, dropout=dropout)
        for i in range(num_downs - 5):  # the other 512-wide levels; the two nearest the bottleneck get dropout
            block = UNetBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout if i < 2 else 0.0)
        block = UNetBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UNetBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UNetBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UNetBlock(out_channels, ngf, in_channels=in_channels, submodule=block, outermost=True, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN: classifies overlapping patches as real or fake, one logit per patch.

    ``n_layers=3`` is the 70x70 PatchGAN (C64-C128-C256-C512, 30x30 logits on 256x256); ``n_layers=0``
    is the 1x1 PixelGAN; ``n_layers=5`` the 286x286 ImageGAN-like variant.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        Norm = norm_layer(norm)
        bias = norm == "instance"
        if n_layers == 0:  # PixelGAN: 1x1 convolutions only
            layers = [
                nn.Conv2d(in_channels, ndf, 1),
                nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
                Norm(ndf * 2),
                nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf * 2, 1, 1, bias=bias),
            ]
        else:
            layers = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]  # no norm on the first layer
            mult = 1
            for n in range(1, n_layers + 1):
                prev, mult = mult, min(2**n, 8)
                stride = 2 if n < n_layers else 1  # the last C512 has stride 1
                layers += [
                    nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=bias),
                    Norm(ndf * mult),
                    nn.LeakyReLU(0.2, True),
                ]
            layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
