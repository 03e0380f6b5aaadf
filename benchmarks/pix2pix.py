"""pix2pix training speed: gantk's engine vs a plain loop on the same U-Net 256 + 70x70 PatchGAN.

The paper's setting: batch 1, 256x256 crops jittered from 286x286, vanilla GAN loss + 100 x L1. Both
loops jitter on the device (resize 286, random crop, flip), from synthetic in-memory facade-sized pairs.
The JSON adds ``data_images_s``, the data path alone (stream, transfer, jitter), and what 200 epochs of
the 400 - 40 held-out facades pairs (72,000 steps) take at the engine's rate. See _harness.py for the
rest; it asserts nothing.

    python benchmarks/pix2pix.py --device cpu --steps 10 --warmup 5 --reps 3
    python benchmarks/pix2pix.py --device cuda --steps 500 --warmup 100 --precision bf16 --compile reduce-overhead
"""

from __future__ import annotations

import json
import time

import torch
import torch.nn.functional as F
from _harness import Case, Plain, main, make_plugin, parser, sync

from gantk.data import TensorDataset
from gantk.data.jitter import crop, random_offsets
from gantk.data.loader import BatchStream
from gantk.engine import select_device
from gantk.io.images import from_uint8
from gantk.plugin import StepContext

STEPS_200_EPOCHS = 200 * 360


def jitter(p: Plain, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = F.interpolate(torch.cat([a, b], 1), size=(286, 286), mode="bicubic", align_corners=False).clamp_(-1, 1)
    draws = torch.rand(len(x), 3, device=x.device)  # on the device: the step stays capturable
    x = crop(x, random_offsets(draws[:, :2], 31), 256, flip=draws[:, 2] < 0.5)
    return x[:, :3], x[:, 3:]


def case(ngf: int) -> Case:
    def data() -> TensorDataset:
        g = torch.Generator().manual_seed(0)
        pairs = {k: torch.randint(0, 256, (8, 3, 256, 256), dtype=torch.uint8, generator=g) for k in "AB"}
        return TensorDataset(pairs, channels=3)

    def plain_step(p: Plain, batch: dict[str, torch.Tensor]) -> None:
        G, D = p.nets["G"], p.nets["D"]
        x, y = jitter(p, p.images(batch["A"]), p.images(batch["B"]))
        with p.autocast():
            fake = G(x)
            out_real, out_fake = D(torch.cat([x, y], 1)), D(torch.cat([x, fake.detach()], 1))
            loss_d = 0.5 * F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
            loss_d = loss_d + 0.5 * F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
        p.step("D", loss_d)
        with p.autocast():
            out = D(torch.cat([x, fake], 1))
            loss_g = F.binary_cross_entropy_with_logits(out, torch.ones_like(out)) + 100.0 * F.l1_loss(fake, y)
        p.step("G", loss_g)

    layer = {"data": {"name": "synthetic", "channels": 3}, "model": {"ngf": ngf, "ndf": ngf}}
    return Case("pix2pix", layer, data, plain_step, images_per_step=1)


def data_rate(c: Case, args, n: int) -> float:
    """Images/s of the engine's data path alone: stream, transfer, uint8 -> float, jitter."""
    plugin = make_plugin(c, args, 1)
    device = select_device(args.device)
    stream = BatchStream(c.data(), 1, 0)
    ctx = StepContext({}, device, 0, 1, "gan", torch.Generator(device=device), torch.Generator())

    def one() -> dict:
        batch = {k: from_uint8(v.to(device)) for k, v in next(stream).items()}
        return plugin.prepare_batch(batch, ctx)

    for _ in range(5):
        one()
    sync(device)
    start = time.perf_counter()
    for _ in range(n):
        one()
    sync(device)
    return n / (time.perf_counter() - start)


if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--ngf", type=int, default=64, help="ngf = ndf")
    args = p.parse_args()
    c = case(args.ngf)
    result = main(c, args)
    images = data_rate(c, args, max(20, args.steps * 4))
    extra = {
        "data_images_s": round(images, 1),
        "data_over_train": round(images / result["engine_steps_s"], 1),
        "minutes_for_200_epochs": round(STEPS_200_EPOCHS / result["engine_steps_s"] / 60, 1),
    }
    print(json.dumps({**result, **extra}))
