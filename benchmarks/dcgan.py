"""DCGAN training speed: gantk's engine vs the pytorch/examples DCGAN loop on the same networks.

The paper's setting (64x64, ngf = ndf = 64, batch 128) on synthetic in-memory images, so neither loop
waits on disk. See _harness.py for what is measured; it asserts nothing.

    python benchmarks/dcgan.py --device cpu --steps 4 --warmup 2 --reps 3
    python benchmarks/dcgan.py --device cuda --steps 100 --warmup 20 --precision bf16 --channels-last
    python benchmarks/dcgan.py --device cuda --steps 100 --warmup 20 --precision bf16 --channels-last --compile default
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _harness import Case, Plain, main, parser

from gantk.data import TensorDataset


def case(size: int, width: int, batch: int) -> Case:
    def data() -> TensorDataset:
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (batch * 4, 3, size, size), dtype=torch.uint8, generator=g)
        return TensorDataset({"image": images}, channels=3)

    def plain_step(p: Plain, batch: dict[str, torch.Tensor]) -> None:
        G, D = p.nets["G"], p.nets["D"]
        real = p.images(batch["image"])
        with p.autocast():
            fake = G(torch.randn(len(real), 100, device=p.device))
            out_real, out_fake = D(real), D(fake.detach())
            loss_d = F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
            loss_d = loss_d + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
        p.step("D", loss_d)
        with p.autocast():
            out = D(fake)
            loss_g = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        p.step("G", loss_g)

    layer = {
        "data": {"name": "synthetic", "image_size": size, "channels": 3},
        "model": {"ngf": width, "ndf": width, "nz": 100},
        "train": {"batch_size": batch},
    }
    return Case("dcgan", layer, data, plain_step, images_per_step=batch)


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--width", type=int, default=64, help="ngf = ndf")
    p.add_argument("--batch", type=int, default=128)
    args = p.parse_args()
    main(case(args.size, args.width, args.batch), args)
