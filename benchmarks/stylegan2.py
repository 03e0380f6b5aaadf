"""StyleGAN2 training speed: gantk's engine vs a plain loop of the same networks, losses and lazy rhythm.

The plugin's default setting (NVlabs' ``auto`` config at 64x64: channel_base 16384, channel_max 512, z and
w of 512, 2 mapping layers, batch 32, style mixing 0.9, path length every 4 steps on half the batch, R1
every 16, G's EMA) on synthetic in-memory data, with ADA off in both (``--ada`` turns it on in the engine
only, to see its cost). With CUDA graphs each kind of step (plain, +path length, +path length +R1) is
captured once, in the engine and in the plain loop alike. FLOPs and bytes are averaged over a 16-step
cycle. ``--channel-base``/``--channel-max``/``--z-dim`` shrink the networks for a CPU. See _harness.py
for what is measured; it asserts nothing.

    python benchmarks/stylegan2.py --device cpu --size 32 --channel-base 2048 --channel-max 64 --z-dim 64 \\
        --batch 32 --steps 16 --warmup 16 --reps 2
    python benchmarks/stylegan2.py --device cuda --steps 128 --warmup 64 --precision bf16 --cuda-graph on

The engine captures a kind of step after three eager ones, so R1's steps (every 16) replay from step 48:
keep ``--warmup`` at 64 or more with CUDA graphs.
"""

from __future__ import annotations

import copy
import math
import weakref

import torch
import torch.nn.functional as F
from _harness import Case, Plain, main, parser
from gantk.plugins.stylegan2.plugin import r1_gamma_rule

from gantk.data import TensorDataset

PL_EVERY, R1_EVERY, STYLE_MIXING, PL_DECAY, PL_WEIGHT = 4, 16, 0.9, 0.01, 2.0


def case(size: int, batch: int, channel_base: int, channel_max: int, z_dim: int, ada: bool) -> Case:
    gamma = r1_gamma_rule(size, batch)
    emas: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # G -> (its EMA copy, its parameters)

    def data() -> TensorDataset:
        g = torch.Generator().manual_seed(0)
        return TensorDataset(
            {"image": torch.randint(0, 256, (batch * 4, 3, size, size), dtype=torch.uint8, generator=g)}, 3
        )

    def plain_step(p: Plain, batch_: dict[str, torch.Tensor]) -> None:
        G, D = p.nets["G"], p.nets["D"]
        real = p.images(batch_["image"])
        n, dev = len(real), p.device

        def generate(count: int) -> tuple[torch.Tensor, torch.Tensor]:
            z, z2 = torch.randn(count, z_dim, device=dev), torch.randn(count, z_dim, device=dev)
            coin, where = torch.rand(1, device=dev), torch.rand(1, device=dev)
            cutoff = torch.where(coin < STYLE_MIXING, where, torch.ones_like(where))
            return G(z, mix_z=z2, mix_cutoff=cutoff, return_ws=True)

        D.requires_grad_(False)
        with p.autocast():
            fake, _ = generate(n)
            loss = F.softplus(-D(fake)).mean()
        p.step("G", loss)
        if p.step_index % PL_EVERY == 0:  # lazy path length, weighted by its interval
            with p.autocast():
                fake, ws = generate(max(1, n // 2))
                noise = torch.randn_like(fake) / math.sqrt(size * size)
                (grads,) = torch.autograd.grad((fake * noise).sum(), ws, create_graph=True)
                lengths = grads.float().square().sum(2).mean(1).sqrt()
                pl_mean = getattr(G, "_orig_mod", G).pl_mean
                with torch.no_grad():
                    pl_mean.copy_(pl_mean.lerp(lengths.mean(), PL_DECAY))
                loss = (lengths - pl_mean).square().mean() * PL_WEIGHT * PL_EVERY
            p.step("G", loss)
        D.requires_grad_(True)
        with torch.no_grad(), p.autocast():
            fake, _ = generate(n)
        with p.autocast():
            loss = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
        p.step("D", loss)
        if p.step_index % R1_EVERY == 0:  # lazy R1 on the reals
            r = real.detach().requires_grad_(True)
            with p.autocast():
                (grads,) = torch.autograd.grad(D(r).sum(), r, create_graph=True)
                loss = grads.float().square().sum([1, 2, 3]).mean() * (gamma / 2 * R1_EVERY)
            p.step("D", loss)
        if G not in emas:  # G's EMA, as the engine keeps it (made in the first step, which is eager)
            copied = copy.deepcopy(getattr(G, "_orig_mod", G)).requires_grad_(False)
            emas[G] = (list(copied.parameters()), [t.detach() for t in G.parameters()])
        averaged, params = emas[G]
        torch._foreach_lerp_(averaged, params, 1 - 0.5 ** (batch / 10_000))  # half-life 10 kimg

    def kind(index: int) -> tuple[bool, bool]:
        return index % PL_EVERY == 0, index % R1_EVERY == 0

    model = {"channel_base": channel_base, "channel_max": channel_max, "z_dim": z_dim, "w_dim": z_dim}
    augment = (
        {"policy": ["color", "translation", "cutout"], "adaptive": True} if ada else {"policy": [], "adaptive": False}
    )
    layer = {
        "data": {"name": "synthetic", "image_size": size, "channels": 3},
        "model": model,
        "train": {"batch_size": batch, "augment": augment},
    }
    return Case("stylegan2", layer, data, plain_step, images_per_step=batch, variant=kind, cycle=R1_EVERY)


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--channel-base", type=int, default=16384)
    p.add_argument("--channel-max", type=int, default=512)
    p.add_argument("--z-dim", type=int, default=512)
    p.add_argument("--ada", action="store_true", help="ADA on in the engine (the plain loop has none)")
    args = p.parse_args()
    main(case(args.size, args.batch, args.channel_base, args.channel_max, args.z_dim, args.ada), args)
