"""InfoGAN training speed: gantk's engine vs a plain loop on the paper's MNIST networks.

The plugin's default setting (1x28x28 images, z of 62, c1 of 10 values, 2 continuous codes, batch 128;
G and Q stepped by one optimizer) on synthetic in-memory data. See _harness.py for what is measured; it
asserts nothing.

    python benchmarks/infogan.py --device cpu --steps 10 --warmup 5 --reps 3
    python benchmarks/infogan.py --device cuda --steps 200 --warmup 50 --precision bf16 --cuda-graph on
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _harness import Case, Plain, main, parser
from gantk.plugins.infogan.networks import code_vector

from gantk.data import TensorDataset


def case(batch: int) -> Case:
    def data() -> TensorDataset:
        g = torch.Generator().manual_seed(0)
        return TensorDataset(
            {"image": torch.randint(0, 256, (batch * 4, 1, 28, 28), dtype=torch.uint8, generator=g)}, 1
        )

    def plain_step(p: Plain, batch: dict[str, torch.Tensor]) -> None:
        G, D, Q = p.nets["G"], p.nets["D"], p.nets["Q"]
        real = p.images(batch["image"])
        n = len(real)
        z, c_cat = torch.randn(n, 62, device=p.device), torch.randint(0, 10, (n,), device=p.device)
        c_cont = torch.rand(n, 2, device=p.device) * 2 - 1
        with p.autocast():
            fake = G(code_vector(z, c_cat, c_cont, 10))
            out_real, out_fake = D(real)[0], D(fake.detach())[0]
            loss_d = F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
            loss_d = loss_d + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
        p.step("D", loss_d)
        D.requires_grad_(False)
        with p.autocast():
            logits, features = D(fake)
            cat, means = Q(features)
            loss_g = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            loss_g = (
                loss_g + F.cross_entropy(cat.float(), c_cat) + 0.1 * 0.5 * (means.float() - c_cont).pow(2).sum(1).mean()
            )
        p.step("G", loss_g)
        D.requires_grad_(True)

    layer = {"data": {"name": "synthetic", "image_size": 28, "channels": 1}, "train": {"batch_size": batch}}
    return Case("infogan", layer, data, plain_step, images_per_step=batch, groups={"D": ("D",), "G": ("G", "Q")})


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--batch", type=int, default=128)
    args = p.parse_args()
    main(case(args.batch), args)
