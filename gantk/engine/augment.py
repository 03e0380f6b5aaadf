"""Differentiable augmentation of everything the discriminator sees: DiffAugment, with ADA's adaptive p.

With little data, D memorises the training set and G collapses. DiffAugment (Zhao et al. 2020) shows D
only augmented images, real and generated alike (in G's update too, so G's gradient passes through the
same transforms); ADA (Karras et al. 2020) applies each transform with a probability p that rises while
D over-fits: every ``interval`` steps, p moves by ``batch * interval / (ada_kimg * 1000)`` towards
r_t = E[sign(D(real))] reaching ``target``.

The engine wraps the network a plugin names in ``augment_network`` (``D``) in :class:`AugmentedNetwork`,
so a plugin's losses need no change. The image is the first argument (CGAN's label passes through);
a paired D's input (pix2pix's input and output concatenated on the channels) gets the same geometric
transform over all its channels and the same colour change in each ``channels``-wide group, so input
and output stay aligned. Images are in [-1, 1], as D sees them.

The transforms are DiffAugment's, written out here rather than taken from kornia's augmentation
classes: those draw their parameters from PyTorch's CPU generator on every call, which a captured CUDA
graph would freeze and a checkpoint would not hold. Here every draw comes from the run's device noise
generator (``ctx.rand``'s), so a step stays one capturable graph and ``--resume`` replays the same
augmentations; p and its running statistic are part of every checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gantk.config import AugmentConfig
from gantk.engine import distributed
from gantk.plugin import draw_for_rank

POLICIES = ("color", "translation", "cutout")
TRANSLATION = 0.125  # DiffAugment: shifts of up to 1/8 of the side, zero-filled
CUTOUT = 0.5  # DiffAugment: one square of half the side, zeroed


class Augmenter:
    """The transforms, the probability p (a device tensor) and ADA's running statistic of D(real)."""

    def __init__(
        self,
        cfg: AugmentConfig,
        channels: int,
        batch_size: int,
        device: torch.device,
        noise: torch.Generator,
        world: distributed.World,
    ) -> None:
        self.policy = tuple(cfg.policy)
        self.adaptive, self.target, self.interval = cfg.adaptive, cfg.target, cfg.interval
        self.channels = max(1, channels)
        self.noise, self.device, self.world = noise, device, world
        self.adjust = batch_size * cfg.interval / (cfg.ada_kimg * 1000)  # p's change per adjustment
        self.p = torch.full((), float(cfg.p), device=device)
        self.sign_sum = torch.zeros((), device=device)  # sum of sign(D(real)) since the last adjustment
        self.sign_count = torch.zeros((), device=device)
        self.observed = False  # a plugin reported real logits (ADA needs them); set on the eager first step

    # ---- the transforms ---------------------------------------------------------------------------
    def _rand(self, n: int, *shape: int) -> Tensor:
        """Uniform [0, 1) for this rank's ``n`` images, drawn for the global batch (as ``ctx.rand``)."""
        return draw_for_rank(torch.rand, (n, *shape), self.noise, self.device, self.world.rank, self.world.size)

    def __call__(self, x: Tensor) -> Tensor:
        """``x`` (N, C, H, W) with each policy applied to each image with probability p."""
        for name in self.policy:
            n = len(x)
            apply = (self._rand(n) < self.p).view(n, 1, 1, 1)
            x = torch.where(apply, getattr(self, f"_{name}")(x), x)
        return x

    def _groups(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C / channels, channels, H, W): one group per image of a paired input."""
        n, c, h, w = x.shape
        groups = c // self.channels if c % self.channels == 0 else 1
        return x.reshape(n, groups, c // groups, h, w)

    def _color(self, x: Tensor) -> Tensor:
        """DiffAugment's colour: brightness +-0.5, saturation x[0, 2], contrast x[0.5, 1.5], one draw per image."""
        n = len(x)
        r = self._rand(n, 3).view(n, 1, 3, 1, 1, 1).unbind(2)
        g = self._groups(x)
        g = g + (r[0] - 0.5)
        mean = g.mean(dim=2, keepdim=True)
        g = (g - mean) * (r[1] * 2) + mean
        mean = g.mean(dim=(2, 3, 4), keepdim=True)
        g = (g - mean) * (r[2] + 0.5) + mean
        return g.reshape(x.shape)

    def _translation(self, x: Tensor) -> Tensor:
        """Whole-pixel shifts of up to 1/8 of each side, the uncovered border zero (grey in [-1, 1])."""
        n, c, h, w = x.shape
        r = self._rand(n, 2)
        reach_y, reach_x = int(h * TRANSLATION + 0.5), int(w * TRANSLATION + 0.5)
        shift_y = (r[:, :1] * (2 * reach_y + 1)).floor().long() - reach_y  # uniform in [-reach, reach]
        shift_x = (r[:, 1:] * (2 * reach_x + 1)).floor().long() - reach_x
        ys = torch.arange(h, device=x.device).view(1, h) - shift_y
        xs = torch.arange(w, device=x.device).view(1, w) - shift_x
        inside = ((ys >= 0) & (ys < h)).view(n, 1, h, 1) & ((xs >= 0) & (xs < w)).view(n, 1, 1, w)
        out = x.gather(2, ys.clamp(0, h - 1).view(n, 1, h, 1).expand(n, c, h, w))
        out = out.gather(3, xs.clamp(0, w - 1).view(n, 1, 1, w).expand(n, c, h, w))
        return out * inside.to(out.dtype)

    def _cutout(self, x: Tensor) -> Tensor:
        """One square of half each side zeroed, centred anywhere in the image (it may overhang the edge)."""
        n, _, h, w = x.shape
        size_y, size_x = int(h * CUTOUT + 0.5), int(w * CUTOUT + 0.5)
        r = self._rand(n, 2)
        top = (r[:, :1] * (h + 1 - size_y % 2)).floor().long() - size_y // 2
        left = (r[:, 1:] * (w + 1 - size_x % 2)).floor().long() - size_x // 2
        ys = torch.arange(h, device=x.device).view(1, h)
        xs = torch.arange(w, device=x.device).view(1, w)
        hole = ((ys >= top) & (ys < top + size_y)).view(n, 1, h, 1) & ((xs >= left) & (xs < left + size_x)).view(
            n, 1, 1, w
        )
        return x * (~hole).to(x.dtype)

    # ---- ADA ---------------------------------------------------------------------------------------
    def observe_real(self, logits: Tensor) -> None:
        """Add D's logits on real images to r_t's running sum (on the device)."""
        self.observed = True
        logits = logits.detach().float()
        self.sign_sum.add_(logits.sign().sum())
        self.sign_count.add_(logits.numel())

    def after_step(self, steps_done: Tensor) -> dict[str, Tensor]:
        """Every ``interval`` steps under ``adaptive``: move p towards r_t = target, then restart the sum.
        Device work only (a captured step replays it); returns what to log."""
        logged = {"p": self.p}
        if not self.adaptive:
            return logged
        due = steps_done % self.interval == 0
        totals = torch.stack([self.sign_sum, self.sign_count])
        if self.world.distributed:
            totals = distributed.mean_over_ranks(totals, self.world)
        seen = totals[1] > 0
        r_t = totals[0] / totals[1].clamp(min=1)
        step = torch.where(due & seen, torch.sign(r_t - self.target) * self.adjust, 0.0)
        self.p.copy_((self.p + step).clamp(0.0, 1.0))
        self.sign_sum.copy_(torch.where(due, 0.0, self.sign_sum))
        self.sign_count.copy_(torch.where(due, 0.0, self.sign_count))
        logged["rt"] = r_t
        return logged

    # ---- checkpoints -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p.clone(), "sign_sum": self.sign_sum.clone(), "sign_count": self.sign_count.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("p", "sign_sum", "sign_count"):
            getattr(self, key).copy_(state[key].to(self.device))


class AugmentedNetwork(nn.Module):
    """``net`` seeing its first (image) argument augmented; the other arguments pass through."""

    def __init__(self, net: nn.Module, augmenter: Augmenter) -> None:
        super().__init__()
        self.net = net
        self.augmenter = augmenter

    def forward(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return self.net(self.augmenter(x), *args, **kwargs)
