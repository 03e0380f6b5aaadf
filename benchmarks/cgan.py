"""CGAN training speed: gantk's engine vs a plain loop on the same label-conditioned networks.

The plugin's default setting (MNIST-shaped 1x32x32 images, 10 classes, conv nets of width 32, batch
64) on synthetic in-memory data. See _harness.py for what is measured; it asserts nothing.

    python benchmarks/cgan.py --device cpu --steps 10 --warmup 5 --reps 3
    python benchmarks/cgan.py --device cuda --steps 200 --warmup 50 --precision bf16 --compile default
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _harness import Case, Plain, main, parser

from gantk.data import TensorDataset

CLASSES = [str(i) for i in range(10)]


def case(width: int, batch: int) -> Case:
    def data() -> TensorDataset:
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (batch * 4, 1, 32, 32), dtype=torch.uint8, generator=g)
        labels = torch.randint(0, 10, (batch * 4,), generator=g)
        return TensorDataset({"image": images, "label": labels}, channels=1)

    def plain_step(p: Plain, batch: dict[str, torch.Tensor]) -> None:
        G, D = p.nets["G"], p.nets["D"]
        real, y = p.images(batch["image"]), batch["label"].to(p.device)
        with p.autocast():
            fake = G(torch.randn(len(real), 100, device=p.device), y)
            out_real, out_fake = D(real, y), D(fake.detach(), y)
            loss_d = F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
            loss_d = loss_d + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
        p.step("D", loss_d)
        with p.autocast():
            out = D(fake, y)
            loss_g = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        p.step("G", loss_g)

    layer = {
        "data": {"name": "synthetic", "image_size": 32, "channels": 1},
        "model": {"ngf": width, "ndf": width, "nz": 100, "class_names": CLASSES},
        "train": {"batch_size": batch, "ema": {"enabled": False}},
    }
    return Case("cgan", layer, data, plain_step, images_per_step=batch)


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--width", type=int, default=32, help="ngf = ndf")
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args()
    main(case(args.width, args.batch), args)
