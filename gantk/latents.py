"""A generator's latent inputs: the named codes a plugin declares, and the walk between two latents.

:class:`LatentCode` names one part of a generator's input that means something (InfoGAN's digit class
and stroke codes): ``gantk sample --traverse`` varies it. :func:`slerp` is the interpolation that
``GanPlugin.interpolate`` uses between Gaussian latents, which live near a sphere: a straight line
through its inside would pass through latents the generator never saw. Both are named in
:mod:`gantk.plugin` too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class LatentCode:
    """One named latent code of a generator's input: categorical with ``values`` values (0 .. values - 1),
    or continuous, trained on [``low``, ``high``] (and worth viewing beyond it)."""

    name: str
    kind: str  # "categorical" | "continuous"
    values: int = 0
    low: float = -1.0
    high: float = 1.0


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between two batches of one vector each (shape ``(1, ...)``)."""
    fa, fb = a.flatten(1), b.flatten(1)
    cos = (fa / fa.norm(dim=1, keepdim=True) * fb / fb.norm(dim=1, keepdim=True)).sum(1).clamp(-1, 1)
    omega = torch.arccos(cos)
    t = t.to(a.dtype).view(-1, 1)
    if omega.abs().item() < 1e-4:  # nearly parallel: fall back to a straight line
        out = (1 - t) * fa + t * fb
    else:
        so = torch.sin(omega)
        out = torch.sin((1 - t) * omega) / so * fa + torch.sin(t * omega) / so * fb
    return out.view(len(t), *a.shape[1:])
