"""SRGAN training speed: gantk's engine vs a plain loop on the same SRResNet (and discriminator).

The paper's setting: 16 HR crops of 96x96 per batch, 4x, SRResNet width 64 with 16 blocks. The engine
cuts the crops from 128x128 tiles and makes LR with antialiased bicubic on the device; the plain loop
makes LR the same way from its crops. ``--phase srresnet`` (default) times phase 1, G alone on pixel
MSE, which is 10^6 of the paper's 1.2x10^6 steps; ``--phase srgan`` times the adversarial phase (with
pixel MSE standing in for the VGG content loss, whose weights cannot be downloaded here).
See _harness.py for what is measured; it asserts nothing.

    python benchmarks/srgan.py --device cpu --steps 4 --warmup 2 --reps 3
    python benchmarks/srgan.py --device cuda --steps 200 --warmup 50 --precision bf16 --channels-last
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _harness import Case, Plain, main, parser

from gantk.data import TensorDataset
from gantk.data.jitter import crop, random_offsets


def lr_of(hr: torch.Tensor) -> torch.Tensor:
    return F.interpolate(hr, scale_factor=0.25, mode="bicubic", antialias=True, align_corners=False).clamp(-1, 1)


def case(phase: str, width: int, blocks: int, batch: int) -> Case:
    def data() -> TensorDataset:
        g = torch.Generator().manual_seed(0)
        return TensorDataset(
            {"image": torch.randint(0, 256, (batch * 4, 3, 128, 128), dtype=torch.uint8, generator=g)}, 3
        )

    def plain_step(p: Plain, batch: dict[str, torch.Tensor]) -> None:
        G = p.nets["G"]
        tiles = p.images(batch["image"])
        hr = crop(tiles, random_offsets(torch.rand(len(tiles), 2, device=tiles.device), 33), 96)
        lr = lr_of(hr)
        if phase == "srresnet":
            with p.autocast():
                loss = F.mse_loss(G(lr), hr)
            p.step("G", loss)
            return
        D = p.nets["D"]
        with p.autocast():
            fake = G(lr)
            out_real, out_fake = D(hr), D(fake.detach())
            loss_d = F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
            loss_d = loss_d + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
        p.step("D", loss_d)
        with p.autocast():
            out = D(fake)
            loss_g = F.mse_loss(fake, hr) + 1e-3 * F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        p.step("G", loss_g)

    layer = {
        "data": {"name": "synthetic", "train_sets": [], "channels": 3},
        "model": {"width": width, "blocks": blocks},
        "loss": {"vgg_weights": ""},
        "train": {"batch_size": batch},
        "phases": {"srresnet": 10**9 if phase == "srresnet" else 0},
    }
    trained = ("G",) if phase == "srresnet" else ("G", "D")

    def configure(plugin) -> None:  # no Set5/Set14 here: sample grids are off anyway
        def no_samples(*args, **kwargs):
            raise NotImplementedError

        plugin.sample_inputs = no_samples

    return Case("srgan", layer, data, plain_step, images_per_step=batch, trained=trained, configure=configure)


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--phase", default="srresnet", choices=["srresnet", "srgan"])
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--blocks", type=int, default=16)
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args()
    main(case(args.phase, args.width, args.blocks, args.batch), args)
