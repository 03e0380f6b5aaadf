"""CycleGAN training speed: gantk's engine vs a plain loop on the paper's networks and losses.

The plugin's default setting (3x256x256 images, ResNet generators with 9 blocks, 70x70 PatchGANs,
instance norm, LSGAN, cycle and identity losses, pools of 50, batch 1) on synthetic in-memory data;
``--size 128 --blocks 6`` is the paper's 128 px setting, ``--width`` shrinks both networks for a CPU. See
_harness.py for what is measured; it asserts nothing.

    python benchmarks/cyclegan.py --device cpu --size 128 --blocks 6 --width 16 --steps 5 --warmup 3 --reps 2
    python benchmarks/cyclegan.py --device cuda --steps 200 --warmup 50 --precision bf16 --cuda-graph on
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _harness import Case, Plain, main, parser

from gantk.data.datasets import UnpairedDataset


def case(size: int, blocks: int, width: int) -> Case:
    def data() -> UnpairedDataset:
        g = torch.Generator().manual_seed(0)
        a, b = (torch.randint(0, 256, (8, 3, size, size), dtype=torch.uint8, generator=g) for _ in range(2))
        return UnpairedDataset(a, b, 3)

    def plain_step(p: Plain, batch: dict[str, torch.Tensor]) -> None:
        n = p.nets
        a, b = p.images(batch["A"]), p.images(batch["B"])
        with p.autocast():
            fake_b, fake_a = n["G_AB"](a), n["G_BA"](b)
            n["D_A"].requires_grad_(False)
            n["D_B"].requires_grad_(False)
            out_b, out_a = n["D_B"](fake_b), n["D_A"](fake_a)
            loss_g = F.mse_loss(out_b.float(), torch.ones_like(out_b, dtype=torch.float32))
            loss_g = loss_g + F.mse_loss(out_a.float(), torch.ones_like(out_a, dtype=torch.float32))
            loss_g = loss_g + 10 * F.l1_loss(n["G_BA"](fake_b), a) + 10 * F.l1_loss(n["G_AB"](fake_a), b)
            loss_g = loss_g + 5 * F.l1_loss(n["G_BA"](a), a) + 5 * F.l1_loss(n["G_AB"](b), b)
        p.step("G", loss_g)
        n["D_A"].requires_grad_(True)
        n["D_B"].requires_grad_(True)
        with p.autocast():
            loss_d = 0
            for side, real, fake in (("A", a, fake_a), ("B", b, fake_b)):
                k = len(fake)
                pooled = n[f"pool_{side}"](
                    fake.detach(), torch.rand(k, device=p.device), torch.zeros(k, device=p.device)
                )
                r, f = n[f"D_{side}"](real), n[f"D_{side}"](pooled)
                loss_d = loss_d + 0.5 * F.mse_loss(r.float(), torch.ones_like(r, dtype=torch.float32))
                loss_d = loss_d + 0.5 * F.mse_loss(f.float(), torch.zeros_like(f, dtype=torch.float32))
        p.step("D", loss_d)

    layer = {
        "data": {"name": "synthetic", "image_size": size, "load_size": size, "channels": 3},
        "model": {"ngf": width, "ndf": width, "n_blocks": blocks},
        "train": {"batch_size": 1},
    }
    groups = {"G": ("G_AB", "G_BA"), "D": ("D_A", "D_B")}
    return Case("cyclegan", layer, data, plain_step, images_per_step=1, groups=groups)


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--blocks", type=int, default=9)
    p.add_argument("--width", type=int, default=64, help="ngf = ndf")
    args = p.parse_args()
    main(case(args.size, args.blocks, args.width), args)
