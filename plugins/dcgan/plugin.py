"""DCGAN (Radford, Metz & Chintala, 2015): "Unsupervised Representation Learning with Deep
Convolutional Generative Adversarial Networks", arXiv:1511.06434.

The paper's architecture rules, as built here:

* no pooling: strided convolutions in D, fractional-strided (transposed) convolutions in G;
* batch norm in both networks, except G's output layer and D's input layer;
* no fully-connected hidden layers (z enters as a 1x1 map; D ends in a 4x4 convolution);
* ReLU in G with tanh on the output; LeakyReLU(0.2) in D;
* weights from N(0, 0.02); Adam, lr 2e-4, beta1 0.5; batch 128; z of 100 from a normal distribution.

D outputs a logit; its sigmoid lives inside the loss (``binary_cross_entropy_with_logits``), which is
the paper's loss computed stably. Image size is any power of two from 16 (64 by default, 32 for CIFAR
and MNIST-sized runs); the number of (de)convolution blocks follows from it.

Checkerboard artefacts (Odena, Dumoulin & Olah, "Deconvolution and Checkerboard Artifacts", 2016): a
stride-2 transposed convolution whose kernel is not divisible by the stride (the original DCGAN code's
5x5) paints some output pixels with more kernel taps than their neighbours, a grid pattern G must learn
to cancel. G here uses 4x4 kernels at stride 2, as pytorch/examples does: every output pixel gets the
same number of taps, so the uneven overlap is gone, though learned weights can still leave a faint
pattern early in training. Resize-then-convolve removes it entirely at some cost in sharpness; it is
not the paper's architecture, so it is left to a plugin of its own.

Evaluation: FID/KID of ``eval.fid_samples`` samples with ``eval.fid_weights`` (docs/metrics.md), else
the weight-free ``kid_pixels``; the lowest keeps ``checkpoints/best``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from gantk import Config, EvalContext, GanPlugin, Phase, StepContext
from gantk.config import NonNegative, Range, Width
from gantk.errors import ConfigError
from gantk.init import normal_init
from gantk.metrics import samples


@dataclass
class DCGANModel:
    nz: Width = 100  # length of z
    ngf: Width = 64  # G's channels at the last hidden layer (doubling towards the input)
    ndf: Width = 64  # D's channels at the first layer (doubling towards the output)


@dataclass
class DCGANLoss:
    label_smoothing: Annotated[float, Range(0, 1, hi_open=True)] = (
        0.0  # one-sided: D's target for real images is 1 - label_smoothing
    )
    instance_noise: NonNegative = 0.0  # std of Gaussian noise added to D's inputs, annealed to 0 over training


@dataclass
class DCGANConfig(Config):
    model: DCGANModel = field(default_factory=DCGANModel)
    loss: DCGANLoss = field(default_factory=DCGANLoss)


def _blocks(image_size: int) -> int:
    """Number of stride-2 stages between 4x4 and ``image_size``."""
    n = image_size.bit_length() - 1
    if image_size < 16 or image_size != 1 << n:
        raise ConfigError(f"DCGAN needs data.image_size to be a power of two >= 16, got {image_size}")
    return n - 2


class Generator(nn.Module):
    """z (nz x 1 x 1) -> 4x4 -> ... -> image, doubling the resolution and halving channels each block."""

    def __init__(self, nz: int, ngf: int, channels: int, image_size: int) -> None:
        super().__init__()
        n = _blocks(image_size)
        width = ngf * 2 ** (n - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(n - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]  # no BN on the output
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.flatten(1)[:, :, None, None])  # no len(): the batch stays dynamic when exported


class Discriminator(nn.Module):
    """image -> ... -> 4x4 -> one logit, halving the resolution and doubling channels each block."""

    def __init__(self, ndf: int, channels: int, image_size: int) -> None:
        super().__init__()
        n = _blocks(image_size)
        layers: list[nn.Module] = [
            nn.Conv2d(channels, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, True),
        ]  # no BN on the input
        width = ndf
        for _ in range(n - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width * 2),
                nn.LeakyReLU(0.2, True),
            ]
            width *= 2
        layers += [nn.Conv2d(width, 1, 4, 1, 0, bias=False)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).view(-1)


class DCGAN(GanPlugin):
    name = "dcgan"
    description = "DCGAN (Radford et al. 2015): all-convolutional G and D with batch norm, 64x64 or 32x32."
    config_class = DCGANConfig

    cfg: DCGANConfig

    def best_metric(self) -> str:
        return samples.best_metric(self.cfg.eval)  # fid with the Inception weights, else kid_pixels

    def check_config(self) -> None:
        _blocks(self.cfg.data.image_size)

    def build_networks(self) -> dict[str, nn.Module]:
        m, d = self.cfg.model, self.cfg.data
        G = Generator(m.nz, m.ngf, d.channels, d.image_size)
        D = Discriminator(m.ndf, d.channels, d.image_size)
        G.apply(normal_init)
        D.apply(normal_init)
        return {"G": G, "D": D}

    def phases(self) -> list[Phase]:
        return [Phase.alternating(self.d_loss, self.g_loss)]

    def _noisy(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        if self.cfg.loss.instance_noise <= 0:
            return x
        step = ctx.step_tensor if ctx.step_tensor is not None else torch.tensor(ctx.step, device=x.device)
        sigma = self.cfg.loss.instance_noise * (1.0 - step.float() / ctx.max_steps)  # annealed, on the device
        return x + sigma * ctx.randn(*x.shape)

    def d_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        G, D = ctx.nets["G"], ctx.nets["D"]
        real = batch["image"]
        fake = G(ctx.randn(len(real), self.cfg.model.nz))
        ctx.scratch["fake"] = fake  # reused by the G update of this step: G runs forward once
        real_logits = D(self._noisy(real, ctx))
        fake_logits = D(self._noisy(fake.detach(), ctx))
        ctx.observe_real(real_logits)  # and the fakes': what ADA and the training-health alarms read
        ctx.observe_fake(fake_logits)
        ctx.observe_samples(fake, real)
        ctx.log("D/real_logit", real_logits)
        ctx.log("D/fake_logit", fake_logits)
        target = torch.full_like(real_logits, 1.0 - self.cfg.loss.label_smoothing)
        return {
            "real": F.binary_cross_entropy_with_logits(real_logits, target),
            "fake": F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)),
        }

    def g_loss(self, batch: dict[str, torch.Tensor], ctx: StepContext) -> dict[str, torch.Tensor]:
        fake = ctx.scratch.pop("fake")
        logits = ctx.nets["D"](self._noisy(fake, ctx))
        return {"adv": F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))}  # non-saturating

    def sample_inputs(self, n: int, generator: torch.Generator, **conditions) -> dict[str, torch.Tensor]:
        return {"z": torch.randn(n, self.cfg.model.nz, generator=generator)}

    # ---- evaluation: FID/KID of samples (kid_pixels without Inception weights); the best keeps the lowest
    def evaluate(self, nets: dict[str, nn.Module], ctx: EvalContext) -> dict[str, float]:
        return samples.sample_metrics(self, nets["G"], ctx)

    def metric_names(self) -> tuple[str, ...]:
        return samples.metric_names(self.cfg.eval)
