"""WGAN-GP (Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville, 2017): "Improved Training of
Wasserstein GANs", NeurIPS.

The critic estimates the Wasserstein-1 distance. Its 1-Lipschitz constraint is kept by a gradient
penalty (lambda 10) on points between real and generated images, not by weight clipping. So the critic
has no batch norm, which would make each output depend on the whole batch. Each generator step follows
5 critic steps, and Adam runs at 1e-4 with betas (0.0, 0.9), as in the paper's Algorithm 1.

A different training rhythm, and the engine is unchanged: ``Phase.alternating(..., d_repeat=5)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import torch
from torch import nn

from gantk import Config, EvalContext, GanPlugin, Phase, StepContext
from gantk.config import NonNegative, Range, Width
from gantk.errors import ConfigError
from gantk.metrics import sample_metrics


@dataclass
class WGANGPModel:
    nz: Width = 128
    ngf: Width = 64
    ndf: Width = 64


@dataclass
class WGANGPLoss:
    gp_weight: NonNegative = 10.0
    critic_steps: Annotated[int, Range(1, 100)] = 5


@dataclass
class WGANGPConfig(Config):
    model: WGANGPModel = field(default_factory=WGANGPModel)
    loss: WGANGPLoss = field(default_factory=WGANGPLoss)


def _stages(size: int) -> int:
    n = size.bit_length() - 1
    if size < 16 or size != 1 << n:
        raise ConfigError(f"wgan_gp needs data.image_size to be a power of two >= 16, got {size}.")
    return n - 2


class Generator(nn.Module):
    def __init__(self, nz: int, ngf: int, channels: int, size: int) -> None:
        super().__init__()
        n = _stages(size)
        width = ngf * 2 ** (n - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, width, 4, 1, 0), nn.BatchNorm2d(width), nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1), nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(len(z), -1, 1, 1))


class Critic(nn.Module):
    """Strided convolutions and LeakyReLU, no batch norm (the penalty is per sample)."""

    def __init__(self, ndf: int, channels: int, size: int) -> None:
        super().__init__()
        n = _stages(size)
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = ndf
        for _ in range(n - 1):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1), nn.LeakyReLU(0.2, True)]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


class WGANGP(GanPlugin):
    name = "wgan_gp"
    description = "WGAN-GP (Gulrajani et al. 2017): gradient penalty 10, 5 critic steps per G step."
    config_class = WGANGPConfig

    cfg: WGANGPConfig

    def build_networks(self) -> dict[str, nn.Module]:
        m, d = self.cfg.model, self.cfg.data
        return {
            "G": Generator(m.nz, m.ngf, d.channels, d.image_size),
            "D": Critic(m.ndf, d.channels, d.image_size),
        }

    def phases(self) -> list[Phase]:
        return [Phase.alternating(self.critic_loss, self.g_loss, d_repeat=self.cfg.loss.critic_steps)]

    def critic_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        G, D = ctx.nets["G"], ctx.nets["D"]
        real = batch["image"]
        with torch.no_grad():
            fake = G(ctx.randn(len(real), self.cfg.model.nz))
        eps = ctx.rand(len(real), 1, 1, 1)
        mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(D(mixed).sum(), mixed, create_graph=True)
        penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        return {
            "wasserstein": D(fake).mean() - D(real).mean(),  # minus the distance estimate
            "gp": self.cfg.loss.gp_weight * penalty,
        }

    def g_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        fake = ctx.nets["G"](ctx.randn(len(batch["image"]), self.cfg.model.nz))
        return {"adv": -ctx.nets["D"](fake).mean()}

    def sample_inputs(self, n: int, generator: torch.Generator, **conditions) -> dict[str, torch.Tensor]:
        return {"z": torch.randn(n, self.cfg.model.nz, generator=generator)}

    def evaluate(self, nets: dict[str, nn.Module], ctx: EvalContext) -> dict[str, float]:
        """FID/KID of samples with eval.fid_weights, kid_pixels without: gantk's metrics for any sampler."""
        return sample_metrics(self, nets["G"], ctx)
