"""A tiny plugin that uses every form contract 2 added: two generators stepped by one optimizer, one
name per direction, and a frozen auxiliary module in the loss. Built on the tiny DCGAN's config."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from gantk.plugins.dcgan.plugin import DCGAN, Generator
from torch import nn

from gantk import Phase, Update


class TwoGenerators(DCGAN):
    """G and G2 both fool D; one optimizer (``optim.G``) steps them together. A frozen random convolution
    (``aux["feat"]``) adds a feature-matching term, so the aux module is on the step's path."""

    name = "twogen"
    directions = {"one": "G", "two": "G2"}

    def build_networks(self) -> dict[str, nn.Module]:
        nets = super().build_networks()
        m, d = self.cfg.model, self.cfg.data
        nets["G2"] = Generator(m.nz, m.ngf, d.channels, d.image_size)
        return nets

    def build_aux(self) -> dict[str, nn.Module]:
        conv = nn.Conv2d(self.cfg.data.channels, 2, 3, padding=1)
        nn.init.normal_(conv.weight, generator=torch.Generator().manual_seed(5))
        return {"feat": conv}

    def phases(self) -> list[Phase]:
        return [
            Phase("gan", (Update("D", self.d_loss), Update(("G", "G2"), self.g2_loss, freeze=("D",), optimizer="G")))
        ]

    def d_loss(self, batch, ctx):
        terms = super().d_loss(batch, ctx)
        fake2 = ctx.nets["G2"](ctx.randn(len(batch["image"]), self.cfg.model.nz))
        ctx.scratch["fake2"] = fake2
        logits = ctx.nets["D"](fake2.detach())
        return terms | {"fake2": F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))}

    def g2_loss(self, batch, ctx):
        fake, fake2 = ctx.scratch.pop("fake"), ctx.scratch.pop("fake2")
        D, feat = ctx.nets["D"], ctx.aux["feat"]
        adv = [F.binary_cross_entropy_with_logits(o, torch.ones_like(o)) for o in (D(fake), D(fake2))]
        matching = (feat(fake).mean((0, 2, 3)) - feat(batch["image"]).mean((0, 2, 3))).pow(2).sum()
        return {"adv": adv[0], "adv2": adv[1], "matching": matching}
