"""StyleGAN2-ADA (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN" and "Training
Generative Adversarial Networks with Limited Data"), as NVlabs/stylegan2-ada-pytorch trains it, in plain
PyTorch on gantk's engine.

One training step (``phases``), in NVlabs' order:

* **G**: non-saturating logistic loss ``softplus(-D(G(z)))``, with **style mixing** (probability 0.9: the
  styles after a random layer come from a second z);
* **G, every 4 steps**: **path-length regularisation**, ``w_pl * (|J_w^T y| - a)^2`` with ``y`` image-sized
  noise, ``a`` the running mean of the lengths (decay 0.01), on half the batch;
* **D**: ``softplus(D(G(z))) + softplus(-D(x))``, reporting D's real logits to ADA;
* **D, every 16 steps**: **R1**, ``gamma / 2 * |grad_x D(x)|^2`` on the reals, gamma by the paper's rule
  ``0.0002 * resolution^2 / batch`` unless set.

The two regularisers are lazy updates (``Update(..., every=k)``): the engine multiplies them by k, scales
the optimizers' learning rate and betas as the paper does, captures the three kinds of step (plain,
+path length, +path length +R1) as three CUDA graphs, and resumes exactly at any point of the cycle.
ADA is the engine's ``train.augment`` with ``adaptive: true`` (target 0.6, 500 kimg to move p by 1), on by
default: the datasets gantk ships are small. G's EMA has the paper's half-life of 10 kimg with ramp-up.

Sampling: ``truncation=psi`` pulls w towards the tracked mean (``sample_inputs(..., truncation=0.7)``);
the generator's ``psi`` input carries it into exports. Latent walks go in a straight line in W (the
paper's choice: W is the disentangled space), and ``style_mix_inputs`` makes the paper's style-mixing
grid; both are one call, ``Generator.blend``, that takes each layer's style between two w's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantk import Config, EvalContext, GanPlugin, Phase, StepContext, Update
from gantk.config import Count, NonNegative, PositiveInt, Range, Unit, Width
from gantk.errors import ConfigError, GantkError
from gantk.metrics import samples

from .networks import Discriminator, Generator, first_style_at, style_count


@dataclass
class StyleGAN2Model:
    z_dim: Width = 512
    w_dim: Width = 512
    channel_base: Width = 16384  # feature maps at resolution r: min(channel_base / r, channel_max)
    channel_max: Width = 512
    mapping_layers: Annotated[int, Range(1, 8)] = 2  # NVlabs' auto config: 2; the paper's configs: 8
    mbstd_group: Count = 4  # minibatch-std group size; 0: no minibatch-std layer


@dataclass
class StyleGAN2Loss:
    r1_gamma: Annotated[float, Range(-1)] = -1.0  # R1 weight; < 0: the paper's rule 0.0002 res^2 / batch
    r1_every: PositiveInt = 16  # lazy R1: every 16 D steps
    pl_weight: NonNegative = 2.0  # path-length weight; 0: off
    pl_every: PositiveInt = 4  # lazy path length: every 4 G steps
    pl_decay: Unit = 0.01  # the running mean of the path lengths
    pl_batch_shrink: PositiveInt = 2  # path length on batch / shrink samples
    style_mixing: Unit = 0.9  # probability of mixing two z's styles in a training batch


@dataclass
class StyleGAN2Config(Config):
    model: StyleGAN2Model = field(default_factory=StyleGAN2Model)
    loss: StyleGAN2Loss = field(default_factory=StyleGAN2Loss)


def r1_gamma_rule(resolution: int, batch_size: int) -> float:
    """NVlabs' ``auto`` config: ``gamma = 0.0002 * resolution^2 / batch``."""
    return 0.0002 * resolution**2 / batch_size


