"""pix2pix throughput on facades: training steps/s through the engine, and the data path's images/s.

The data path is what feeds each step: the in-memory batch stream plus the on-device jitter (resize
286, crop 256, flip). It should never be the bottleneck, so both rates are printed side by side. The
script measures and asserts nothing; results go in benchmarks/README.md with the machine they came from.

    GANTK_DATA=../shared/datasets python benchmarks/pix2pix.py --device cpu --steps 20
    GANTK_DATA=../shared/datasets python benchmarks/pix2pix.py --device cuda --steps 500 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from _timing import steps_per_second_after

from gantk import registry
from gantk.data.loader import BatchStream
from gantk.engine import select_device
from gantk.plugin import StepContext


def make_plugin(args: argparse.Namespace, steps: int):
    spec, cls = registry.load("pix2pix")
    layer = {
        "model": {"ngf": args.ngf, "ndf": args.ngf},
        "train": {
            "max_steps": steps,
            "device": args.device,
            "precision": args.precision,
            "channels_last": args.channels_last,
            "log_every": args.warmup,
            "sample_every": 0,
            "eval_every": 0,
            "checkpoint_every": 0,
            "tensorboard": False,
        },
    }
    return cls(registry.make_config(spec, cls, [(layer, "benchmark")]))


def data_rate(args: argparse.Namespace) -> float:
    """Images/s of stream + transfer + jitter alone, synchronised at the end."""
    plugin = make_plugin(args, 1)
    device = select_device(args.device)
    plugin.cfg.data.channels = 3
    train = plugin.build_dataset()
    stream = BatchStream(train, 1, 0)
    ctx = StepContext({}, device, 0, 1, "gan", torch.Generator(device=device), torch.Generator())
    n = args.steps * 4

    def one() -> dict:
        batch = {k: v.to(device).float().div_(127.5).sub_(1) for k, v in next(stream).items()}
        return plugin.prepare_batch(batch, ctx)

    for _ in range(5):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(n):
        one()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - start)


def train_rate(args: argparse.Namespace) -> float:
    plugin = make_plugin(args, args.warmup + args.steps)
    plugin.cfg.train.log_every = args.warmup
    return steps_per_second_after(plugin, args.warmup)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--ngf", type=int, default=64, help="ngf = ndf")
    p.add_argument("--steps", type=int, default=20, help="timed training steps (batch 1)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--channels-last", action="store_true")
    args = p.parse_args()
    if args.steps % args.warmup:
        p.error("--steps must be a multiple of --warmup (both are logging intervals)")
    cuda = torch.cuda.is_available() and args.device != "cpu"
    machine = torch.cuda.get_device_name() if cuda else f"{platform.machine()}, {torch.get_num_threads()} threads"
    data = data_rate(args)
    steps = train_rate(args)
    full = 200 * 360 / steps
    print(
        json.dumps(
            {
                "machine": machine,
                "torch": torch.__version__,
                "ngf": args.ngf,
                "precision": args.precision,
                "channels_last": args.channels_last,
                "train_steps_s": round(steps, 3),
                "data_images_s": round(data, 1),
                "data_over_train": round(data / steps, 1),
                "full_schedule_hours_at_this_rate": round(full / 3600, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
