"""``gantk upscale RUN INPUT``: super-resolution of a file or a folder of images, tiled."""

from __future__ import annotations

import argparse
from pathlib import Path

from gantk.commands.common import add_checkpoint_args, check_range, input_output_pairs, which


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        help="super-resolve images with a super-resolution model (srgan)",
        description="Upscale an image file, or every image in a folder, with a trained super-resolution model. "
        "Any size works: the image is processed in overlapping tiles, so memory is bounded by the tile; grey "
        "stays grey and an alpha channel is kept (upscaled with bicubic).",
    )
    add_checkpoint_args(p)
    p.set_defaults(run=run)
    p.add_argument("input", help="an image file or a folder of images")
    p.add_argument("-o", "--output", required=True, help="output file (for one input) or folder")
    p.add_argument("--tile", type=int, help="LR tile side in pixels (default: the model's eval.tile, 128)")


def run(args: argparse.Namespace) -> int:
    import time

    from gantk.console import console
    from gantk.data.images import open_image
    from gantk.device import select_device
    from gantk.upscale import load_upscaler, upscale_image

    if args.tile is not None:
        check_range("--tile", args.tile, 8, 8192)
    pairs = input_output_pairs(Path(args.input), Path(args.output))
    plugin, G = load_upscaler(
        args.checkpoint,
        select_device(args.device),
        which(args),
        plugin_ref=args.plugin,
        overrides=[f"eval.tile={args.tile}"] if args.tile is not None else None,
    )
    for src, dst in pairs:
        start = time.perf_counter()
        image = upscale_image(plugin, G, open_image(src))
        dst.parent.mkdir(parents=True, exist_ok=True)
        image.save(dst)
        console.print(
            f"{src} -> {dst} ({image.width}x{image.height}, {time.perf_counter() - start:.1f}s)", highlight=False
        )
    return 0