class StyleGAN2(GanPlugin):
    name = "stylegan2"
    description = "StyleGAN2-ADA (Karras et al. 2020): style-based G, residual D, lazy R1 + path length, ADA."
    config_class = StyleGAN2Config
    sample_options = ("truncation", "style_mix")

    cfg: StyleGAN2Config

    def best_metric(self) -> str:
        return samples.best_metric(self.cfg.eval)  # fid with the Inception weights, else kid_pixels

    def check_config(self) -> None:
        size = self.cfg.data.image_size
        if size < 8 or size > 1024 or size & (size - 1):
            raise ConfigError(f"StyleGAN2 needs data.image_size to be a power of two from 8 to 1024, got {size}.")
        batch, shrink = self.cfg.train.batch_size, self.cfg.loss.pl_batch_shrink
        if self.cfg.loss.pl_weight and batch // shrink < 1:
            raise ConfigError(
                f"loss.pl_batch_shrink={shrink} leaves no sample of train.batch_size={batch} for the path length."
            )

    @property
    def r1_gamma(self) -> float:
        gamma = self.cfg.loss.r1_gamma
        return r1_gamma_rule(self.cfg.data.image_size, self.cfg.train.batch_size) if gamma < 0 else gamma

    def build_networks(self) -> dict[str, nn.Module]:
        m, d = self.cfg.model, self.cfg.data
        G = Generator(m.z_dim, m.w_dim, d.image_size, d.channels, m.channel_base, m.channel_max, m.mapping_layers)
        D = Discriminator(d.image_size, d.channels, m.channel_base, m.channel_max, m.mbstd_group)
        return {"G": G, "D": D}

    def phases(self) -> list[Phase]:
        loss = self.cfg.loss
        updates = [Update("G", self.g_main, freeze=("D",))]
        if loss.pl_weight:
            updates.append(Update("G", self.g_pl, freeze=("D",), every=loss.pl_every))
        updates.append(Update("D", self.d_main))
        if self.r1_gamma:
            updates.append(Update("D", self.d_r1, every=loss.r1_every))
        return [Phase("gan", tuple(updates))]

    # ---- the losses -------------------------------------------------------------------------------
    def _generate(self, G: nn.Module, n: int, ctx: StepContext) -> tuple[Tensor, Tensor]:
        """``n`` training images and their ws, styles mixed with probability ``loss.style_mixing``: the
        layer where the second z takes over is drawn on the device, so the step stays capturable."""
        z = ctx.randn(n, self.cfg.model.z_dim)
        mix = self.cfg.loss.style_mixing
        if not mix:
            return G(z, return_ws=True)
        z2 = ctx.randn(n, self.cfg.model.z_dim)
        coin, where = ctx.rand(1), ctx.rand(1)
        return G(z, mix_z=z2, mix_cutoff=torch.where(coin < mix, where, torch.ones_like(where)), return_ws=True)

    def g_main(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, Tensor]:
        img, _ = self._generate(ctx.nets["G"], len(batch["image"]), ctx)
        return {"adv": F.softplus(-ctx.nets["D"](img)).mean()}

    def g_pl(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, Tensor]:
        """Path length (section 3.2): the Jacobian of the image w.r.t. w, in random image-space directions,
        should have the same length everywhere; deviations from its running mean are penalised."""
        G = ctx.nets["G"]
        loss = self.cfg.loss
        img, ws = self._generate(G, max(1, len(batch["image"]) // loss.pl_batch_shrink), ctx)
        noise = ctx.randn(*img.shape) / np.sqrt(img.shape[2] * img.shape[3])
        (grads,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grads.square().sum(2).mean(1).sqrt()
        pl_mean = _unwrapped(G).pl_mean
        with torch.no_grad():
            pl_mean.copy_(pl_mean.lerp(lengths.mean().float(), loss.pl_decay))
        ctx.log("G/pl_mean", pl_mean)
        # + 0 * img: every weight of G (ToRGB's biases too) gets a gradient, as data-parallel training
        # needs; the length of a Jacobian does not depend on the biases (NVlabs adds the same zero)
        return {"pl": (lengths - pl_mean).square().mean() * loss.pl_weight + img[:, 0, 0, 0].mean() * 0}

    def d_main(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, Tensor]:
        G, D = ctx.nets["G"], ctx.nets["D"]
        real = batch["image"]
        with torch.no_grad():
            fake, _ = self._generate(G, len(real), ctx)
        real_logits, fake_logits = D(real), D(fake)
        ctx.observe_real(real_logits)  # and the fakes': what ADA and the training-health alarms read
        ctx.observe_fake(fake_logits)
        ctx.observe_samples(fake, real)
        ctx.log("D/real_logit", real_logits)
        ctx.log("D/fake_logit", fake_logits)
        return {"real": F.softplus(-real_logits).mean(), "fake": F.softplus(fake_logits).mean()}

    def d_r1(self, batch: dict[str, Tensor], ctx: StepContext) -> dict[str, Tensor]:
        """R1 (Mescheder et al. 2018): the gradient of D on the reals, penalised towards zero."""
        real = batch["image"].detach().requires_grad_(True)
        logits = ctx.nets["D"](real)
        (grads,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
        # + 0 * logits: D's last bias, on which the gradient does not depend, gets one too (for DDP)
        return {"r1": grads.square().sum([1, 2, 3]).mean() * (self.r1_gamma / 2) + logits.mean() * 0}

    # ---- sampling ---------------------------------------------------------------------------------
    def sample_inputs(self, n: int, generator: torch.Generator, **conditions: Any) -> dict[str, Tensor]:
        """``truncation=psi`` (default 1: none) pulls each w towards the tracked mean w."""
        unknown = set(conditions) - {"truncation"}
        if unknown:
            raise ConfigError(f"plugin 'stylegan2' samples with truncation=PSI only, not {', '.join(sorted(unknown))}.")
        psi = float(conditions.get("truncation", 1.0))
        return {"z": torch.randn(n, self.cfg.model.z_dim, generator=generator), "psi": torch.full((n, 1), psi)}

    def generate(self, G: nn.Module, inputs: dict[str, Tensor]) -> Tensor:
        psi = inputs.get("psi")
        psi = 1.0 if psi is None else psi
        if "mix" not in inputs:
            return G(inputs["z"], psi).clamp(-1, 1)
        blend = getattr(_unwrapped(G), "blend", None)
        if blend is None:
            raise GantkError(
                "walks in W and style mixing need the generator's mapping and synthesis networks apart; this "
                "export runs z and psi through both in one graph. Sample from the checkpoint folder instead."
            )
        return blend(inputs["z"], inputs["z2"], inputs["mix"], psi).clamp(-1, 1)

    @property
    def num_ws(self) -> int:
        """How many styles the generator reads (without building it)."""
        return style_count(self.cfg.data.image_size)

    def interpolate(self, a: dict[str, Tensor], b: dict[str, Tensor], t: Tensor) -> dict[str, Tensor]:
        """A straight line from ``a``'s w to ``b``'s (both truncated by ``a``'s psi), every layer alike."""
        n = len(t)
        return {
            "z": a["z"].expand(n, -1),
            "z2": b["z"].expand(n, -1),
            "mix": t.to(a["z"].dtype).view(n, 1).expand(n, self.num_ws).contiguous(),
            "psi": a["psi"].expand(n, -1),
        }

    def style_mix_inputs(
        self, rows: int, cols: int, generator: torch.Generator, **conditions: Any
    ) -> dict[str, Tensor]:
        """The style-mixing figure's inputs (Karras et al. 2019, fig. 3): ``cols`` column sources, ``rows``
        row sources, then the ``rows x cols`` mixes row by row, where mix (r, c) takes row r's styles below
        resolution ``fine_from`` (default 16: the coarse 4x4 and 8x8 layers: pose, face shape) and column c's
        from there on (colours, texture). ``truncation=psi`` applies to every w."""
        res = self.cfg.data.image_size
        fine_from = conditions.pop("fine_from", None)
        fine_from = min(16, res) if fine_from is None else int(fine_from)
        if fine_from < 8 or fine_from > res or fine_from & (fine_from - 1):
            raise GantkError(
                f"fine_from={fine_from}: the fine styles begin at a resolution of this {res}x{res} generator "
                f"below which the coarse ones lie: a power of two from 8 to {res}."
            )
        row_in = self.sample_inputs(rows, generator, **conditions)
        col_in = self.sample_inputs(cols, generator, **conditions)
        z_rows, z_cols = row_in["z"], col_in["z"]
        fine = (torch.arange(self.num_ws) >= first_style_at(fine_from)).to(z_rows.dtype)
        n = cols + rows + rows * cols
        return {
            "z": torch.cat([z_cols, z_rows, z_rows.repeat_interleave(cols, 0)]),
            "z2": torch.cat([z_cols, z_rows, z_cols.repeat(rows, 1)]),
            "mix": torch.cat([torch.zeros(cols + rows, self.num_ws), fine.expand(rows * cols, -1)]),
            "psi": row_in["psi"][:1].expand(n, -1).contiguous(),
        }

    def evaluate(self, nets: dict[str, nn.Module], ctx: EvalContext) -> dict[str, float]:
        return samples.sample_metrics(self, nets["G"], ctx)

    def metric_names(self) -> tuple[str, ...]:
        return samples.metric_names(self.cfg.eval)


def _unwrapped(module: nn.Module) -> nn.Module:
    """The plain module inside DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while hasattr(module, "module") or hasattr(module, "_orig_mod"):
        module = getattr(module, "module", None) or module._orig_mod
    return module
