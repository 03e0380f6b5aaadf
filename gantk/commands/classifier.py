"""``gantk classifier``: train the classifier that judges class-conditional generators."""

from __future__ import annotations

import argparse
from pathlib import Path

from gantk.commands.common import MAX_SEED, add_device_arg, check_output, check_range


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classifier",
        help="train the classifier that scores class-conditional generators",
        description="Train a small CNN on the real images of a labelled dataset and save it (config.json + "
        "classifier.safetensors); pass the folder as eval.classifier=DIR to CGAN runs.",
    )
    p.add_argument("--data", default="mnist", help="labelled dataset name or folder (one sub-folder per class)")
    p.add_argument("--image-size", type=int, default=32, help="side the images are resized to (default 32)")
    p.add_argument("--channels", type=int, default=0, choices=(0, 1, 3), help="1 grey, 3 RGB, 0 as the data is")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--width", type=int, default=32, help="channels of the first conv stage")
    p.add_argument("--seed", type=int, default=0)
    add_device_arg(p)
    p.add_argument("-o", "--output", required=True, help="folder to write the classifier to")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from gantk.config import DataConfig
    from gantk.console import console
    from gantk.device import select_device
    from gantk.metrics import classifier as clf

    check_range("--steps", args.steps, 1, 10_000_000)
    check_range("--width", args.width, 1, 1024)
    check_range("--image-size", args.image_size, 8, 1024)
    check_range("--seed", args.seed, 0, MAX_SEED)
    check_output(Path(args.output), folder=True)
    data = DataConfig(name=args.data, image_size=args.image_size, channels=args.channels)
    info = clf.train_judge(data, args.output, args.steps, args.seed, select_device(args.device), args.width)
    test = f", test {info['test_accuracy']:.4f}" if "test_accuracy" in info else ""
    console.print(
        f"wrote the classifier to {args.output} (held-out accuracy {info['heldout_accuracy']:.4f}{test})",
        highlight=False,
    )
    return 0
