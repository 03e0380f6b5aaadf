"""Engine overhead: DCGAN training throughput through gantk's engine vs a plain PyTorch loop.

Both loops train the same DCGAN networks (built by the plugin, same init), at the same batch size,
on the same device, in this one process, from the same in-memory uint8 images (so neither waits on
disk). The plain loop is the pytorch/examples DCGAN loop. Runs alternate engine / plain, ``--reps``
times each; the script prints the median images/s of each and the median of the paired ratios. It measures; it asserts
nothing. Results go in benchmarks/README.md with the machine they came from.

    python benchmarks/engine.py                          # the paper's 64x64, batch 128
    python benchmarks/engine.py --device cuda --precision bf16 --channels-last
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from _timing import steps_per_second_after

from gantk import registry
from gantk.data import TensorDataset
from gantk.engine import select_device


def make_plugin(args: argparse.Namespace, steps: int):
    spec, cls = registry.load("dcgan")
    layer = {
        "data": {"name": "synthetic", "image_size": args.size, "channels": 3},
        "model": {"ngf": args.width, "ndf": args.width},
        "train": {
            "batch_size": args.batch,
            "max_steps": steps,
            "device": args.device,
            "precision": args.precision,
            "channels_last": args.channels_last,
            "log_every": args.steps,
            "sample_every": 0,
            "checkpoint_every": 0,
            "tensorboard": False,
        },
    }
    return cls(registry.make_config(spec, cls, [(layer, "benchmark")]))


def synthetic(args: argparse.Namespace) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch * 8, 3, args.size, args.size), dtype=torch.uint8, generator=g)
    return TensorDataset({"image": images}, channels=3)


def engine_rate(args: argparse.Namespace, data: TensorDataset) -> float:
    """Images/s over the steps that follow ``warmup`` (timed by the engine, read from metrics.jsonl)."""
    plugin = make_plugin(args, args.warmup + args.steps)
    plugin.cfg.train.log_every = args.warmup if args.warmup else args.steps
    plugin.build_dataset = lambda split="train": data
    return steps_per_second_after(plugin, args.warmup) * args.batch


def plain_rate(args: argparse.Namespace, data: TensorDataset) -> float:
    """The pytorch/examples DCGAN loop on the plugin's networks."""
    device = select_device(args.device)
    plugin = make_plugin(args, 1)
    torch.manual_seed(0)
    nets = plugin.build_networks()
    fmt = torch.channels_last if args.channels_last else torch.preserve_format
    G, D = nets["G"].to(device, memory_format=fmt), nets["D"].to(device, memory_format=fmt)
    fused = {"fused": True} if device.type == "cuda" else {}
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), **fused)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), **fused)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=args.precision == "fp16")
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else nullcontext
    images = data.tensors["image"]

    def step(i: int) -> None:
        idx = torch.randint(0, len(images), (args.batch,))
        real = images[idx].to(device, non_blocking=True).float().div_(127.5).sub_(1)
        if args.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        opt_d.zero_grad(set_to_none=True)
        with autocast():
            out_real = D(real)
            fake = G(torch.randn(args.batch, 100, device=device))
            out_fake = D(fake.detach())
            loss_d = F.binary_cross_entropy_with_logits(
                out_real, torch.ones_like(out_real)
            ) + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
        scaler.scale(loss_d).backward()
        scaler.step(opt_d)
        scaler.update()
        opt_g.zero_grad(set_to_none=True)
        with autocast():
            out = D(fake)
            loss_g = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        scaler.scale(loss_g).backward()
        scaler.step(opt_g)
        scaler.update()

    for i in range(args.warmup):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(args.steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return args.steps * args.batch / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--width", type=int, default=64, help="ngf = ndf")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10, help="timed steps per repetition")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--channels-last", action="store_true")
    args = p.parse_args()
    if torch.cuda.is_available() and args.device != "cpu":
        machine = torch.cuda.get_device_name()
    else:
        machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    data = synthetic(args)
    engine, plain = [], []
    for rep in range(args.reps):
        engine.append(engine_rate(args, data))
        plain.append(plain_rate(args, data))
        print(f"rep {rep + 1}: engine {engine[-1]:.1f} img/s, plain {plain[-1]:.1f} img/s", flush=True)
    e, q = statistics.median(engine), statistics.median(plain)
    # each engine run is paired with the plain run right after it; the median of those ratios is
    # robust to the machine's speed drifting between repetitions
    ratios = sorted(a / b for a, b in zip(engine, plain, strict=True))
    print(
        json.dumps(
            {
                "machine": machine,
                "torch": torch.__version__,
                "size": args.size,
                "width": args.width,
                "batch": args.batch,
                "precision": args.precision,
                "channels_last": args.channels_last,
                "engine_img_s": round(e, 1),
                "plain_img_s": round(q, 1),
                "ratio_median": round(statistics.median(ratios), 3),
                "ratio_min": round(ratios[0], 3),
                "ratio_max": round(ratios[-1], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
